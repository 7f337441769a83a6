"""Training throughput on 1, 2, 4... processes under torchrun (DDP), and DDP's overhead on one.

Each run is the real command, `python -m finetune` (one process, no DDP) or torchrun starting it on N
processes, with the same global batch (strong scaling: N processes share a step); every run is repeated in
interleaved rounds (`--repeat`), and its best round counts. Throughput is read from the run's history.jsonl
(rank 0's training time, whole steps after the warm-up), in characters per second for a char-LSTM and tokens
per second for a GPT-2 built from its config (random weights: nothing to download).

- efficiency at N = throughput(N) / (N x throughput(1 process under DDP));
- DDP overhead = 1 - throughput(1 process under DDP) / throughput(no DDP). Goal: under 3%.

On a CPU each process runs one thread (gloo); on CUDA one GPU per process (NCCL), GPT-2 small in blocks of 1024.

    .venv/bin/python benchmarks/ddp_scaling.py                          # CPU: 1 and 2 processes
    .venv/bin/python benchmarks/ddp_scaling.py --device cuda            # 1 to all GPUs of the node, doubling
    .venv/bin/python benchmarks/ddp_scaling.py --device cuda --procs 1  # one GPU: the overhead alone
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import SHARED_CORPORA, add_json_option, emit, setup

FIGURES = {
    "device": "device", "threads_per_process": "threads per process", "steps": "timed steps",
    **{f"{kind}.{key}": f"{what} ({kind})" for kind in ("char", "gpt2") for key, what in (
        ("unit", "unit"), ("no_ddp", "no DDP"), ("overhead_at_1", "DDP's overhead on 1 process"),
        *((f"ddp.{n}", f"DDP, {n} processes") for n in (1, 2, 4, 8, 16)),
        *((f"efficiency.{n}", f"efficiency at {n} processes") for n in (1, 2, 4, 8, 16)))},
}


ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = SHARED_CORPORA.parent / "models" / "gpt2-tokenizer"
QUIET = ["--eval-every", "1000000", "--sample-every", "1000000", "--checkpoint-every", "1000000",
         "--ghostwriting-every", "0"]


def kind_flags(kind: str, gpu: bool) -> tuple[list[str], int]:
    """The command-line flags of a kind's run, and the units (characters or tokens) of one step."""
    if kind == "char":  # the throughput benchmark's shape: 2 x 256 on a CPU, 3 x 1024 on a GPU
        layers, hidden, seq, batch = (3, 1024, 256, 256) if gpu else (2, 256, 64, 64)
        return ["--model", "char", "--layers", str(layers), "--hidden", str(hidden), "--seq-len", str(seq),
                "--batch-size", str(batch), "--dropout", "0"], seq * batch
    n_layer, n_embd, n_head, block, blocks, micro = (12, 768, 12, 1024, 64, 16) if gpu else (2, 128, 4, 128, 8, 8)
    return ["--base", str(TOKENIZER), "--from-scratch", "--n-layer", str(n_layer), "--n-embd", str(n_embd),
            "--n-head", str(n_head), "--block-size", str(block), "--micro-batch", str(micro),
            "--batch-tokens", str(block * blocks), "--dropout", "0"], block * blocks


def throughput(args: argparse.Namespace, kind: str, procs: int | None, home: Path) -> float:
    """Units per second of one run: `procs` processes under torchrun, or None for a plain process without DDP."""
    flags, units = kind_flags(kind, args.device.startswith("cuda"))
    out = home / f"{kind}-{procs or 'plain'}"
    total = args.warmup + args.steps
    command = ["-m", "finetune", args.corpus, *flags, *QUIET, "--max-steps", str(total), "--device", args.device,
               "--out", str(out), "--force"]
    if procs is not None:
        command = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs), *command]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    # a session of its own, as torchrun gives each of its processes: Linux's autogroup scheduling shares a busy CPU
    # between sessions, and a run left in this one would get less of it than torchrun's
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                          start_new_session=True)
    if done.returncode:
        sys.exit(f"{kind} on {procs or 'one plain'} process(es) failed:\n{done.stderr[-3000:]}")
    history = {r["step"]: r for r in map(json.loads, (out / "history.jsonl").read_text().splitlines())}
    # elapsed at step k is recorded before step k's own time is added: measure whole steps in between
    seconds = history[total]["elapsed"] - history[args.warmup + 1]["elapsed"]
    return (total - args.warmup - 1) * units / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--corpus", default="shakespeare")
    parser.add_argument("--kinds", default="char,gpt2")
    parser.add_argument("--procs", default=None, help="process counts, e.g. 1,2,4 (default: 1,2 on a CPU, 1 to all "
                                                       "GPUs doubling on CUDA)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (OMP_NUM_THREADS)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every run, interleaved; the best of each counts")
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(None)
    if args.procs is None:
        gpus = 1
        if args.device.startswith("cuda"):
            import torch

            gpus = torch.cuda.device_count()
        counts = [1, 2] if not args.device.startswith("cuda") else [n for n in (1, 2, 4, 8, 16) if n <= gpus]
    else:
        counts = [int(n) for n in args.procs.split(",")]
    figures = {}
    for kind in args.kinds.split(","):
        unit = "chars" if kind == "char" else "tokens"
        best: dict[int | None, float] = {}
        for _ in range(args.repeat):  # interleaved, so that a machine's changing load falls on every run alike
            for n in (None, *counts):
                best[n] = max(best.get(n, 0.0), throughput(args, kind, n, home))
        plain = best.pop(None)
        rates = {n: best[n] for n in counts}
        one = rates.get(1)
        print(f"{kind}: no DDP {plain:,.0f} {unit}/s" + (f"; DDP overhead at 1 process {1 - one / plain:+.1%}" if one else ""))
        for n, rate in rates.items():
            print(f"  {n} process(es): {rate:,.0f} {unit}/s" + (f", efficiency {rate / (n * one):.0%}" if one else ""))
        figures[kind] = {"unit": f"{unit}/s", "no_ddp": round(plain), "ddp": {str(n): round(r) for n, r in rates.items()},
                         "overhead_at_1": round(1 - one / plain, 4) if one else None,
                         "efficiency": {str(n): round(r / (n * one), 3) for n, r in rates.items()} if one else None}
    emit({"device": args.device, "threads_per_process": args.threads, "steps": args.steps, **figures}, FIGURES, args)


if __name__ == "__main__":
    main()
