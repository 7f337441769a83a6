"""GPT-2 as a model kind of the training core: full fine-tuning, LoRA, or from scratch.

The model directory it writes is a Hugging Face one: `save_pretrained`
weights (or a peft adapter), tokenizer files, and config.json holding the
GPT-2 configuration beside ghostwriter's own keys, so
`AutoModelForCausalLM.from_pretrained(dir)` loads it as it is.
"""

import contextlib
import itertools
import math
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch

from contract.modeldir import MERGED
from contract.sampling import Sampling
from corpora import Corpus, UserError
from corpora.files import replacing
from finetune import memory
from finetune.adapter import evaluating
from finetune.amount import TextAmounts
from finetune.device import autocast, cpu_autocast, cpu_bf16, describe_cpu_bf16
from finetune.distributed import SINGLE, World

from . import base as bases
from .activation import fuse_gelu
from .attention import use_causal_attention
from .data import TokenData, tokenizer_fingerprint
from .generate import generate_ids
from .hparams import GPT2HParams, resolve
from .infer import GPT2Decoder
from .loss import next_token_loss
from .options import GPT2Options
from .residual import residual_in_autocast_dtype

# A fine-tuning run whose first validation loss is this close to ln(vocabulary)
# starts from weights that predict nothing: it is training from scratch unawares.
UNTRAINED_SHARE = 0.85
WEIGHT_FILES = ("model.safetensors", "generation_config.json", "adapter_model.safetensors", "adapter_config.json")


def make_adapter(corpus: Corpus, options: GPT2Options, seed: int, device: torch.device,
                 world: World = SINGLE) -> "GPT2Adapter":
    return GPT2Adapter(corpus, options, seed, device, world)


