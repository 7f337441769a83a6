"""Blending two authors at writing time (issue 32): does the share of each author follow the weights?

Two `small` char-LSTMs, one trained on PKD and one on Austen (a few CPU
minutes each; trained here into .bench/ unless given), are blended at five
weights (assistant.blendsweep): the share of samples attributed to Austen
should rise with her weight (Spearman >= 0.9), each end should be within 0.05
of the single model's share, and no weight should copy either corpus in more
than 5% of its samples. In the same run, the cost of a token: the blend of the
two against PKD's model alone (goal <= 2.2x), and PKD's prompt-following with
and without classifier-free guidance towards the prompt (--prompt-guidance 1.5).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/blend.py --pkd .bench/pkd-char --austen .bench/austen-char
"""

import argparse
import time
from pathlib import Path

from _common import add_json_option, emit, setup

WEIGHTS = ("0", "0.25", "0.5", "0.75", "1")
FIGURES = {
    "spearman": "Spearman of Austen's share with her weight",
    **{f"austen_share.{w}": f"share attributed to Austen at her weight {w}" for w in WEIGHTS},
    **{f"pkd_share.{w}": f"share attributed to PKD at Austen's weight {w}" for w in WEIGHTS},
    **{f"copying.{w}": f"share copying either corpus at Austen's weight {w}" for w in WEIGHTS},
    "austen_alone": "share attributed to Austen, Austen's model alone",
    "pkd_alone": "share attributed to PKD, PKD's model alone",
    "end_gap": "largest gap between an end of the sweep and the model alone",
    "ms_per_token_one": "ms per token, PKD's model alone", "ms_per_token_blend": "ms per token, the 0.5/0.5 blend",
    "cost_ratio": "blend / one model, per token",
    "prompt_following": "PKD's prompt-following", "prompt_following_guided": "PKD's prompt-following, --prompt-guidance 1.5",
    "classifier_accuracy.pkd": "PKD classifier's held-out accuracy",
    "classifier_accuracy.austen": "Austen classifier's held-out accuracy",
}


def per_token_ms(model, tokens: int, repeats: int = 3) -> float:
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        model.generate("The door", max_new_tokens=tokens, seed=r)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / tokens


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pkd", type=Path, required=True, help="a char model trained on pkd")
    parser.add_argument("--austen", type=Path, required=True, help="a char model trained on austen")
    parser.add_argument("--samples", type=int, default=32, help="prompts (half from each corpus), and as many "
                                                                "unconditional samples, per weight")
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    setup(args.threads)

    import warnings

    from assistant.blending import BlendModel, BlendWarning, prompt_guided
    from assistant.blendsweep import picture, sweep
    from assistant.generation import load_model
    from finetune.ghostwriting.evaluate import split_text
    from finetune.ghostwriting.prompting import prompt_following
    from finetune.ghostwriting.style import passages

    warnings.simplefilter("ignore", BlendWarning)
    pkd, austen = load_model(args.pkd, "cpu"), load_model(args.austen, "cpu")
    rows, authors = sweep(pkd, austen, samples=args.samples)
    for r in rows:
        print(r, flush=True)
    a, b = pkd.card.corpus.name, austen.card.corpus.name
    swept = [r for r in rows if r.weight is not None]
    result: dict = {
        "spearman": round(spearman([r.weight for r in swept], [r.shares[b] for r in swept]), 3),
        "austen_share": {w: r.shares[b] for w, r in zip(WEIGHTS, swept, strict=True)},
        "pkd_share": {w: r.shares[a] for w, r in zip(WEIGHTS, swept, strict=True)},
        "copying": {w: r.copying for w, r in zip(WEIGHTS, swept, strict=True)},
        "austen_alone": rows[-1].shares[b], "pkd_alone": rows[0].shares[a],
        "end_gap": round(max(abs(swept[0].shares[a] - rows[0].shares[a]), abs(swept[-1].shares[b] - rows[-1].shares[b])), 3),
    }
    one = per_token_ms(pkd, 2000)
    blend = per_token_ms(BlendModel([pkd, austen], [0.5, 0.5]), 2000)
    result.update(ms_per_token_one=round(one, 4), ms_per_token_blend=round(blend, 4), cost_ratio=round(blend / one, 2))
    prompts = [p[:200] for p in passages(split_text(pkd.card.corpus.find()[0])[1], 200, args.samples, 0)]
    for key, model in (("prompt_following", pkd), ("prompt_following_guided", prompt_guided(pkd, 1.5))):
        texts = [model.generate(p, max_new_chars=300, seed=i, temperature=0.8) for i, p in enumerate(prompts)]
        result[key] = prompt_following(prompts, texts)
    result["classifier_accuracy"] = {name: acc["overall"] for name, acc in authors.accuracy.items()}
    picture(rows, a, b, Path("docs/figures/blend-pkd-austen.svg"))
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
