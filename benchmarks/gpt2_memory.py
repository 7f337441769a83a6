"""GPT-2 on an 8 GB card: three runs that must train without running out of memory, with their peaks.

The GPU is capped with `torch.cuda.set_per_process_memory_fraction` to
`--cap-gib` (8 by default), and each run is finetune's own, at its defaults
(`--micro-batch auto`, 32k tokens per step, bf16 autocast, torch.compile):

- GPT-2 small (124M), all weights, blocks of 1024 (trained from random weights:
  the same weights, gradients and AdamW moments as full fine-tuning);
- gpt2-medium (355M) with LoRA;
- gpt2-large (774M) with LoRA and gradient checkpointing.

Bases are built from the GPT-2 configs with random weights (no download); the
start check that refuses an untrained base is skipped for them. Each run prints
the micro-batch the probe chose, the peak memory torch allocated, and tokens
per second. The baseline is the same run with the largest micro-batch the
old table gave an 8 GB card (8 blocks of 1024): it runs out of memory where
the measured choice does not.

    .venv/bin/python benchmarks/gpt2_memory.py                 # a GPU: the three runs under an 8 GB cap
    .venv/bin/python benchmarks/gpt2_memory.py --cap-gib 6     # a 6 GB laptop card

On a CPU there is no memory to cap; tests/test_memory.py runs the search against a fake card there.
"""

import argparse
import gc
import json
import time
from pathlib import Path

from _common import SHARED_CORPORA, setup

TOKENIZER = SHARED_CORPORA.parent / "models" / "gpt2-tokenizer"
SHAPES = {"gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "gpt2-large": (36, 1280, 20)}
RUNS = [("gpt2, all weights", "gpt2", {"from_scratch": True}),
        ("gpt2-medium, LoRA", "gpt2-medium", {"lora": True}),
        ("gpt2-large, LoRA + gradient checkpointing", "gpt2-large", {"lora": True, "grad_checkpointing": True})]
OLD_TABLE_MICRO = 8  # what the card-size table gave a card under 16 GB: 8,192 tokens per pass


def random_base(name: str, home: Path) -> Path:
    """A save_pretrained directory of GPT-2 `name`'s shape, random weights, the real tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    layers, width, heads = SHAPES[name]
    folder = home / f"base-{name}"
    GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=width, n_head=heads)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    return folder


def run(label: str, name: str, extra: dict, micro: int | None, args: argparse.Namespace, home: Path) -> dict:
    import torch
    from rich.console import Console

    from contract import modeldir
    from finetune.checkpoint import read_jsonl
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    if extra.get("from_scratch"):
        layers, width, heads = SHAPES[name]
        options = GPT2Options(base=str(TOKENIZER), n_layer=layers, n_embd=width, n_head=heads, micro_batch=micro, **extra)
    else:
        options = GPT2Options(base=str(random_base(name, home)), micro_batch=micro, **extra)
    out = home / f"run-{name}-{micro or 'auto'}"
    total = args.warmup + args.steps
    config = FinetuneConfig(corpus=args.corpus, out=out, max_steps=total, device="cuda", eval_every=10**9,
                            sample_every=10**9, checkpoint_every=10**9, eval_chars=65_536, options=options,
                            ghostwriting_every=0)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    figures = {"run": label, "micro": micro or "auto"}
    try:
        finetune(config, Reporter(Console(stderr=True, quiet=True)))
    except torch.OutOfMemoryError:
        return {**figures, "result": "out of memory", "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    history = {r["step"]: r for r in read_jsonl(out / "history.jsonl")}
    hp = modeldir.read(out).hparams
    seconds = history[total]["elapsed"] - history[args.warmup + 1]["elapsed"]
    tokens = (total - args.warmup - 1) * hp["block_size"] * hp["micro_batch"] * hp["grad_accum"]
    return {**figures, "result": "trained", "chosen": f"{hp['micro_batch']} x {hp['grad_accum']} of {hp['block_size']}",
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "tokens_per_s": round(tokens / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap-gib", type=float, default=8.0, help="the card's memory, as a cap on this process")
    parser.add_argument("--corpus", default="pkd")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the runs at the old table's micro-batch")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpt2_memory.py measures a GPU's memory: run it where CUDA is (tests/test_memory.py is the CPU form)")
    home = setup(None)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib * 2**30 / total))
    from kinds.gpt2.train import GPT2Adapter

    GPT2Adapter.check_start = lambda self, val_loss: None  # random bases: there is nothing to fine-tune, only to fit
    print(f"{torch.cuda.get_device_name(0)}, capped to {args.cap_gib:g} GiB of {total / 2**30:.0f}")
    for label, name, extra in RUNS:
        for micro in (None,) if args.no_baseline else (None, OLD_TABLE_MICRO):
            started = time.perf_counter()
            figures = run(label, name, extra, micro, args, home)
            print(json.dumps({**figures, "seconds": round(time.perf_counter() - started)}), flush=True)


if __name__ == "__main__":
    main()
