"""Char-LSTM generation speed on a CPU: the fused single-step path against a naive per-step nn.LSTM loop, same run.

A 2x512 char-LSTM (random weights: the speed does not depend on them) writes
200 characters greedily after a 64-character prompt. The baseline is the
plain path, one nn.LSTM call per character (`generate_ids(fast=False)`);
ours is the fused step (kinds.charlstm.fast) as the kind's own sampler runs
it, and "through the loop" the same step as `assistant generate` runs it:
the generation API's one loop (contract.loop), its chain and bookkeeping
included. Each is timed `--repeats` times, interleaved, and the medians
compared; the texts must be the same. Goal: >= 5x on 2 threads, and the loop
close to the kind's own sampler.

    .venv/bin/python benchmarks/charlstm_generate.py
"""

import argparse
import statistics
import time

from _common import add_json_option, emit

FIGURES = {"shape": "model and run", "ours_ms": "ours (fused step), ms", "naive_ms": "per-step nn.LSTM, ms",
           "speedup": "naive / ours", "loop_ms": "ours through the generation loop, ms",
           "loop_cost": "through the loop / ours - 1"}


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

    from itertools import islice

    import torch

    from contract.loop import tokens
    from contract.sampling import Sampling
    from kinds.charlstm.infer import CharDecoder
    from kinds.charlstm.model import CharLSTM, CharLSTMConfig, Vocab

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CharLSTM(CharLSTMConfig(vocab_size=80, layers=args.layers, hidden=args.hidden, dropout=0.0)).eval()
    prime = [i % 80 for i in range(args.prompt)]
    vocab = Vocab("".join(chr(ord(" ") + i) for i in range(80)))
    decoder = CharDecoder(vocab, "", model)

    def run(way: str) -> tuple[float, list[int]]:
        start = time.perf_counter()
        if way == "loop":
            written = tokens(decoder, vocab.decode(prime), Sampling(temperature=0.0), torch.Generator().manual_seed(0))
            out = [token.id for token in islice(written, args.chars)]
        else:
            ids = model.generate_ids(prime, torch.Generator().manual_seed(0), 0.0, fast=way == "fast")
            out = [next(ids) for _ in range(args.chars)]
        return time.perf_counter() - start, out

    ways = ("naive", "fast", "loop")
    for way in ways:
        run(way)  # warm up: weights fused, allocators and oneDNN primed
    times: dict[str, list[float]] = {way: [] for way in ways}
    texts = {}
    for _ in range(args.repeats):
        for way in ways:
            seconds, texts[way] = run(way)
            times[way].append(seconds)
    assert texts["fast"] == texts["naive"] == texts["loop"], "the three ways wrote different texts"
    ours, naive, loop = (statistics.median(times[way]) for way in ("fast", "naive", "loop"))
    shape = f"{args.layers}x{args.hidden}, {args.chars} chars after {args.prompt}, {args.threads} threads"
    print(f"ours (fused step):    {ours * 1e3:7.1f} ms  ({shape})")
    print(f"naive (nn.LSTM/step): {naive * 1e3:7.1f} ms")
    print(f"through the loop:     {loop * 1e3:7.1f} ms  ({loop / ours - 1:+.1%} against ours)")
    print(f"speedup x{naive / ours:.1f} (goal >= 5), same greedy text")
    emit({"shape": shape, "ours_ms": round(ours * 1e3, 1), "naive_ms": round(naive * 1e3, 1),
          "speedup": round(naive / ours, 2), "loop_ms": round(loop * 1e3, 1), "loop_cost": round(loop / ours - 1, 3)},
         FIGURES, args)


if __name__ == "__main__":
    main()
