"""When does a char model trained from scratch follow its prompt? Before or after it starts to copy?

Issue 14 asks for a test in which a tiny char model's prompt-following falls as it
memorizes. This measures the premise on a made-up corpus built to make following
easy: every paragraph keeps to one noun (of 20), twice in each of its sentences,
with stop words between (which prompt-following does not count). A model that
carries the prompt's noun forward follows; one that writes any noun does not.

A 2x256 char-LSTM trains on it through `finetune` until it copies, then writes a
continuation of the start of each held-out paragraph (distinct nouns, never
trained on) at its best-validation, ghostwriting and last checkpoints. In the
same run, the held-out paragraphs' own continuations give the ceiling, and the
same continuations shuffled among the prompts give chance.

What it showed (the 2-core machine, 5 held-out prompts, chance 0.2): following
0 at step 450 (the ghostwriting checkpoint), 0.6 at the best validation loss
(step 1,050, where 6% of samples copied), 0.8 at step 3,000 with every sample
copying. The model learns to carry the noun just as it starts to recall the
corpus, and keeps it: for a char model trained from scratch, copying, not
prompt-following, marks memorizing (docs/choosing-a-checkpoint.md).

    .venv/bin/python benchmarks/prompt_following_char.py     # about 3 minutes on 2 cores
"""

import argparse
import random
from pathlib import Path

from _common import add_json_option, emit, setup

FIGURES = {
    "prompts": "held-out prompts", "chance": "chance", "real": "the paragraphs' own continuations",
    "shuffled": "continuations shuffled among the prompts",
    **{f"{at}.{key}": f"{what} ({at})" for at in ("ghostwriting", "best-val", "last") for key, what in (
        ("step", "step"), ("prompt_following", "prompt-following"))},
}


NOUNS = [
    "apple", "bridge", "candle", "dragon", "engine", "forest", "garden", "harbor", "island", "jacket", "kettle",
    "lantern", "mirror", "needle", "orchard", "pillow", "quarry", "river", "saddle", "tower"
]
STOP = [
    "above", "across", "after", "again", "against", "along", "always", "among", "around", "before", "behind",
    "below", "beside", "between", "beyond", "down", "during", "from", "into", "never", "nothing", "often",
    "once", "only", "over", "since", "through", "under", "until", "upon", "while", "within", "without"
]
SMALL = ["was", "is", "had", "has", "were", "the", "a", "an", "and", "but", "then", "so", "yet"]
PROMPT_CHARS = 200


def paragraph(rng: random.Random, noun: str) -> str:
    sentences = (f"{rng.choice(STOP).capitalize()} the {noun} {rng.choice(SMALL)} {rng.choice(STOP)} the {noun}."
                 for _ in range(rng.randint(8, 10)))
    return " ".join(sentences)


def corpus(seed: int, paragraphs: int) -> tuple[str, list[str]]:
    """The corpus text, and its held-out paragraphs: the last ones, with distinct nouns, all past the 90% cut."""
    rng = random.Random(seed)
    held = [paragraph(rng, noun) for noun in rng.sample(NOUNS, 8)]
    text = "\n\n".join([paragraph(rng, rng.choice(NOUNS)) for _ in range(paragraphs)] + held)
    cut = int(len(text) * 0.9)
    return text, [p for p in held if text.index(p) >= cut]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(args.threads)

    from assistant import load_model
    from finetune.checkpoint import read_jsonl
    from finetune.config import FinetuneConfig
    from finetune.ghostwriting.prompting import prompt_following
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    text, held = corpus(args.seed, args.paragraphs)
    path = Path(home) / "nouns.txt"
    path.write_text(text)
    out = Path(home) / "model"
    summary = finetune(FinetuneConfig(corpus=str(path), model="char", out=out, max_steps=args.steps, eval_every=150,
                            sample_every=10**9, seed=7, eval_samples=8, ghostwriting_every=1,
                            options=CharOptions(size="tiny", hidden=256, batch_size=8, seq_len=64)), Reporter())
    print("\nstep  val    copying  prompt-following (the run's own prompts, cut anywhere in the held-out text)")
    for row in read_jsonl(out / "history.jsonl"):
        if "copying" in row:
            print(f"{row['step']:>5} {row['val_loss']:.3f}  {row['copying']:>6.0%}  {row['prompt_following']}")

    prompts = [p[:PROMPT_CHARS] for p in held]
    real = [p[PROMPT_CHARS:] for p in held]
    result = {"prompts": len(prompts), "chance": round(1 / len(prompts), 3),
              "real": prompt_following(prompts, real), "shuffled": prompt_following(prompts, real[1:] + real[:1])}
    for at, step in (("best-val", summary.best_step), ("ghostwriting", summary.ghostwriting_step),
                     ("last", summary.steps)):
        model = load_model(f"{out}@{at}", "cpu")
        texts = [model.generate(p, max_new_chars=300, seed=i, temperature=0.8) for i, p in enumerate(prompts)]
        result[at] = {"step": step, "prompt_following": prompt_following(prompts, texts)}
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
