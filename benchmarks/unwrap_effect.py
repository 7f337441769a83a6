"""What joining hard-wrapped lines (corpora.unwrap) does to a char model: its validation loss and its samples.

Two `small` char-LSTMs trained on a Gutenberg corpus with the same seed and
number of steps (a number of steps, not a time, so that a busy machine changes
how long it takes, not the result): one on the text as Gutenberg wraps it
(--no-unwrap, the naive baseline: what every run did before), one on the
joined paragraphs (the default). For each: validation loss on its own
validation text (the same characters but for line breaks turned into spaces)
and the n-gram baseline's on it, and in `--samples` samples of `--chars`
characters (unconditional, and after three prompts in turn): line breaks inside a
paragraph per 1,000 characters (a single newline, as in "he leaped onto the⏎probe"),
and how many of those fall inside a sentence.

    .venv/bin/python benchmarks/unwrap_effect.py                         # pkd, 600 steps each, 2 threads
    .venv/bin/python benchmarks/unwrap_effect.py --corpus austen --steps 1500
"""

import argparse
import re

from _common import setup

PROMPTS = ("", "The door opened and", "He looked at the machine for a long time, then", "\"Well,\" she said, \"")
SINGLE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")
MID_SENTENCE = re.compile(r"[^.!?:;\"'\u201d\u2019_)\s]\n(?!\n)")  # a line that ends inside a sentence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="pkd")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", default="small")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--chars", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    home = setup(args.threads)
    rows = {label: run(args, home, unwrap) for label, unwrap in (("wrapped (--no-unwrap)", False), ("unwrapped", None))}
    for label, r in rows.items():
        print(f"{label:22} {r['steps']} steps in {r['elapsed']:.0f} s: val {r['val']:.3f} nats/char "
              f"(n-gram {r['ngram']:.3f}, ratio {r['val'] / r['ngram']:.3f}); samples: {r['breaks']:.1f} line breaks "
              f"inside a paragraph per 1,000 characters, {r['mid']:.1f} of them mid-sentence")
    a, b = rows.values()
    over_ngram = (b["val"] / b["ngram"]) / (a["val"] / a["ngram"])
    print(f"unwrapped / wrapped: val loss x{b['val'] / a['val']:.3f}, loss over the n-gram's x{over_ngram:.3f}, "
          f"mid-sentence breaks in samples {b['mid']:.1f} vs {a['mid']:.1f} per 1,000 characters")


def run(args: argparse.Namespace, home, unwrap: bool | None) -> dict:
    from rich.console import Console

    from assistant import load_model
    from assistant.evaluation import evaluate
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    out = home / ("unwrapped" if unwrap is None else "wrapped")
    config = FinetuneConfig(corpus=args.corpus, model="char", out=out, max_steps=args.steps, seed=1337, unwrap=unwrap,
                            options=CharOptions(size=args.size), ghostwriting_every=0)
    summary = finetune(config, Reporter(Console(stderr=True, quiet=True)))
    model = load_model(f"{out}@best-val", "cpu")
    measured = evaluate(model, "val")
    texts = [model.generate(PROMPTS[i % len(PROMPTS)], max_new_chars=args.chars, temperature=0.8, seed=i)
             for i in range(args.samples)]
    chars = sum(map(len, texts)) / 1000
    return {"steps": summary.steps, "elapsed": summary.elapsed, "val": measured.model.per_char,
            "ngram": measured.baseline.per_char,
            "breaks": sum(len(SINGLE_BREAK.findall(t)) for t in texts) / chars,
            "mid": sum(len(MID_SENTENCE.findall(t)) for t in texts) / chars}


if __name__ == "__main__":
    main()