class GPT2Adapter:
    unit = "token"
    cuda_dtype = torch.bfloat16
    ghostwriting_samples = 16  # written one after another

    def __init__(self, corpus: Corpus, options: GPT2Options, seed: int, device: torch.device, world: World = SINGLE):
        self.options = options
        self.seed = seed
        self.device = device
        self.tokenizer = bases.load_tokenizer(options.base)
        dropout = {} if options.dropout is None else {k: options.dropout for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        if options.from_scratch:
            shape = {k: v for k in ("n_layer", "n_embd", "n_head") if (v := getattr(options, k)) is not None}
            model = bases.new_model(bases.load_config(options.base, {**shape, **dropout}))
        else:
            model = bases.load_pretrained(options.base, dropout)
        if len(self.tokenizer) > model.config.vocab_size:
            raise UserError(f"base {options.base!r}: its tokenizer has {len(self.tokenizer)} tokens, its model only "
                            f"{model.config.vocab_size}")
        self.hp: GPT2HParams = resolve(options, model.config.n_positions, device)
        self.hf_config = model.config.to_dict()
        use_causal_attention(model)  # after the config is read: the saved model keeps transformers' own attention
        if self.hp.grad_checkpointing:
            # transformers 5.2x renamed it; older versions have only the first name. Not reentrant, whatever the
            # version's default: DDP then sees each LoRA weight's gradient once (peft #313, #899: "marked ready twice")
            getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)({"use_reentrant": False})
        self.base_weights = bases.weights_fingerprint(model) if options.lora else None
        if options.lora:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                              target_modules=options.lora_modules, fan_in_fan_out=True, task_type="CAUSAL_LM")
            try:
                with bases.quiet_transformers():
                    model = get_peft_model(model, lora)
            except ValueError as e:
                raise UserError(f"--lora-targets {options.lora_targets!r}: {str(e).splitlines()[0]}") from None
        self.model = model.to(device)
        self.model.train()
        # Training and evaluation run the transformer and the (tied) output layer themselves, so that the output
        # layer can be padded for the GPU (see loss.py); LoRA layers sit inside the transformer's own modules.
        lm = model.get_base_model() if options.lora else model
        self._body, self._head = lm.transformer, lm.lm_head
        residual_in_autocast_dtype(self._body)
        fuse_gelu(self._body)
        self._cpu_bf16 = cpu_bf16(device, options.cpu_bf16)
        self._pad_to = 64 if device.type == "cuda" else 1  # a CPU gains nothing from it and would copy the logits
        self.data = TokenData(corpus, self.tokenizer, self.hp.block_size, self.hp.micro_batch, self.hp.split,
                              options.test_split)
        self.data.to(device)
        self._loss = torch.compile(self._block_loss) if self.hp.compile else self._block_loss
        self.world = world
        self._plan(self.hp)
        self.chars_per_unit = self.data.chars_per_token
        self.epoch = 0
        self.index = 0

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The products' precision: bf16 autocast on CUDA; on a CPU bf16 under --cpu-bf16 (by default where the CPU
        has AVX512-BF16 or AMX: about 1.6x faster there, slower on one without), else float32. Weights, gradients and
        AdamW stay float32, and the loss is taken in float32 (loss.py)."""
        return cpu_autocast(True) if self._cpu_bf16 else autocast(self.device, self.cuda_dtype)

    def _training_pass(self, blocks: int) -> None:
        """One forward and backward of `blocks` blocks, as a training step runs them: the memory probe's pass.

        Eager, even where training compiles: a compiled pass holds no more than an eager one.
        """
        x = torch.randint(len(self.tokenizer), (blocks, self.hp.block_size), device=self.device)
        with self._autocast():
            loss = self._block_loss(x, x)
        loss.backward()

    def _held_bytes(self) -> int:
        """What training holds beside a pass's activations and gradients: AdamW's two moments of each trained weight
        (DDP's gradient buckets are the gradients themselves: finetune.distributed makes them views)."""
        return 2 * sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)

    def fit_memory(self, world: World) -> None:
        """--micro-batch auto on a GPU: as many blocks of this rank's share of a step per pass as every rank's card
        holds (each rank measures its own; they take the least)."""
        if self.options.micro_batch is not None:
            return
        fits = memory.probe(self._training_pass, self.device, self._held_bytes())
        if fits is None:  # the same answer on every rank: the same kind of device
            return
        micro = memory.largest_fitting(fits, self._share.stop - self._share.start)
        for p in self.model.parameters():
            p.grad = None
        if micro == 0 and world.size == 1:
            raise UserError(f"GPT-2 ({self.num_parameters():,} parameters) does not fit in this GPU's memory even one "
                            f"block of {self.hp.block_size} tokens at a time: try --lora, --grad-checkpointing or a "
                            "smaller --block-size")
        # over several GPUs the probe measured the whole model, which --fsdp then shards: one block may fit there
        micro = world.least(max(micro, 1))
        blocks = self.data.micro_batch * self.hp.grad_accum
        self._plan(replace(self.hp, micro_batch=micro, grad_accum=blocks // micro))

    def less_memory(self) -> memory.Smaller:
        micro = self.data.micro_batch
        smaller = max(d for d in range(1, micro // 2 + 1) if micro % d == 0) if micro > 1 else None
        passes = [f"--micro-batch {smaller} (this run passes {micro} blocks at a time)"] if smaller else []
        if not self.hp.grad_checkpointing:
            passes.append("--grad-checkpointing")
        shape = ["a smaller --block-size"] if self.options.lora else ["--lora", "a smaller --block-size"]
        return memory.Smaller(passes, [*passes, *shape])  # a pass's size and checkpointing change no number: they resume

    def _plan(self, hp: GPT2HParams) -> None:
        """The run's numbers for `hp`, and this rank's passes through each step.

        A short corpus takes fewer blocks per pass and more passes per step. A step is grad_accum micro-batches of
        the seeded order, whatever the world size; each rank takes its share of the step's blocks, in as few forward
        passes as a micro-batch's size allows (nanoGPT #283: the accumulation follows from the world size, not the
        local GPU count).
        """
        self.data.micro_batch = min(self.data.micro_batch, hp.micro_batch)
        if self.data.micro_batch < hp.micro_batch:
            accum = max(1, round(hp.micro_batch * hp.grad_accum / self.data.micro_batch))
            hp = replace(hp, micro_batch=self.data.micro_batch, grad_accum=accum)
        self.hp = self.schedule = hp
        blocks = self.data.micro_batch * hp.grad_accum
        self._share = self.world.rows(blocks, f"a step's {blocks} blocks (--batch-tokens / --block-size)")
        mine = self._share.stop - self._share.start
        self._pass = max(d for d in range(1, min(self.data.micro_batch, mine) + 1) if mine % d == 0)
        self._passes: list[torch.Tensor] = []
        self.grad_accum = mine // self._pass
        self.units_per_step = blocks * hp.block_size

    def _block_loss(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        hidden = self._body(input_ids=x, use_cache=False).last_hidden_state  # training builds no KV cache
        return next_token_loss(hidden, self._head, y, self._pad_to, reduction)

    def headline(self) -> str:
        c = self.hf_config
        shape = f"{c['n_layer']} layers x {c['n_embd']} wide, {self.num_parameters():,} parameters"
        if self.options.from_scratch:
            what = f"a NEW GPT-2 FROM SCRATCH (random weights, --from-scratch; {shape})"
        elif self.options.lora:
            trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
            what = f"a LoRA adapter (r={self.options.lora_r}, {trainable:,} trainable) on base {self.options.base!r} ({shape})"
        else:
            what = f"all weights of base {self.options.base!r} ({shape})"
        d = self.data
        ranks = f", {self.grad_accum} x {self._pass} on each of {self.world.size} processes" if self.world.size > 1 else ""
        return (f"Training {what} on {d.split['train_tokens']:,} tokens in blocks of {self.hp.block_size}, "
                f"{self.units_per_step:,} tokens per step ({d.micro_batch} x {self.hp.grad_accum} accumulated{ranks})"
                f"{describe_cpu_bf16(self._cpu_bf16)}")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.model.parameters()}.values())

    def check_start(self, val_loss: float) -> None:
        """Refuse to 'fine-tune' weights that predict no better than chance."""
        chance = math.log(self.hf_config["vocab_size"])
        if not self.options.from_scratch and val_loss >= UNTRAINED_SHARE * chance:
            raise UserError(
                f"base {self.options.base!r} starts at validation loss {val_loss:.2f} nats/token, what untrained weights "
                f"score (ln {self.hf_config['vocab_size']} = {chance:.2f}): refusing to fine-tune it. "
                "Check --base; to train from random weights on purpose, pass --from-scratch"
            )

    def train_loss(self) -> torch.Tensor:
        if not self._passes:
            self._passes = list(self._step_starts()[self._share].split(self._pass))
        with self._autocast():
            return self._loss(*self.data.rows(self._passes.pop(0)))

    def _step_starts(self) -> torch.Tensor:
        """The next step's blocks, over all ranks: its micro-batches of the seeded order, one after the other."""
        starts = []
        for _ in range(self.hp.grad_accum):
            if self.index >= self.data.steps_per_epoch(self.seed, self.epoch):
                self.epoch, self.index = self.epoch + 1, 0
            starts.append(self.data.block_starts(self.seed, self.epoch, self.index))
            self.index += 1
        return torch.cat(starts)

    @torch.no_grad()
    def evaluate(self, split: str, max_units: int) -> float:
        total, count = 0.0, 0
        with evaluating(self.model), self._autocast():
            for x, y in self.data.eval_blocks(split, max_units):
                total += float(self._block_loss(x, y, "sum"))
                count += y.numel()
        return total / count

    def sample(self, n_units: int, seed: int) -> str:
        generator = torch.Generator().manual_seed(seed)
        ids = generate_ids(self.model, [self.tokenizer.eos_token_id], generator, self.hf_config["n_positions"], 0.8)
        with evaluating(self.model), self._autocast():
            tokens = [next(ids) for _ in range(n_units)]
        return self.tokenizer.decode(tokens)

    def text(self, split: str, max_units: int | None = None) -> str:
        return self.data.text(split, self.tokenizer, max_units)

    def write(self, prompts: list[str], n_units: int, seed: int, sampling: Sampling) -> list[str]:
        """Continuations of each prompt (an empty one: an unconditional sample) of `n_units` tokens, one after the other."""
        generator = torch.Generator().manual_seed(seed)
        eos, texts = self.tokenizer.eos_token_id, []
        with evaluating(self.model), self._autocast():
            for prompt in prompts:
                ids = generate_ids(self.model, [eos, *self.tokenizer.encode(prompt)], generator, self.hf_config["n_positions"],
                                   sampling.temperature, sampling.top_k, sampling.top_p)
                tokens = list(itertools.takewhile(lambda t: t != eos, itertools.islice(ids, n_units)))
                texts.append(self.tokenizer.decode(tokens))
        return texts

    def decoder(self) -> GPT2Decoder:
        return GPT2Decoder.over(self.model, self.tokenizer, self.hf_config["n_positions"])

    def data_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        # the place in the epoch in blocks too: a run resumed with another micro-batch (a smaller card's, or
        # --micro-batch given again) counts its micro-batches in other units
        return {}, {"epoch": self.epoch, "index": self.index, "blocks": self.index * self.data.micro_batch}

    def load_data_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.epoch = meta["epoch"]
        self.index = meta["blocks"] // self.data.micro_batch if "blocks" in meta else meta["index"]

    def amounts(self) -> TextAmounts:
        d = self.data
        chars = [round(d.split[f"{s}_tokens"] * d.chars_per_token) for s in ("train", "val")]
        return TextAmounts(*chars, self.num_parameters(), from_scratch=self.options.from_scratch)

    def describe(self) -> dict:
        o = self.options
        return {
            **self.hf_config,
            "architectures": ["GPT2LMHeadModel"],
            "use_cache": True,
            "size": f"{self.hf_config['n_layer']}x{self.hf_config['n_embd']}",
            "parameters": self.num_parameters(),
            "base": o.base,
            "init": "scratch" if o.from_scratch else "pretrained",
            "base_weights": self.base_weights,  # LoRA: the frozen weights its adapter fits
            "lora": {"r": o.lora_r, "alpha": o.lora_alpha, "dropout": o.lora_dropout, "targets": o.lora_targets,
                     "merged": o.merge} if o.lora else None,
            "tokenizer": tokenizer_fingerprint(self.tokenizer),
            "split": self.data.split,
            "hparams": asdict(self.hp),
        }

    def save_weights(self, directory: Path, state: dict[str, torch.Tensor] | None = None) -> None:
        """save_pretrained into a scratch folder, then replace each weight file on its own; `state`: the model's
        state dict gathered whole from FSDP's shards (finetune.distributed).

        The model directory's config.json stays ours; a checkpoint's folder of
        its own (ghostwriting/, last/) gets transformers' config.json as well, so
        that it loads like the directory.
        """
        directory.mkdir(parents=True, exist_ok=True)
        names = WEIGHT_FILES if (directory / "config.json").exists() else (*WEIGHT_FILES, "config.json")
        with tempfile.TemporaryDirectory(prefix=".save-", dir=directory) as scratch_name:
            scratch = Path(scratch_name)  # in the model directory: a rename cannot cross file systems
            with bases.quiet_transformers():
                self.model.save_pretrained(scratch, state_dict=state)
                if not (directory / "tokenizer.json").exists():
                    self.tokenizer.save_pretrained(directory)
            for name in names:
                if (scratch / name).exists():
                    with replacing(directory / name) as tmp:
                        (scratch / name).rename(tmp)
        shutil.rmtree(directory / MERGED, ignore_errors=True)  # a merge of an older adapter must not shadow this one

    def finish(self, directory: Path) -> None:
        """With --merge: the best adapter folded into its base, saved in merged/ as a plain GPT-2."""
        if not (self.options.lora and self.options.merge and (directory / "adapter_model.safetensors").exists()):
            return
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(directory / "adapter_model.safetensors")))
        merged = self.model.merge_and_unload()
        # Whole or not at all: the loader trusts merged/ when it is there, and uses base + adapter when it is not.
        # An older merged/ (a resume that found no better weights merges again) is replaced whole.
        with replacing(directory / MERGED) as scratch, bases.quiet_transformers():
            merged.save_pretrained(scratch)
            self.tokenizer.save_pretrained(scratch)
