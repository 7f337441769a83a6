"""Char-LSTM training throughput (characters per second) against a naive loop, same run, same shapes.

Ours is the real training core (`finetune`), which on CUDA means cuDNN's fused
LSTM under autocast (float16 with loss scaling: torch runs
cuDNN's LSTM in float16 under any autocast) and fused AdamW. The naive loop is what a first attempt
looks like: an `nn.LSTMCell` per layer stepped in Python, float32, plain Adam.
On a CPU it also runs ours with the whole batch as one share on all the threads,
as it trained before finetune.cores shared the streams out between the cores:
the ratio is what that sharing buys.
Goal on an H100: >= 2.5M chars/s for 3x1024, batch 256, seq 256 in mixed precision.

    .venv/bin/python benchmarks/charlstm_throughput.py                  # CPU shapes: 2x256, batch 64 x 64
    .venv/bin/python benchmarks/charlstm_throughput.py --device cuda    # GPU shapes: 3x1024, batch 256 x 256
"""

import argparse
import time
from pathlib import Path

from _common import add_json_option, emit, fill_shape, setup

FIGURES = {
    "device": "device", "shape": "model and batch", "ours_chars_per_s": "ours, chars/s",
    "naive_chars_per_s": "naive nn.LSTMCell loop (float32), chars/s", "speedup": "ours / naive",
    "one_share_chars_per_s": "ours, the batch as one share on all threads (CPU), chars/s",
    "sharing_speedup": "the cores sharing the batch / one share",
}


GPU_SHAPE = {"layers": 3, "hidden": 1024, "batch": 256, "seq": 256}
CPU_SHAPE = {"layers": 2, "hidden": 256, "batch": 64, "seq": 64}


def ours(args: argparse.Namespace, home: Path, name: str = "ours") -> float:
    from rich.console import Console

    from finetune.checkpoint import read_jsonl
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    total = args.warmup + args.steps
    char = CharOptions(size="tiny", layers=args.layers, hidden=args.hidden, dropout=0.0, seq_len=args.seq,
                       batch_size=args.batch, lr=1e-3)
    config = FinetuneConfig(corpus="shakespeare", model="char", out=home / name, max_steps=total, device=args.device,
                            eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, warmup_steps=1, options=char,
                            ghostwriting_every=0)
    finetune(config, Reporter(Console(stderr=True, quiet=True)))
    history = {r["step"]: r for r in read_jsonl(home / name / "history.jsonl")}
    # elapsed at step k is recorded before step k's own time is added: measure whole steps in between
    seconds = history[total]["elapsed"] - history[args.warmup + 1]["elapsed"]
    return (total - args.warmup - 1) * args.batch * args.seq / seconds


def ours_one_share(args: argparse.Namespace, home: Path) -> float:
    """Ours with the batch as one share, its products split between the threads instead."""
    from kinds.charlstm import train

    shares_for = train.shares_for
    train.shares_for = lambda *_, **__: 1  # the only switch there is: a user has no reason to want one share
    try:
        return ours(args, home, "one-share")
    finally:
        train.shares_for = shares_for


def naive(args: argparse.Namespace) -> float:
    import torch
    from torch import nn

    from corpora import load_corpus
    from finetune.device import pick_device
    from kinds.charlstm.data import CharData, corpus_text
    from kinds.charlstm.model import Vocab

    device = pick_device(args.device)
    text = corpus_text(load_corpus("shakespeare"))
    vocab = Vocab.from_text(text)
    data = CharData(text, vocab, args.seq, args.batch)
    embed = nn.Embedding(len(vocab), args.hidden).to(device)
    cells = nn.ModuleList(nn.LSTMCell(args.hidden, args.hidden) for _ in range(args.layers)).to(device)
    head = nn.Linear(args.hidden, len(vocab)).to(device)
    params = [*embed.parameters(), *cells.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)

    def step(index: int) -> None:
        x, y = (t.to(device) for t in data.batch(0, 0, index % data.steps_per_epoch))
        states = [None] * args.layers
        outputs = []
        for t in range(args.seq):
            h = embed(x[:, t])
            for i, cell in enumerate(cells):
                states[i] = cell(h, states[i])
                h = states[i][0]
            outputs.append(head(h))
        loss = nn.functional.cross_entropy(torch.stack(outputs, 1).reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        float(loss.detach())

    for i in range(args.warmup):
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    return args.steps * args.batch * args.seq / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CPU, 50 on GPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (0: torch's default)")
    for key in CPU_SHAPE:
        parser.add_argument(f"--{key}", type=int, default=None)
    add_json_option(parser)
    args = parser.parse_args()
    gpu = fill_shape(args, GPU_SHAPE, CPU_SHAPE)
    args.steps = args.steps or (50 if gpu else 20)
    home = setup(None if gpu else args.threads)
    fast = ours(args, home)
    one = None if gpu else ours_one_share(args, home)
    slow = naive(args)
    shape = f"{args.layers}x{args.hidden}, batch {args.batch} x seq {args.seq}"
    print(f"ours:  {fast:,.0f} chars/s   ({shape}, {args.device})")
    if one is not None:
        print(f"ours, the batch as one share: {one:,.0f} chars/s (sharing x{fast / one:.2f})")
    print(f"naive: {slow:,.0f} chars/s")
    figures = {"device": args.device, "shape": shape, "ours_chars_per_s": round(fast),
               "naive_chars_per_s": round(slow), "speedup": round(fast / slow, 2)}
    if one is not None:
        figures.update(one_share_chars_per_s=round(one), sharing_speedup=round(fast / one, 2))
    emit(figures, FIGURES, args)


if __name__ == "__main__":
    main()
