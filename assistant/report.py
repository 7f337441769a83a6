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
from contract.sampling import SAMPLING_FIELDS, Sampling
from corpora import UserError
from finetune.checkpoint import read_jsonl
from finetune.ghostwriting.choice import evaluated, share_text
from finetune.ghostwriting.evaluate import Ghostwriting, GhostwritingOptions
from finetune.plot import Curves

from .generation import TextModel

FIGURES = ("copying", "copied_span", "style", "prompt_following", "distinct_2", "distinct_3")
SWEEP_TEMPERATURES = (0.5, 0.8, 1.0, 1.2)
DRY_MULTIPLIER = 0.8  # DRY's usual strength (KoboldCpp's, llama.cpp's)


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
    """The evaluation's Writer for a loaded model: each prompt continued on its own, seeds in sequence, with every
    setting of the chain (copy guard, DRY, penalties...) the evaluation names, over the model's own defaults."""
    def write(prompts: list[str], chars: int, seed: int, sampling: Sampling) -> list[str]:
        settings = {name: getattr(sampling, name) for name in SAMPLING_FIELDS}
        return [model.generate(p, max_new_chars=chars, seed=seed + i, **settings) for i, p in enumerate(prompts)]
    return write


def evaluate_model(model: TextModel, options: GhostwritingOptions, against: Card | None = None) -> tuple[dict, dict]:
    """The ghostwriting figures of a model as it is now, and how far its style score holds.

    `against`: the card whose corpus to measure by (a base model has none of its own, so compare passes the other's).
    """
    card = against or model.card
    evaluation = Ghostwriting(corpus_of(card), card.corpus_index(), options, seed=0)
    return evaluation.evaluate(model_writer(model)), evaluation.describe()


@dataclass(frozen=True)
class Swept:
    """One setting of the sweep: a temperature, what else was changed (`setting`, in words), and its figures."""

    temperature: float
    setting: str
    sampling: Sampling
    figures: dict


def sweep_settings(options: GhostwritingOptions) -> list[tuple[str, dict]]:
    """The sweep's columns, each tried at every temperature: the evaluation's own settings, top-p 0.9, the copy guard
    at the longest span that does not count as copying (or the --max-copy given), and DRY.

    The copy guard stops a model copying its corpus by construction, DRY and the other anti-repetition samplers only
    look at the text being written: side by side, at each temperature, a writer sees what each costs in style and
    prompt-following.
    """
    guard = options.sampling.max_copy or options.min_span - 1
    dry = options.sampling.dry_multiplier or DRY_MULTIPLIER
    return [("as set", {}), ("top-p 0.9", {"top_p": 0.9}), (f"max-copy {guard}", {"max_copy": guard}),
            (f"DRY {dry:g}", {"dry_multiplier": dry})]


def sweep(model: TextModel, options: GhostwritingOptions, temperatures: tuple[float, ...] = SWEEP_TEMPERATURES,
          settings: list[tuple[str, dict]] | None = None) -> list[Swept]:
    """Copying, style and prompt-following over temperature and the chain's settings (by default `sweep_settings`), on
    top of the evaluation's own: which settings write like the author without copying, and at what cost."""
    evaluation = Ghostwriting(corpus_of(model.card), model.card.corpus_index(), options, seed=0)
    write = model_writer(model)
    results = []
    for temperature in temperatures:
        for setting, changes in sweep_settings(options) if settings is None else settings:
            sampling = replace(options.sampling, temperature=temperature, **changes)
            evaluation.options = replace(options, sampling=sampling)
            results.append(Swept(temperature, setting, sampling, evaluation.evaluate(write)))
    return results
