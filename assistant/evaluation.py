"""`assistant eval`: a model's loss on its own validation or test split, or on any text, beside an n-gram baseline.

The model is measured by its kind's `evaluate` view, the way training
measures its validation loss, on as much text as training validated on. The
baseline (corpora.ngram) is fitted to the same training text, its n chosen
on the validation split, and scores the same characters: the gap between the
two is what the network knows beyond counting.
"""

from dataclasses import dataclass

from contract import registry
from corpora import UserError, load_corpus
from corpora.ngram import NGramModel
from corpora.suggest import did_you_mean
from kinds.scoring import Score

from .generation import TextModel
from .report import corpus_of

SPLITS = ("val", "test")
DEFAULT_UNITS = 200_000  # a model directory that records no plan: training's default evaluation size


@dataclass(frozen=True)
class Evaluation:
    """The model's score and the baseline's on one text."""

    named: str  # which model and checkpoint, with its step: `pkd-char@ghostwriting, step 2151`
    what: str  # which text, in words
    model: Score
    baseline: Score
    n: int  # the baseline's order, chosen on validation
    dropped: int  # characters the model has never seen, left out of the text


def evaluate(model: TextModel, split: str = "val", corpus: str | None = None, encoding: str | None = None) -> Evaluation:
    """The model and the n-gram baseline on its `split` of its own corpus, or on all of another `corpus`."""
    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}"
                        + did_you_mean(split, SPLITS, tail=True))
    card = model.card
    view = registry.get(model.kind).view("evaluate", model.name)
    own = view.splits(model.decoder, card, corpus_of(card))
    if "val" not in own or "train" not in own:
        raise UserError(f"{model.name} records no train/validation split: it cannot be evaluated")
    if corpus is not None:
        other = load_corpus(corpus, encoding)
        passage, what = view.read(model.decoder, card, other), f"corpus {other.name}"
    elif split not in own:
        raise UserError(f"{model.name} was trained before test splits were kept: all its held-out text is validation; "
                        "use --split val")
    else:
        passage, what = own[split], f"the {'validation' if split == 'val' else 'test'} split of {card.corpus.name}"
    max_units = int(card.plan.get("eval_units") or DEFAULT_UNITS)
    score, text = view.score(model.decoder, card, passage, max_units)
    baseline = NGramModel.fit(own["train"].text, own["val"].text)
    nats, count = baseline.nats(text)
    return Evaluation(card.named, what, score, Score(nats, count, count), baseline.order, passage.dropped)


def lines(e: Evaluation) -> list[str]:
    """What the command prints: both losses in nats, bits per character and perplexity, and the gain."""
    def row(name: str, s: Score) -> str:
        per_unit = f"{s.per_unit:.3f} nats/{s.unit}, " if s.unit != "char" else ""
        return (f"  {name:<22} {per_unit}{s.per_char:.3f} nats/char, {s.bits_per_char:.3f} bits/char, "
                f"perplexity {s.perplexity:.2f} per {s.unit}")

    m = e.model
    units = f"{m.units:,} {m.unit}s" + (f" ({m.chars:,} characters)" if m.unit != "char" else "")
    out = [f"{e.named} on {e.what}: {units}" + (f"; {e.dropped:,} characters it never saw left out" if e.dropped else ""),
           row("model", m), row(f"{e.n}-gram (Kneser-Ney)", e.baseline)]
    gain = e.baseline.bits_per_char - e.model.bits_per_char
    out.append(f"  the model {'saves' if gain >= 0 else 'loses'} {abs(gain):.3f} bits per character against counting "
               f"({abs(gain) / e.baseline.bits_per_char:.0%})")
    return out
