"""The n-gram baseline of `assistant eval` on Austen (4 MB): fit and score time, and its bits per character beside a
small char-LSTM's.

The baseline (corpora.ngram: character n-grams, interpolated Kneser-Ney, n
chosen on validation up to 20) is fitted to the char models' training split
(90%), its n chosen on the validation split (5%) and scored on the test split
(5%). Timed: the whole fit with the search for n, a fit at the chosen n alone,
and scoring the test split. Beside it, in the same run: Python's Counter over
the same n-grams, one order only (the naive way to count), and a `small`
char-LSTM trained for `--steps` through `finetune` (a number of steps, not a
time, so that a busy machine changes how long it takes, not the result),
measured on the same splits by `assistant eval`'s code. Goal: the fit in
seconds.

    .venv/bin/python benchmarks/ngram_baseline.py                  # 1,000 steps of LSTM training, 2 threads
    .venv/bin/python benchmarks/ngram_baseline.py --steps 0        # the n-gram model alone
"""

import argparse
import math
import time
from collections import Counter

from _common import add_json_option, emit, setup

FIGURES = {
    "corpus": "corpus", "train_chars": "training characters", "val_chars": "validation characters",
    "test_chars": "test characters", "fit_s": "fit with the search for n, s", "order": "n chosen",
    "val_bits_per_char": "n-gram, validation bits/char", "fit_at_n_s": "fit at the chosen n alone, s",
    "score_s": "score the test split, s", "test_bits_per_char": "n-gram, test bits/char",
    "counter_s": "naive: Python's Counter over one order of n-grams, s",
    "lstm.size": "char-LSTM preset", "lstm.steps": "char-LSTM steps", "lstm.seconds": "char-LSTM training time, s",
    **{f"lstm.{split}_{who}": f"{name} on the {split} split, bits/char" for split in ("val", "test")
       for who, name in (("bits_per_char", "char-LSTM"), ("ngram_bits_per_char", "n-gram, the same characters"))},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="austen")
    parser.add_argument("--steps", type=int, default=1000, help="char-LSTM training steps (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="small")
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(args.threads)

    from corpora import load_corpus
    from corpora.ngram import NGramModel
    from kinds.charlstm.data import corpus_text, split_points

    corpus = load_corpus(args.corpus)
    text = corpus_text(corpus)
    split = {name: text[a:b] for name, (a, b) in split_points(len(text)).items()}
    print(f"{args.corpus}: {len(text):,} characters; train {len(split['train']):,}, val {len(split['val']):,}, "
          f"test {len(split['test']):,}")

    start = time.perf_counter()
    model = NGramModel.fit(split["train"], split["val"])
    fit_s = time.perf_counter() - start
    n = model.order
    print(f"fit with the search for n: {fit_s:.2f} s; validation loss by n (nats/char): "
          + ", ".join(f"{k}: {v:.3f}" for k, v in model.scores.items()) + f"; chosen n = {n}")
    start = time.perf_counter()
    NGramModel(split["train"], n)
    fit_at_n_s = time.perf_counter() - start
    print(f"fit at n = {n} alone: {fit_at_n_s:.2f} s")
    start = time.perf_counter()
    test = model.loss(split["test"])
    score_s = time.perf_counter() - start
    print(f"score the test split: {score_s:.2f} s; {n}-gram test loss {test:.3f} nats/char, "
          f"{test / math.log(2):.3f} bits/char (validation {model.scores[n] / math.log(2):.3f})")
    start = time.perf_counter()
    train = split["train"]
    Counter(train[i : i + n] for i in range(len(train) - n + 1))
    counter_s = time.perf_counter() - start
    print(f"naive: Python's Counter over the {n}-grams alone (one order of {n}): {counter_s:.2f} s")
    result = {"corpus": args.corpus, "train_chars": len(split["train"]), "val_chars": len(split["val"]),
              "test_chars": len(split["test"]), "fit_s": round(fit_s, 2), "order": n,
              "val_bits_per_char": round(model.scores[n] / math.log(2), 3), "fit_at_n_s": round(fit_at_n_s, 2),
              "score_s": round(score_s, 2), "test_bits_per_char": round(test / math.log(2), 3),
              "counter_s": round(counter_s, 2)}
    if args.steps > 0:
        result["lstm"] = lstm(args, home)
    emit(result, FIGURES, args)


def lstm(args: argparse.Namespace, home) -> dict:
    """A char-LSTM trained for --steps, measured on val and test as `assistant eval` measures it."""
    from rich.console import Console

    from assistant import load_model
    from assistant.evaluation import evaluate
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    config = FinetuneConfig(corpus=args.corpus, model="char", out=home / "lstm", max_steps=args.steps, seed=1337,
                            options=CharOptions(size=args.size), ghostwriting_every=0)
    summary = finetune(config, Reporter(Console(stderr=True, quiet=True)))
    model = load_model(f"{home / 'lstm'}@best-val", "cpu")
    result = {"size": args.size, "steps": summary.steps, "seconds": round(summary.elapsed)}
    for split in ("val", "test"):
        e = evaluate(model, split)
        print(f"{args.size} char-LSTM ({summary.steps} steps, {summary.elapsed:.0f} s) on {split} "
              f"({e.model.units:,} chars): {e.model.bits_per_char:.3f} bits/char; {e.n}-gram on the same characters: "
              f"{e.baseline.bits_per_char:.3f} bits/char")
        result |= {f"{split}_bits_per_char": round(e.model.bits_per_char, 3),
                   f"{split}_ngram_bits_per_char": round(e.baseline.bits_per_char, 3)}
    return result


if __name__ == "__main__":
    main()
