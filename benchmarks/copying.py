"""Against copying: a char `small` model trained on PKD until it copies, with and without the copy guard, same run.

A model that has learnt its corpus by heart writes whole passages of it.
The copy guard (`--max-copy N`, contract.copyguard) forbids every character
that would stretch a verbatim match with the corpus past N characters; DRY
and the repetition penalty only see the text being written. This benchmark
measures all of them with the ghostwriting evaluation (finetune.ghostwriting,
through `assistant report --sweep`'s code) at one temperature: the share of
samples holding a verbatim span of more than N characters, the style score
and prompt-following, each with its 95% interval, and the style drop from
the unguarded baseline with the interval of that difference (Newcombe's).
What each setting costs per token is benchmarks/samplers.py's.

The model: `--train` makes it (the recipe below, into the git-ignored .bench/;
about 30 minutes on 2 shared cores); any other copying model can be given
with --model (NAME@CHECKPOINT reads that checkpoint). The recipe is a
`small` char-LSTM (1.1M parameters, no dropout, no weight decay) on four PKD
stories (62,000 characters), far past its best validation loss (step 500).

Goals (issue 37): unguarded it copies (20-30% of samples over 50 characters);
with --max-copy 50, 0%; the style score falls by at most 0.05.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/copying.py --train    # once: trains .bench/slice-char
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/copying.py [--model .bench/slice-char@last]
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import SHARED_CORPORA, add_json_option, emit, setup

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
STORIES = ("beyond-lies-the-wub", "beyond-the-door", "the-eyes-have-it", "the-gun")
SETTINGS = ("unguarded", "guard", "dry", "repetition")
FIGURES = {
    "temperature": "temperature of every setting",
    **{f"{key}.{figure}": f"{key}: {what}" for key in SETTINGS for figure, what in (
        ("copying", "share of samples copying more than --max-copy characters"), ("span", "mean longest copied span"),
        ("style", "style score"), ("style_drop", "style drop from the unguarded baseline"),
        ("prompt_following", "prompt-following"))},
}


def train(out: Path, steps: int) -> None:
    """The recipe: a slice of PKD, the small preset with no weight decay, trained far past its best validation."""
    corpus = BENCH / "pkd-slice"
    corpus.mkdir(parents=True, exist_ok=True)
    for story in STORIES:
        shutil.copyfile(SHARED_CORPORA / "pkd" / f"{story}.txt", corpus / f"{story}.txt")
    command = [sys.executable, "-m", "assistant", "finetune", str(corpus), "--model", "char", "--size", "small",
               "--weight-decay", "0", "--max-steps", str(steps), "--out", str(out), "--force"]
    print("training:", " ".join(command[1:]), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"trained in {time.monotonic() - started:.0f} s", flush=True)


def difference(a: dict, b: dict, key: str) -> tuple[float, float, float]:
    """b - a for one share, with Newcombe's 95% interval from the two Wilson intervals."""
    pa, (la, ua) = a[key], a[f"{key}_ci"]
    pb, (lb, ub) = b[key], b[f"{key}_ci"]
    diff = pb - pa
    return diff, diff - math.hypot(pb - lb, ua - pa), diff + math.hypot(ub - pb, pa - la)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BENCH / "slice-char") + "@last")
    parser.add_argument("--train", action="store_true", help="train the model first (the recipe; half an hour)")
    parser.add_argument("--steps", type=int, default=3000, help="--train's steps")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-copy", type=int, default=50)
    parser.add_argument("--samples", type=int, default=64, help="unconditional samples, and up to as many prompts")
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    home = setup(args.threads)
    if args.train:
        train(Path(args.model.partition("@")[0]), args.steps)

    from assistant.generation import load_model
    from assistant.report import sweep
    from contract.sampling import Sampling
    from finetune.ghostwriting.choice import share_text
    from finetune.ghostwriting.evaluate import GhostwritingOptions

    model = load_model(args.model, "cpu")
    # a sample copies when it holds MORE than --max-copy characters of the corpus: the guard allows exactly that many
    options = GhostwritingOptions(samples=args.samples, min_span=args.max_copy + 1,
                                  sampling=Sampling(temperature=args.temperature))
    settings = {"unguarded": ("temperature alone", {}),
                "guard": (f"--max-copy {args.max_copy}", {"max_copy": args.max_copy}),
                "dry": ("DRY 0.8", {"dry_multiplier": 0.8}),
                "repetition": ("repetition penalty 1.1", {"repetition_penalty": 1.1})}
    swept = sweep(model, options, (args.temperature,), list(settings.values()))
    rows = {key: (row.setting, row.figures) for key, row in zip(settings, swept, strict=True)}
    base = rows["unguarded"][1]
    print(f"{model.card.label}, step {model.card.step}: temperature {args.temperature:g}, copying: more than "
          f"{args.max_copy} characters of the corpus verbatim; {home}")
    print("| setting | copying | mean span | style | style drop | prompt-following |")
    print("|" + "---|" * 6)
    result: dict = {"temperature": args.temperature}
    for key, (label, figures) in rows.items():
        drop, low, high = difference(figures, base, "style")
        print(f"| {label} | {share_text(figures, 'copying')} | {figures['copied_span']:.0f} | {share_text(figures, 'style')} "
              f"| {drop:+.2f} ({low:+.2f} to {high:+.2f}) | {share_text(figures, 'prompt_following')} |")
        result[key] = {"copying": figures["copying"], "span": figures["copied_span"], "style": figures["style"],
                       "style_drop": round(drop, 4), "prompt_following": figures["prompt_following"]}
    guard = rows["guard"][1]
    print(f"goals: unguarded copies ({base['copying']:.0%}); guarded 0% ({guard['copying']:.0%}: "
          f"{'met' if guard['copying'] == 0 else 'MISSED'}); style drop <= 0.05 "
          f"({result['guard']['style_drop']:+.2f}: {'met' if result['guard']['style_drop'] <= 0.05 else 'MISSED'})")
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
