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

from contract import modeldir
from contract.modeldir import Card
from contract.sampling import Sampling
from corpora import UserError
from finetune.checkpoint import read_jsonl
from finetune.ghostwriting.choice import evaluated, share_text
from finetune.ghostwriting.evaluate import Ghostwriting, GhostwritingOptions
from finetune.plot import Curves

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


def model_card(name_or_path: str) -> Card:
    """A trained model's card, for what reads its run's files (NAME@CHECKPOINT reads as NAME: the files are the run's)."""
    path = modeldir.find(name_or_path) or modeldir.find(str(name_or_path).rpartition("@")[0] or name_or_path)
    if path is None:
        raise modeldir.no_model(str(name_or_path))
    return modeldir.read(path)


def picture_path(given: Path | None, card: Card, default: str) -> Path:
    """Where a picture goes: where -o/--out says, else into the model's own directory (never the current folder
    unasked)."""
    return given if given is not None else card.file(default)


def history(name_or_path: str) -> History:
    """A model's evaluations."""
    card = model_card(name_or_path)
    rows = [r for r in evaluated(read_jsonl(card.file(modeldir.HISTORY))) if r.get("val_loss") is not None]
    if not rows:
        raise UserError(f"{card.name} has no evaluations yet")
    return History(card.name, card, rows, card.result.get("best_step"), card.result.get("ghostwriting_step"))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table_rows(h: History) -> list[list[str]]:
    """The report's rows for a model: step (marked), train, val, copying, span, style, prompt-following, distinct-2/3."""
    out = []
    for r in h.rows:
        marks = ("val " if r["step"] == h.best_step else "") + ("gw" if r["step"] == h.ghostwriting_step else "")
        out.append([str(r["step"]), _fmt(r.get("train_smooth")), _fmt(r["val_loss"]), share_text(r, "copying"),
                    "-" if r.get("copied_span") is None else f"{r['copied_span']:.0f}", share_text(r, "style"),
                    share_text(r, "prompt_following"), _fmt(r.get("distinct_2")), _fmt(r.get("distinct_3")),
                    marks.strip()])
    return out


def curves(h: History) -> Curves:
    """A model's evaluations as the pictures draw them."""
    return Curves.of(h.card, h.rows)


def corpus_of(card: Card):
    """The corpus a model was trained on, from this machine only, exactly as it was."""
    if card.corpus is None:
        raise UserError(f"{card.name} was trained on no corpus: nothing to measure it against")
    corpus, missing = card.corpus.find()
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
