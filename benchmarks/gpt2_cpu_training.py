"""GPT-2 fine-tuning on a CPU (the writer without a GPU): tokens per second, full and LoRA, against plain peft/transformers.

Ours is the real training core (`finetune.run.finetune` with GPT2Options:
LoRA r=8 on c_attn,c_proj, or all weights), on the base's own dropout as
`assistant finetune` runs it. The plain loop is what the transformers and peft
docs teach: `GPT2LMHeadModel.from_pretrained(base)` (with `get_peft_model` and
the same LoraConfig for LoRA), `model(input_ids, labels=...)`, default AdamW,
gradient clipping, on the same block size and blocks per step. Both run in
float32 on `--threads` torch threads, one after the other in this process.
Each figure is given per second of wall time and per second of the process's
CPU time (its threads together): on a machine that other work shares, the
CPU-time figure moves less, and the two ratios bracket the truth. `--repeats N`
alternates ours and plain N times and keeps each one's best.

The base is GPT-2 small's shape with random weights (the real GPT-2
tokenizer), saved with save_pretrained: fine-tuning refuses weights that
predict no better than chance, so its final LayerNorm is given the corpus'
token frequencies (a unigram model) through one embedding dimension. The
time per step does not depend on the weights' values.

    .venv/bin/python benchmarks/gpt2_cpu_training.py                       # GPT-2 small, 2 threads, 2 blocks of 256
    .venv/bin/python benchmarks/gpt2_cpu_training.py --n-layer 2 --n-embd 128 --n-head 4   # a quick look
    .venv/bin/python benchmarks/gpt2_cpu_training.py --modes lora --repeats 2   # ours at finetune's default precision
    .venv/bin/python benchmarks/gpt2_cpu_training.py --modes lora --repeats 2 --no-cpu-bf16   # ours in float32
"""

import argparse
import time
from pathlib import Path
from typing import Any, NamedTuple

from _common import SHARED_CORPORA, add_json_option, emit, setup

FIGURES = {
    "shape": "model, step and threads",
    **{f"{mode}.{key}": f"{what} ({mode})" for mode in ("lora", "full") for key, what in (
        ("ours_tokens_per_s", "ours, tokens/s"), ("plain_tokens_per_s", "plain peft/transformers, tokens/s"),
        ("speedup", "ours / plain"), ("ours_tokens_per_cpu_s", "ours, tokens per CPU-second"),
        ("plain_tokens_per_cpu_s", "plain, tokens per CPU-second"), ("cpu_speedup", "ours / plain in CPU time"))},
}


TOKENIZER = SHARED_CORPORA.parent / "models" / "gpt2-tokenizer"
CORPUS = SHARED_CORPORA / "pkd" / "the-eyes-have-it.txt"
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["c_attn", "c_proj"]}


def make_base(args: argparse.Namespace, home: Path) -> Path:
    """A random GPT-2 of the asked shape whose output layer knows the corpus' unigram frequencies."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from corpora import load_corpus
    from kinds.gpt2.data import tokenize

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head))
    ids = tokenize(load_corpus(str(args.corpus)), tokenizer).ids.astype(np.int64)
    counts = torch.from_numpy(np.bincount(ids, minlength=model.config.vocab_size)).double() + 1
    scale = 10.0
    with torch.no_grad():  # the last hidden state's dimension 0 is `scale` everywhere; its column of wte, log p / scale
        model.transformer.ln_f.weight[0], model.transformer.ln_f.bias[0] = 0.0, scale
        model.transformer.wte.weight[:, 0] = (counts / counts.sum()).log().float() / scale
    base = home / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    return base


class Rate(NamedTuple):
    """Tokens per second of wall time, and per second of the process's CPU time (all its threads)."""

    wall: float
    cpu: float


