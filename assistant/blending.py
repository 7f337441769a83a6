"""Several models blended at writing time, under one name every front end takes: `A+B@0.7,0.3`.

`load_model` hands a name with a `+` in it (one that is not itself a model's)
to `load_blend`: each part loads as it would alone (`NAME@CHECKPOINT` works),
and the models' decoder is contract.blend.Blend, a product of experts with the
weights after the `@` (equal ones when none are given). The CLI's `--weights
0.7,0.3` is the same thing; the REPL's `/model`, the editor settings and the
HTTP API's `model` field take the whole spelling. Weights are numbers of zero
or more that sum to 1; models must be of one kind; char models with different
alphabets write only the characters they share, and `BlendWarning` names the
ones one of them lacks. A blend's copying is checked against every corpus in it.
"""

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contract import modeldir
from contract.blend import Blend, Guided, Prefixed
from contract.copyguard import CopyGuard
from contract.modeldir import Card
from contract.processors import Context, Tracker
from contract.sampling import Decoder
from corpora import UserError
from corpora.index import Span
from corpora.suggest import did_you_mean

from .generation import TextModel

WEIGHTS = re.compile(r"@(?P<weights>[^@+]*,[^@+]*)$")  # a blend's weights after its last part: @0.7,0.3


class BlendWarning(UserWarning):
    """The blended models cannot all write some characters, which the blend therefore never writes."""


def is_blend(name: str | Path) -> bool:
    """Whether a name spells a blend: a `+` between parts, and no model of that very name."""
    return "+" in str(name) and modeldir.find(name) is None


def parse(name: str, weights: str | None = None) -> tuple[list[str], list[float]]:
    """The parts of a blend's name and their weights (from the name's `@W1,W2`, else `weights`, else equal)."""
    found = WEIGHTS.search(name)
    if found:
        if weights is not None and _numbers(weights) != _numbers(found["weights"]):
            raise UserError(f"{name} names its weights; --weights {weights} says otherwise")
        weights, name = found["weights"], name[: found.start()]
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise UserError(f"a blend is spelled MODEL+MODEL[@WEIGHT,WEIGHT], got {name!r}")
    values = _numbers(weights) if weights is not None else [1 / len(parts)] * len(parts)
    if len(values) != len(parts):
        raise UserError(f"{len(parts)} models blended need {len(parts)} weights, got {len(values)} ({weights})")
    if any(not math.isfinite(w) or w < 0 for w in values) or abs(sum(values) - 1) > 0.01:
        raise UserError(f"blend weights must be zero or more and sum to 1, got {weights}")
    return parts, values


