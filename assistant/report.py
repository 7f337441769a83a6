"""Which checkpoint ghostwrites: the figures training recorded, a picture of them, and a trained model measured.

`assistant report` reads each model's history.jsonl: at every evaluation the
losses and, where the ghostwriting evaluation ran, copying, style,
prompt-following and diversity (finetune.ghostwriting). It marks the
checkpoint with the best validation loss and the ghostwriting checkpoint, the
one `load_model` takes. `evaluate_model` runs the same evaluation on a model
as it is now, at any sampling settings: `--sweep` and `assistant compare` use it.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from corpora import UserError
from corpora.load import find_trained_corpus
from finetune.checkpoint import read_jsonl
from finetune.ghostwriting.evaluate import Ghostwriting, GhostwritingOptions
from kinds import modeldir
from kinds.modeldir import Card
from kinds.sampling import Sampling

from .generation import TextModel

FIGURES = ("copying", "copied_span", "style", "prompt_following", "distinct_2", "distinct_3")
SWEEP = [(t, p) for t in (0.5, 0.8, 1.0, 1.2) for p in (None, 0.9)]


@dataclass(frozen=True)
class History:
    """One model's evaluations, and the two checkpoints a writer chooses between."""

    name: str
    card: Card
    rows: list[dict]  # one per evaluation: step, train_smooth, val_loss and the ghostwriting figures
    best_step: int | None
    ghostwriting_step: int | None


def history(name_or_path: str) -> History:
    """A model's evaluations (NAME@CHECKPOINT reads as NAME: the history is the run's)."""
    path = modeldir.find(name_or_path) or modeldir.find(str(name_or_path).rpartition("@")[0] or name_or_path)
    if path is None:
        raise UserError(f"no model {name_or_path!r}: assistant models lists them")
    card = modeldir.read(path)
    rows = [r for r in read_jsonl(card.file(modeldir.HISTORY)) if r.get("val_loss") is not None]
    if not rows:
        raise UserError(f"{card.name} has no evaluations yet")
    return History(card.name, card, rows, card.result.get("best_step"), card.result.get("ghostwriting_step"))


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if percent else f"{value:.3f}"


def table_rows(h: History) -> list[list[str]]:
    """The report's rows for a model: step (marked), train, val, copying, span, style, prompt-following, distinct-2/3."""
    out = []
    for r in h.rows:
        marks = ("val " if r["step"] == h.best_step else "") + ("gw" if r["step"] == h.ghostwriting_step else "")
        out.append([str(r["step"]), _fmt(r.get("train_smooth")), _fmt(r["val_loss"]), _fmt(r.get("copying"), True),
                    "-" if r.get("copied_span") is None else f"{r['copied_span']:.0f}", _fmt(r.get("style"), True),
                    _fmt(r.get("prompt_following"), True), _fmt(r.get("distinct_2")), _fmt(r.get("distinct_3")),
                    marks.strip()])
    return out


def render_png(histories: list[History], out: Path) -> None:
    """The curves against steps, one colour per model; dashed: best validation loss, dotted: the ghostwriting checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("loss (nats)", ("train_smooth", "val_loss")), ("copying (share of samples)", ("copying",)),
              ("style (share attributed to the author)", ("style",)), ("prompt-following", ("prompt_following",)),
              ("diversity (distinct n-grams)", ("distinct_2", "distinct_3"))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), constrained_layout=True)
    for colour, h in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4, histories, strict=False):
        for ax, (title, keys) in zip(axes, panels, strict=True):
            for style, key in zip(("-", "--"), keys, strict=False):
                points = [(r["step"], r[key]) for r in h.rows if r.get(key) is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), style, color=colour, marker=".", label=f"{h.name} {key}")
            for step, line in ((h.best_step, "--"), (h.ghostwriting_step, ":")):
                if step is not None:
                    ax.axvline(step, color=colour, linestyle=line, linewidth=1)
            ax.set_title(title, fontsize=10)
            if title != panels[0][0]:
                ax.set_ylim(-0.02, 1.02)  # shares: the same scale at every checkpoint and for every model
            ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.suptitle("dashed line: best validation loss; dotted: the ghostwriting checkpoint", fontsize=9)
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}") from None
    finally:
        plt.close(fig)


def corpus_of(card: Card):
    """The corpus a model was trained on, from this machine only, exactly as it was."""
    if card.corpus is None:
        raise UserError(f"{card.name} was trained on no corpus: nothing to measure it against")
    corpus, missing = find_trained_corpus(card.corpus.name, card.corpus.source, card.corpus.checksum)
    if corpus is None:
        raise UserError(f"{missing}: {card.name} cannot be measured against it")
    return corpus


def model_writer(model: TextModel):
    """The evaluation's Writer for a loaded model: each prompt continued on its own, seeds in sequence."""
    def write(prompts: list[str], chars: int, seed: int, sampling: Sampling) -> list[str]:
        return [model.generate(p, max_new_chars=chars, temperature=sampling.temperature, top_k=sampling.top_k,
                               top_p=sampling.top_p, seed=seed + i) for i, p in enumerate(prompts)]
    return write


def evaluate_model(model: TextModel, options: GhostwritingOptions, against: Card | None = None) -> tuple[dict, dict]:
    """The ghostwriting figures of a model as it is now, and how far its style score holds.

    `against`: the card whose corpus to measure by (a base model has none of its own, so compare passes the other's).
    """
    card = against or model.card
    evaluation = Ghostwriting(corpus_of(card), card.corpus_index(), options, seed=0)
    return evaluation.evaluate(model_writer(model)), evaluation.describe()


def sweep(model: TextModel, options: GhostwritingOptions) -> list[tuple[float, float | None, dict]]:
    """Copying and style over temperature and top-p, to find settings that do not copy."""
    evaluation = Ghostwriting(corpus_of(model.card), model.card.corpus_index(), options, seed=0)
    write = model_writer(model)
    results = []
    for temperature, top_p in SWEEP:
        evaluation.options = replace(options, sampling=Sampling(temperature, None, top_p))
        results.append((temperature, top_p, evaluation.evaluate(write)))
    return results
