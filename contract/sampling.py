"""Choosing the next token from logits (temperature, top-k, top-p), and what a kind's decoder is.

Shared by the samples shown during training and by the generation API, so a
sample in the progress log is drawn exactly the way `assistant generate` draws.
"""

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

MIN_TEMPERATURE = 1e-3


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """One id from a 1-D logits vector; temperature 0 (or one too small to divide by) means greedy."""
    logits = logits.float()
    if temperature < MIN_TEMPERATURE:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the ones before it already cover top_p; the first always stays
        drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


@dataclass(frozen=True)
class Sampling:
    """How each next token is drawn; the generation API checks the values before a decoder sees them."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def check(self) -> None:
        """A one-line error for a value no sampler takes."""
        from corpora import UserError

        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise UserError(f"temperature must be a finite number, zero or more, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise UserError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not (0 < self.top_p <= 1):
            raise UserError(f"top-p must be in (0, 1], got {self.top_p}")


class Decoder(Protocol):
    """A trained model loaded for writing: what a kind's `infer.load(card, device)` returns.

    `encode` gives the ids it reads a text as, so that front ends can count
    tokens as the model does (an API's usage, a client's budget).

    A decoder that can reuse a prompt's prefix also has `new_state()`, an
    object its `pieces` takes as `state=` and keeps the model's state in
    between generations (see assistant.generation.Session). One that can
    write in int8 has `quantize(card, mode)` and a `precision` (see
    assistant.generation.load_model).
    """

    def pieces(self, prompt: str, sampling: Sampling, generator: torch.Generator) -> Iterator[str]:
        """The text of each token after the prompt (unconditional when it is empty), one piece per token.

        A piece may be empty (a token holding part of a character); the pieces
        end only where the model ends a document. Length limits and stop
        strings are the generation API's.
        """
        ...

    def encode(self, text: str) -> list[int]: ...


class PromptWarning(UserWarning):
    """A prompt had characters the model's vocabulary lacks."""


def warn_dropped(dropped: list[str]) -> None:
    if dropped:
        shown = "".join(sorted(set(dropped)))
        warnings.warn(f"the model has never seen {len(dropped)} character(s) of the prompt; dropped: {shown!r}",
                      PromptWarning, stacklevel=4)