def _numbers(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise UserError(f"blend weights are numbers separated by commas, e.g. 0.7,0.3; got {text!r}") from None


def label(parts: list[str], weights: list[float]) -> str:
    """The name that loads this blend again."""
    return "+".join(parts) + "@" + ",".join(f"{w:g}" for w in weights)


class Indexes:
    """Several corpora's indexes checked as one: the longest span any of them shares with a sample."""

    def __init__(self, indexes: list):
        self.indexes = indexes

    def longest_span(self, sample: str) -> Span | None:
        spans = [s for s in (index.longest_span(sample) for index in self.indexes) if s is not None]
        return max(spans, key=lambda s: s.length, default=None)

    def context(self, span: Span, width: int) -> tuple[str, str, str]:
        """The span in its corpus, as CorpusIndex.context shows it (`samples check`, the REPL's /check)."""
        return next(index for index in self.indexes if span.document in index.names).context(span, width)


@dataclass
class BlendCard(Card):
    """A blend's card: its parts' cards, whose corpora its samples are all checked against."""

    parts: tuple[Card, ...] = field(default_factory=tuple)

    def corpus_index(self) -> Indexes | None:  # type: ignore[override]
        return _indexes(self.parts)

    @property
    def corpus_name(self) -> str | None:
        """Its parts' corpora, `pkd+austen`: what a sample's row records, so that `samples check` knows it has some."""
        return "+".join(c.corpus.name for c in self.parts if c.corpus is not None) or None


def _indexes(cards: "tuple[Card, ...] | list[Card]") -> Indexes | None:
    indexes = [i for i in (card.corpus_index() for card in cards) if i is not None]
    return Indexes(indexes) if indexes else None


def stored_index(name: str) -> Indexes | None:
    """The corpora of a stored blend sample's model (its row's model_path, the name that loads it again)."""
    from .generation import find_card

    return _indexes([card for card in (find_card(part) for part in parse(name)[0]) if card is not None])


class Guards(Tracker):
    """One copy guard per corpus of the blend, as one processor of the chain: a token passes where every one allows it."""

    def __init__(self, guards: list[CopyGuard]):
        self.guards = guards

    @property
    def forbade(self) -> bool:
        return any(guard.forbade for guard in self.guards)

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        for guard in self.guards:
            scores = guard(scores, context)
        return scores

    def start(self, context: Context) -> None:
        for guard in self.guards:
            guard.start(context)

    def push(self, context: Context) -> None:
        for guard in self.guards:
            guard.push(context)

    def pop(self, n: int, context: Context) -> None:
        for guard in self.guards:
            guard.pop(n, context)


class BlendModel(TextModel):
    """Models written with as one (see the module); `parts` are the models as loaded alone."""

    def __init__(self, parts: list[TextModel], weights: list[float]):
        names = [p.card.label for p in parts]
        # named by its parts' paths, so that the store's model_path loads it (and checks its corpora) from anywhere
        paths = [p.card.label if p.path is None else modeldir.checkpoint_label(str(p.path), p.card.checkpoint, None)
                 for p in parts]
        card = BlendCard(kind=parts[0].kind, name=label(paths, weights), parts=tuple(p.card for p in parts))
        decoder = Blend([p.decoder for p in parts], weights, names)
        super().__init__(card, decoder, parts[0].device)
        self.parts, self.weights = parts, weights

    @property
    def lacking(self) -> dict[str, str]:
        """The characters each part cannot write (and the blend therefore never writes), by part."""
        return self.decoder.lacking  # type: ignore[attr-defined]

    def _guard(self, limit: int) -> Guards:  # type: ignore[override]
        """A copy guard for each part's corpus: the blend may copy none of them past the limit."""
        texts = self.decoder.token_texts()
        return Guards([CopyGuard(part.guarded_index(), limit, texts) for part in self.parts])


def load_blend(name: str, device: str = "auto", quantize: str = "auto", backend: str | None = None,
               weights: str | None = None) -> BlendModel:
    """A blend by its name (see the module); a one-line error for parts of different kinds, unknown parts, or weights
    that do not fit."""
    from .generation import find_card, load_model

    parts, values = parse(name, weights)
    kinds = {part: (card.kind if (card := find_card(part)) is not None else "gpt2") for part in parts}
    if len(set(kinds.values())) > 1:
        said = ", ".join(f"{part} is a {kind} model" for part, kind in kinds.items())
        raise UserError(f"models of different kinds cannot be blended (they share no tokens): {said}")
    model = BlendModel([load_model(part, device, quantize, backend) for part in parts], values)
    if model.lacking:
        said = "; ".join(f"{part} lacks {chars!r}" for part, chars in model.lacking.items())
        warnings.warn(f"the blend writes only the characters all its models know: {said}", BlendWarning, stacklevel=2)
    return model


def prompt_guided(model: TextModel, scale: float) -> TextModel:
    """`model` writing with classifier-free guidance towards its prompt at `scale` (see `steered`)."""
    return TextModel(model.card, steered(model, None, None, scale), model.device)


def steered(model: TextModel, author: str | None, guidance: float | None, prompt_guidance: float | None) -> Decoder:
    """The decoder a generation writes with: the model's own, or steered (contract.blend).

    `author`: one of the authors of a model trained with --author-tags (its card's `authors`), whose tag goes before
    the prompt; `guidance` G: classifier-free guidance towards that tag, the tagged context against the untagged one;
    `prompt_guidance` G: towards the prompt, the prompt against no prompt (1: as the model writes alone; Sanchez et
    al. found 1.5 helps a model follow its prompt). Both guidances at once guide the tagged prompt against nothing.
    """
    for what, scale in (("guidance", guidance), ("prompt-guidance", prompt_guidance)):
        if scale is not None and not (math.isfinite(scale) and scale >= 0):
            raise UserError(f"--{what} must be a number, zero or more, got {scale}")
    if guidance is not None and author is None:
        raise UserError("--guidance steers towards an author: give --author too (--prompt-guidance: towards the prompt)")
    decoder, before = model.decoder, ""
    if author is not None:
        tags = model.card.extra.get("authors") or {}
        if not tags:
            raise UserError(f"--author is for a model trained on several corpora with --author-tags; {model.name} was "
                            "not")
        if author not in tags:
            raise UserError(f"{model.name} knows no author {author!r}: its authors are {', '.join(tags)}"
                            + did_you_mean(author, tags, tail=True))
        before = tags[author]
        if guidance is None:
            decoder = Prefixed(decoder, before)
        else:
            decoder = Guided(decoder, guidance, lambda prompt: before + prompt, lambda prompt: prompt)
    if prompt_guidance is not None:
        decoder = Guided(decoder, prompt_guidance, lambda prompt: prompt, lambda prompt: "")
    return decoder
