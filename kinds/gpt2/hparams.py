"""GPT-2 training numbers: the user's flags over defaults for the device and the kind of run.

A GPU takes 32k tokens per step in as few forward passes as its memory holds
(measured on the card before training: see finetune/memory.py and the
adapter's probe; 32 blocks on an H100 were 9% faster than 16 there), and
writes a resumable checkpoint every 500 steps; a laptop CPU takes 2 blocks and
8k tokens, so a step stays in seconds, and checkpoints at every evaluation. Learning rates follow common
practice: fine-tuning all weights wants a small one, LoRA a larger one, and
training from scratch the GPT-2 paper's.
"""

from dataclasses import dataclass

import torch

from corpora import UserError

from .options import GPT2Options

DEFAULT_BLOCK = 1024


@dataclass(frozen=True)
class GPT2HParams:
    block_size: int
    micro_batch: int  # blocks per forward pass
    grad_accum: int  # forward passes per optimizer step
    lr: float
    dropout: float | None  # None: the base's own
    max_steps: int  # used when neither --max-steps nor --max-time is given
    warmup_steps: int
    eval_every: int
    sample_every: int
    checkpoint_every: int
    eval_units: int  # validation tokens per evaluation (at most)
    compile: bool
    grad_checkpointing: bool
    split: str
    weight_decay: float = 0.01  # AdamW's, on the matrices: fine-tuning's usual
    min_lr_ratio: float = 0.1  # where the cosine ends, a share of lr


CPU_MICRO_TOKENS = 2_048  # a CPU's pass: larger ones are no faster per token, and a step's progress shows sooner


def resolve(options: GPT2Options, n_positions: int, device: torch.device) -> GPT2HParams:
    cuda = device.type == "cuda"
    block = min(options.block_size or DEFAULT_BLOCK, n_positions)
    batch_tokens = options.batch_tokens or max(32_768 if cuda else 8_192, (options.micro_batch or 1) * block)
    if batch_tokens < block:
        raise UserError(f"--batch-tokens {batch_tokens} is less than one block of {block} tokens: raise it or lower --block-size")
    # on CUDA, unless given, the whole step: the adapter then measures how much of it the card holds at once
    blocks = batch_tokens // block
    micro = options.micro_batch or (blocks if cuda else min(max(1, CPU_MICRO_TOKENS // block), blocks))
    if micro * block > batch_tokens:
        raise UserError(f"--micro-batch {micro} blocks of {block} tokens is more than --batch-tokens {batch_tokens}")
    if options.from_scratch:
        lr, warmup = 6e-4, 100
    elif options.lora:
        lr, warmup = 5e-4, 20
    else:
        lr, warmup = 6e-5, 20
    return GPT2HParams(
        block_size=block,
        micro_batch=micro,
        grad_accum=max(1, round(batch_tokens / (micro * block))),
        lr=options.lr or lr,
        dropout=options.dropout,
        max_steps=2000,
        warmup_steps=warmup,
        eval_every=50,
        sample_every=500 if cuda else 100,
        # a GPU step takes a tenth of a second, and a checkpoint of GPT-2 small (weights and Adam moments) 1.5 GB
        checkpoint_every=500 if cuda else 50,
        eval_units=131_072 if cuda else 16_384,  # a CPU evaluates GPT-2 small at about 1k tokens/s
        compile=cuda if options.compile is None else options.compile,
        grad_checkpointing=options.grad_checkpointing,
        split=options.split,
    )