def rate(tokens: int, start: tuple[float, float], end: tuple[float, float]) -> Rate:
    return Rate(tokens / (end[0] - start[0]), tokens / (end[1] - start[1]))


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def ours(args: argparse.Namespace, home: Path, base: Path, lora: bool, run: int) -> Rate:
    from rich.console import Console

    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    class StepClock(Reporter):
        """The progress display, silent, noting the time as each step is reported."""

        def __init__(self) -> None:
            super().__init__(Console(stderr=True, quiet=True))
            self.times: dict[int, tuple[float, float]] = {}

        def update(self, completed: int, step: int, *args: Any, **kwargs: Any) -> None:
            self.times[step] = clock()
            super().update(completed, step, *args, **kwargs)

    # one more step than timed: the last one is followed by the run's final validation and checkpoint
    options = GPT2Options(base=str(base), block_size=args.block, micro_batch=args.micro,
                          batch_tokens=args.block * args.micro, lora=lora, cpu_bf16=args.cpu_bf16)
    config = FinetuneConfig(corpus=str(args.corpus), out=home / f"ours-{'lora' if lora else 'full'}-{run}",
                            max_steps=args.warmup + args.steps + 1, device="cpu", eval_every=10**9,
                            sample_every=10**9, checkpoint_every=10**9, eval_chars=args.block * args.micro * 4,
                            options=options, ghostwriting_every=0)
    reporter = StepClock()
    finetune(config, reporter)
    return rate(args.steps * args.block * args.micro, reporter.times[args.warmup],
                reporter.times[args.warmup + args.steps])


def plain(args: argparse.Namespace, base: Path, lora: bool) -> Rate:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from corpora import load_corpus
    from kinds.gpt2.data import tokenize

    ids = torch.from_numpy(tokenize(load_corpus(str(args.corpus)), AutoTokenizer.from_pretrained(base)).ids.astype(np.int64))
    model = GPT2LMHeadModel.from_pretrained(base)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(**LORA, fan_in_fan_out=True, task_type="CAUSAL_LM"))
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=5e-4 if lora else 6e-5)
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        optimizer.zero_grad()
        starts = torch.randint(0, len(ids) - args.block, (args.micro,), generator=g)
        x = torch.stack([ids[s : s + args.block] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        float(loss.detach())

    for _ in range(args.warmup):
        step()
    start = clock()
    for _ in range(args.steps):
        step()
    return rate(args.steps * args.block * args.micro, start, clock())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a text file (default: a PKD story)")
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER, help="a directory with the GPT-2 tokenizer")
    parser.add_argument("--modes", default="lora,full", help="lora, full or both, in that order")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=1, help="ours and plain alternated this often; the best of each")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--cpu-bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="ours with bf16 products, or float32 (default: finetune's, bf16 where the CPU has it)")
    parser.add_argument("--n-layer", type=int, default=12)
    parser.add_argument("--n-embd", type=int, default=768)
    parser.add_argument("--n-head", type=int, default=12)
    parser.add_argument("--block", type=int, default=256, help="tokens per block")
    parser.add_argument("--micro", type=int, default=2, help="blocks per step (one forward pass)")
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(args.threads)
    base = make_base(args, home)
    from finetune.device import cpu_has_native_bf16

    cpu_bf16 = args.cpu_bf16 if args.cpu_bf16 is not None else cpu_has_native_bf16()
    shape = (f"{args.n_layer}x{args.n_embd}, {args.micro} x {args.block} tokens per step, {args.threads} threads"
             + (", ours with bf16 products" if cpu_bf16 else ", float32"))
    results = {}
    for mode in args.modes.split(","):
        lora = mode == "lora"
        fast, slow = Rate(0.0, 0.0), Rate(0.0, 0.0)
        for run in range(args.repeats):
            fast = Rate(*map(max, fast, ours(args, home, base, lora, run)))
            slow = Rate(*map(max, slow, plain(args, base, lora)))
        print(f"{mode:4}  ours: {fast.wall:,.1f} tokens/s ({fast.cpu:,.1f} per CPU-second)   plain peft/transformers: "
              f"{slow.wall:,.1f} tokens/s ({slow.cpu:,.1f})   x{fast.wall / slow.wall:.2f} (x{fast.cpu / slow.cpu:.2f} "
              f"in CPU time)   ({shape})", flush=True)
        results[mode] = {"ours_tokens_per_s": round(fast.wall, 1), "plain_tokens_per_s": round(slow.wall, 1),
                         "speedup": round(fast.wall / slow.wall, 2), "ours_tokens_per_cpu_s": round(fast.cpu, 1),
                         "plain_tokens_per_cpu_s": round(slow.cpu, 1), "cpu_speedup": round(fast.cpu / slow.cpu, 2)}
    emit({"shape": shape, **results}, FIGURES, args)


if __name__ == "__main__":
    main()
