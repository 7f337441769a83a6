"""Validation loss after a fixed wall-clock budget of CPU training on tiny-shakespeare.

Trains `--size small` (the preset a CPU user gets) through the real `finetune`
path for `--seconds` with `--threads` threads, then, in the same run, a plain
baseline: the same data and split, a 2x256 stateful LSTM with constant-lr Adam
and no schedule, for the same time. Both are scored on the whole validation
split. Goal (issue 18): <= 1.40 nats/char for ours in 2 minutes on 2 threads, and at least 0.25 below the
baseline in the same run (the margin is the figure that counts: machines differ by a few hundredths). Ours
trains at finetune's defaults, bf16 products included where the CPU has them in hardware; the baseline is float32.

    .venv/bin/python benchmarks/charlstm_cpu_quality.py            # the goal's setting
    .venv/bin/python benchmarks/charlstm_cpu_quality.py --device cuda --size medium --seconds 300 --threads 0
"""

import argparse
import time
from pathlib import Path

from _common import add_json_option, emit, setup

FIGURES = {
    "corpus": "corpus", "seconds": "training time, s", "threads": "torch threads", "size": "the preset (ours)",
    "device": "device", "val_loss": "ours: best validation loss, nats/char", "steps": "ours: steps",
    "goal": "goal for ours, nats/char", "met": "goal met", "baseline_val_loss": "baseline: validation loss, nats/char",
    "baseline_steps": "baseline: steps", "baseline_over_ours": "baseline / ours",
    "below_baseline": "ours below the baseline, nats/char", "margin_met": "at least --margin below the baseline",
}


def train_ours(args: argparse.Namespace, home: Path) -> tuple[float, int]:
    from rich.console import Console

    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    config = FinetuneConfig(corpus=args.corpus, model="char", out=home / "ours", max_time=args.seconds, device=args.device,
                            seed=args.seed, options=CharOptions(size=args.size, cpu_bf16=args.cpu_bf16),
                            ghostwriting_every=0)  # training alone: the baseline has no evaluation either
    summary = finetune(config, Reporter(Console(stderr=True, quiet=args.quiet)))
    print(f"ours: {summary.steps} steps, val {summary.val_loss:.4f} (best {summary.best_val:.4f}) nats/char")
    return summary.best_val, summary.steps


def train_baseline(args: argparse.Namespace) -> tuple[float, int]:
    """A plain 2x256 stateful LSTM: Adam at a constant 2e-3, clipping 5, batch 64 x 64, no schedule."""
    import torch

    from corpora import load_corpus
    from finetune.device import pick_device
    from kinds.charlstm.presets import CharHParams
    from kinds.charlstm.train import CharLSTMAdapter

    torch.manual_seed(args.seed)
    hp = CharHParams(2, 256, 0.0, 64, 64, 2e-3, 0, 0, 0, 0)
    # one share: the batch on all the threads, as a plain loop runs it (finetune.cores is ours)
    adapter = CharLSTMAdapter(load_corpus(args.corpus), "baseline", hp, args.seed, pick_device(args.device), shares=1)
    optimizer = torch.optim.Adam(adapter.model.parameters(), lr=hp.lr)
    start, steps = time.monotonic(), 0
    while time.monotonic() - start < args.seconds:
        loss = adapter.train_loss()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter.model.parameters(), 5.0)
        optimizer.step()
        steps += 1
    val = adapter.evaluate("val", 10**9)
    print(f"baseline: {steps} steps, val {val:.4f} nats/char")
    return val, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    parser.add_argument("--size", default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--corpus", default="shakespeare")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--goal", type=float, default=1.40)
    parser.add_argument("--margin", type=float, default=0.25, help="how far below the baseline ours must be")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--cpu-bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="ours with bf16 products on a CPU, or float32 (default: finetune's, bf16 where it has them)")
    parser.add_argument("--quiet", action="store_true", help="hide the training progress")
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(args.threads)
    ours, steps = train_ours(args, home)
    result = {"corpus": args.corpus, "seconds": args.seconds, "threads": args.threads, "size": args.size,
              "device": args.device, "val_loss": round(ours, 4), "steps": steps, "goal": args.goal, "met": ours <= args.goal}
    if not args.no_baseline:
        base, base_steps = train_baseline(args)
        result.update(baseline_val_loss=round(base, 4), baseline_steps=base_steps, baseline_over_ours=round(base / ours, 3),
                      below_baseline=round(base - ours, 4), margin_met=base - ours >= args.margin)
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
