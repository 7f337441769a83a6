"""GPT-2 training throughput (tokens per second) against a plain Hugging Face loop, same run, same shapes.

Ours is the real training core (`finetune --from-scratch`): on CUDA, bf16
autocast with a bf16 residual stream, causal SDPA (cuDNN/flash) attention with
no mask tensor, torch.compile of the forward pass and loss, the output layer
padded to 50,304 rows, and fused AdamW. The plain loop is what the
transformers docs teach: the model as transformers builds it (its default SDPA
attention), no compile, `model(input_ids, labels=...)`, default AdamW, under
bf16 autocast on CUDA.
Weights come from the GPT-2 config (random): no pretrained weights are needed
to time training. Peak GPU memory is reported for each. Goal on an H100:
>= 500k tokens/s for GPT-2 small at block size 1024.

    .venv/bin/python benchmarks/gpt2_throughput.py                 # CPU: a 2-layer GPT-2, blocks of 128
    .venv/bin/python benchmarks/gpt2_throughput.py --device cuda   # GPU: GPT-2 small (124M), 64 blocks of 1024
"""

import argparse
import time
from pathlib import Path

from _common import SHARED_CORPORA, add_json_option, emit, fill_shape, setup

FIGURES = {
    "device": "device", "shape": "model and step", "ours_tokens_per_s": "ours, tokens/s",
    "plain_tokens_per_s": "plain transformers loop, tokens/s", "speedup": "ours / plain",
    "ours_peak_gib": "ours, peak memory (GiB)", "plain_peak_gib": "plain, peak memory (GiB)",
    "flops_per_token": "model FLOPs per token", "mfu": "model FLOPs utilization (GPU)",
}


TOKENIZER = SHARED_CORPORA.parent / "models" / "gpt2-tokenizer"
GPU_SHAPE = {"n_layer": 12, "n_embd": 768, "n_head": 12, "block": 1024, "micro": 64}
PLAIN_GPU_MICRO = 32  # the most blocks per pass that the plain loop fits in an 80 GB GPU's memory
DENSE_BF16_PEAK = 989e12  # an H100 or H200 SXM's dense bf16 matrix throughput (FLOP/s), the MFU's denominator
CPU_SHAPE = {"n_layer": 2, "n_embd": 128, "n_head": 4, "block": 128, "micro": 4}


def ours(args: argparse.Namespace, home: Path) -> tuple[float, float]:
    import torch
    from rich.console import Console

    from finetune.checkpoint import read_jsonl
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    total = args.warmup + args.steps
    options = GPT2Options(base=str(args.tokenizer), from_scratch=True, n_layer=args.n_layer, n_embd=args.n_embd,
                          n_head=args.n_head, block_size=args.block, micro_batch=args.micro,
                          batch_tokens=args.block * args.micro, dropout=0.0)
    config = FinetuneConfig(corpus=args.corpus, out=home / "ours", max_steps=total, device=args.device,
                            eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, warmup_steps=1,
                            eval_chars=args.block * args.micro, options=options,
                            ghostwriting_every=0)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    finetune(config, Reporter(Console(stderr=True, quiet=True)))
    history = {r["step"]: r for r in read_jsonl(home / "ours" / "history.jsonl")}
    # elapsed at step k is recorded before step k's own time is added: measure whole steps in between
    seconds = history[total]["elapsed"] - history[args.warmup + 1]["elapsed"]
    return (total - args.warmup - 1) * args.block * args.micro / seconds, peak_gib(args.device)


def plain(args: argparse.Namespace) -> tuple[float, float]:
    import contextlib

    import numpy as np
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from corpora import load_corpus
    from kinds.gpt2.data import tokenize

    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    ids = torch.from_numpy(tokenize(load_corpus(args.corpus), tokenizer).ids.astype(np.int64))
    config = GPT2Config(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0)
    model = GPT2LMHeadModel._from_config(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    g = torch.Generator().manual_seed(0)

    accum = args.micro // args.plain_micro  # the same tokens per optimizer step as ours

    def step() -> None:
        optimizer.zero_grad()
        for _ in range(accum):
            starts = torch.randint(0, len(ids) - args.block, (args.plain_micro,), generator=g)
            x = torch.stack([ids[s : s + args.block] for s in starts.tolist()]).to(device)
            with amp:
                loss = model(input_ids=x, labels=x).loss / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        float(loss.detach())

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.block * args.micro / (time.perf_counter() - start), peak_gib(args.device)


def peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--corpus", default="pkd")
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER, help="a directory with the GPT-2 tokenizer and config")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on CPU, 40 on GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 on CPU, 10 on GPU)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (0: torch's default)")
    parser.add_argument("--plain-micro", type=int, default=None,
                        help="blocks per forward pass of the plain loop, which accumulates them to --micro blocks per step "
                             f"(default: --micro on a CPU, {PLAIN_GPU_MICRO} on a GPU)")
    for key in CPU_SHAPE:
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int, default=None)
    add_json_option(parser)
    args = parser.parse_args()
    gpu = fill_shape(args, GPU_SHAPE, CPU_SHAPE)
    args.steps = args.steps or (40 if gpu else 10)
    args.warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    args.plain_micro = args.plain_micro or (min(args.micro, PLAIN_GPU_MICRO) if gpu else args.micro)
    if args.micro % args.plain_micro:
        parser.error("--plain-micro must divide --micro")
    home = setup(None if gpu else args.threads)
    fast, fast_mem = ours(args, home)
    slow, slow_mem = plain(args)
    shape = f"{args.n_layer}x{args.n_embd}, {args.micro} x {args.block} tokens per step"
    print(f"ours:  {fast:,.0f} tokens/s, peak memory {fast_mem or '-'} GiB   ({shape}, {args.device})")
    print(f"plain: {slow:,.0f} tokens/s, peak memory {slow_mem or '-'} GiB   (transformers as built, no compile, "
          f"{args.plain_micro} blocks per pass)")
    flops = flops_per_token(args)
    mfu = fast * flops / DENSE_BF16_PEAK if gpu else None
    print(f"speedup x{fast / slow:.2f} (goal >= 4 on a GPU); model FLOPs per token 6N + 12 L d T = {flops / 1e9:.3f} GFLOP"
          + (f", x {fast:,.0f} tokens/s = {fast * flops / 1e12:.0f} TFLOP/s of a dense bf16 peak of "
             f"{DENSE_BF16_PEAK / 1e12:.0f}: MFU {mfu:.1%} (goal >= 55%)" if gpu else ""))
    emit({"device": args.device, "shape": shape, "ours_tokens_per_s": round(fast), "plain_tokens_per_s": round(slow),
          "speedup": round(fast / slow, 2), "ours_peak_gib": fast_mem, "plain_peak_gib": slow_mem,
          "flops_per_token": flops, "mfu": round(mfu, 4) if mfu is not None else None}, FIGURES, args)


def flops_per_token(args: argparse.Namespace) -> float:
    """A training step's model FLOPs per token (PaLM's appendix B, as nanoGPT counts them): 6 per weight for the
    forward and backward passes, plus attention's 12 x layers x width x block (scores and their use, both ways)."""
    d, vocab = args.n_embd, 50_257
    weights = args.n_layer * 12 * d * d + vocab * d  # the blocks' matrices and the (tied) output layer
    return 6 * weights + 12 * args.n_layer * d * args.block


if __name__ == "__main__":
    main()
