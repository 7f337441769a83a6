"""Char-LSTM generation speed on a CPU: the fused single-step path against a naive per-step nn.LSTM loop, same run.

A 2x512 char-LSTM (random weights: the speed does not depend on them) writes
200 characters greedily after a 64-character prompt. The baseline is the
plain path, one nn.LSTM call per character (`generate_ids(fast=False)`);
ours is what `assistant generate` runs (kinds.charlstm.fast). Each is timed
`--repeats` times, interleaved, and the medians compared; the texts must be
the same. Goal: >= 5x on 2 threads.

    .venv/bin/python benchmarks/charlstm_generate.py
"""

import argparse
import statistics
import time

from _common import add_json_option, emit

FIGURES = {"shape": "model and run", "ours_ms": "ours (fused step), ms", "naive_ms": "per-step nn.LSTM, ms",
           "speedup": "naive / ours"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--chars", type=int, default=200)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    add_json_option(parser)
    args = parser.parse_args()

    import torch

    from kinds.charlstm.model import CharLSTM, CharLSTMConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CharLSTM(CharLSTMConfig(vocab_size=80, layers=args.layers, hidden=args.hidden, dropout=0.0)).eval()
    prime = [i % 80 for i in range(args.prompt)]

    def run(fast: bool) -> tuple[float, list[int]]:
        start = time.perf_counter()
        ids = model.generate_ids(prime, torch.Generator().manual_seed(0), 0.0, fast=fast)
        out = [next(ids) for _ in range(args.chars)]
        return time.perf_counter() - start, out

    run(True), run(False)  # warm up: weights fused, allocators and oneDNN primed
    times: dict[bool, list[float]] = {True: [], False: []}
    texts = {}
    for _ in range(args.repeats):
        for fast in (False, True):
            seconds, texts[fast] = run(fast)
            times[fast].append(seconds)
    assert texts[True] == texts[False], "the fast path wrote other text than the plain one"
    ours, naive = statistics.median(times[True]), statistics.median(times[False])
    shape = f"{args.layers}x{args.hidden}, {args.chars} chars after {args.prompt}, {args.threads} threads"
    print(f"ours (fused step):    {ours * 1e3:7.1f} ms  ({shape})")
    print(f"naive (nn.LSTM/step): {naive * 1e3:7.1f} ms")
    print(f"speedup x{naive / ours:.1f} (goal >= 5), same greedy text")
    emit({"shape": shape, "ours_ms": round(ours * 1e3, 1), "naive_ms": round(naive * 1e3, 1),
          "speedup": round(naive / ours, 2)}, FIGURES, args)


if __name__ == "__main__":
    main()
