"""How much of each author a blend writes: `assistant report --blend A B` and benchmarks/blend.py.

The blend of A and B is written at five weights, from all A to all B, and
each model alone beside them. At each, the same prompts (held-out passages
from both corpora, half each) and as many unconditional samples, with the same
seeds; the figures are the share of samples the style classifiers attribute to
each author (finetune.ghostwriting.authors), the share copying either corpus (a
verbatim span of COPY_SPAN characters or more of any corpus in the blend), and
prompt-following (finetune.ghostwriting.prompting).
"""

from dataclasses import dataclass

from finetune.ghostwriting.authors import Authors
from finetune.ghostwriting.evaluate import split_text
from finetune.ghostwriting.prompting import prompt_following
from finetune.ghostwriting.style import passages

from .blending import BlendModel
from .generation import TextModel

STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)  # B's weight
COPY_SPAN = 50  # the ghostwriting evaluation's: a sample holding this much of a corpus copies it


@dataclass(frozen=True)
class Row:
    label: str  # "A alone", "0.75/0.25", ...
    weight: float | None  # B's weight; None for a model alone
    shares: dict[str | None, float]  # author (None: neither) -> share of samples attributed
    copying: float  # the share of samples copying any corpus of the blend
    prompt_following: float | None


def sweep(a: TextModel, b: TextModel, samples: int = 16, chars: int = 300, seed: int = 0,
          temperature: float = 0.8) -> tuple[list[Row], Authors]:
    """The rows of the sweep (see the module) and the classifiers that attributed the samples."""
    corpora = []
    for model in (a, b):
        corpus, missing = model.card.corpus.find() if model.card.corpus else (None, f"{model.name} has no corpus")
        if corpus is None:
            from corpora import UserError

            raise UserError(f"{missing}: the blend's samples cannot be attributed without it")
        corpora.append(corpus)
    authors = Authors.fit(corpora, seed)
    prompts = [p[:200] for corpus in corpora for p in passages(split_text(corpus)[1], 200, samples // 2, seed)]
    indexes = [i for i in (m.card.corpus_index() for m in (a, b)) if i is not None]

    def row(label: str, weight: float | None, model: TextModel) -> Row:
        texts = [model.generate(p, max_new_chars=chars, seed=seed + i, temperature=temperature)
                 for i, p in enumerate([*prompts, *[""] * len(prompts)])]
        copies = sum(any((s := index.longest_span(t)) is not None and s.length >= COPY_SPAN for index in indexes)
                     for t in texts)
        return Row(label, weight, authors.shares(texts), copies / len(texts),
                   prompt_following(prompts, texts[: len(prompts)]))

    rows = [row(f"{a.name} alone", None, a)]
    rows += [row(f"{1 - w:g}/{w:g}", w, BlendModel([a, b], [1 - w, w])) for w in STEPS]
    rows.append(row(f"{b.name} alone", None, b))
    return rows, authors


def picture(rows: list[Row], a: str, b: str, path) -> None:
    """The share attributed to each author, and copying, against B's weight; each model alone as a point at its end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = [r for r in rows if r.weight is not None]
    x = [r.weight for r in swept]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for author, colour in zip(swept[0].shares, ("tab:blue", "tab:red", "tab:gray"), strict=False):
        what = f"attributed to {author}" if author is not None else "attributed to neither"
        ax.plot(x, [r.shares[author] for r in swept], "o-", color=colour, label=what)
    ax.plot(x, [r.copying for r in swept], "s--", color="black", label="copying either corpus")
    alone_a, alone_b = rows[0], rows[-1]
    for at, alone in ((0.0, alone_a), (1.0, alone_b)):
        for author, colour in zip(alone.shares, ("tab:blue", "tab:red"), strict=False):
            ax.plot([at], [alone.shares[author]], "x", color=colour, markersize=10)
    ax.set_xlabel(f"weight of {b} (1 - weight of {a}); x: each model alone")
    ax.set_ylabel("share of samples")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
