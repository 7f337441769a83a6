"""What `assistant eval` measures, shared by every kind's `evaluate` view: a text as a kind reads it, and its loss.

A kind's `evaluate` module (see `registry.Kind.views`) has three functions:
`splits(decoder, card, corpus)`, the model's own train/val/test text;
`read(decoder, card, text)`, any other text as the model reads it; and
`score(decoder, card, passage, max_units)`, the loss on the first
`max_units` of a passage, measured the way training measures its validation
loss (so the two agree), with the text of those units (for the baseline to
score the same characters).
"""

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Passage:
    """A text in a kind's own units (a char model's ids, GPT-2's tokens), and the characters they spell."""

    text: str
    units: Any  # what the kind's `score` reads
    dropped: int = 0  # characters the model has never seen, left out (a char model's, on another text)


@dataclass(frozen=True)
class Score:
    """A summed loss in nats over `units` predictions, which spell `chars` characters."""

    nats: float
    units: int
    chars: int
    unit: str = "char"  # what a unit is: char or token

    @property
    def per_unit(self) -> float:
        return self.nats / self.units

    @property
    def per_char(self) -> float:
        return self.nats / self.chars

    @property
    def bits_per_char(self) -> float:
        return self.per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        """Per unit: e to the loss."""
        return math.exp(self.per_unit)
