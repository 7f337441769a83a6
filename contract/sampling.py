"""How the next token is chosen: the settings, the sampler chain over one logits vector, and what a kind supplies.

Shared by the samples shown during training, the ghostwriting evaluation and
the generation API, so a sample in the progress log is drawn exactly the way
`assistant generate` draws. The loop that steps a kind's model and applies
the chain, banned phrases and the copy guard is contract.loop; the processors
are contract.processors.
"""

import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

import torch

MIN_TEMPERATURE = 1e-3
DRY_BREAKERS = ("\n", ":", '"', "*")  # KoboldCpp's and llama.cpp's defaults


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """One id from a 1-D logits vector by temperature, top-k and top-p alone (training's samples); temperature 0 (or
    one too small to divide by) means greedy."""
    from .processors import draw, top_k_filter, top_p_filter

    logits = logits.float()
    if temperature < MIN_TEMPERATURE:
        return int(logits.argmax())
    return draw(top_p_filter(top_k_filter(logits / temperature, top_k), top_p), generator)


def sampled_ids(cursor: "Cursor", generator: torch.Generator, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> Iterator[int]:
    """Endless ids from a kind's cursor by temperature, top-k and top-p alone: each kind's `generate_ids` (training's
    samples, the tests' reference paths); the generation API writes through contract.loop instead."""
    logits = cursor.logits
    while True:
        next_id = sample_next(logits, generator, temperature, top_k, top_p)
        yield next_id
        logits = cursor.feed(next_id)


@dataclass(frozen=True)
class Sampling:
    """How each next token is drawn: every setting of the chain, each off by default (see contract.processors).

    The generation API checks the values before a decoder sees them. Texts
    (biases, banned phrases, DRY's breakers) are mapped to each kind's tokens
    when a generation starts.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repetition_penalty: float = 1.0  # >1 makes tokens already in the text less likely (CTRL's)
    repetition_range: int = 0  # how many of the last tokens the penalties look at; 0: all of them
    presence_penalty: float = 0.0  # OpenAI's: subtracted once from a token in the text
    frequency_penalty: float = 0.0  # OpenAI's: subtracted once per time it is there
    dry_multiplier: float = 0.0  # DRY: 0 is off; 0.8 is the usual
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_range: int = 0  # 0: the whole text
    dry_breakers: tuple[str, ...] = DRY_BREAKERS
    # (text, bias added to its tokens' logits), or (token id, bias added to that id at every step: OpenAI's)
    logit_bias: tuple[tuple[str | int, float], ...] = ()
    ban: tuple[str, ...] = ()  # phrases never written (whole words, any case)
    max_copy: int | None = None  # the longest verbatim span of the corpus a sample may hold, in characters

    @classmethod
    def read(cls, settings: dict) -> "Sampling":
        """Settings as JSON gives them back (a run's config.json): its lists as the tuples the chain takes."""
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        if "logit_bias" in settings:
            settings["logit_bias"] = bias_pairs(settings["logit_bias"])
        return cls(**settings)

    def check(self) -> None:
        """A one-line error for a value no sampler takes."""
        from corpora import UserError

        def bad(name: str, rule: str, value: object) -> UserError:
            return UserError(f"{name} must be {rule}, got {value}")

        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise bad("temperature", "a finite number, zero or more", self.temperature)
        if self.top_k is not None and self.top_k < 1:
            raise bad("top-k", "at least 1", self.top_k)
        for name, value in (("top-p", self.top_p), ("min-p", self.min_p), ("typical-p", self.typical_p)):
            if value is not None and not (0 < value <= 1):
                raise bad(name, "in (0, 1]", value)
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise bad("repetition penalty", "a number above 0 (1 is off)", self.repetition_penalty)
        for name, value in (("presence penalty", self.presence_penalty), ("frequency penalty", self.frequency_penalty)):
            if not (math.isfinite(value) and -2 <= value <= 2):
                raise bad(name, "in [-2, 2]", value)
        if not (math.isfinite(self.dry_multiplier) and self.dry_multiplier >= 0):
            raise bad("DRY multiplier", "zero or more", self.dry_multiplier)
        if not (math.isfinite(self.dry_base) and self.dry_base >= 1):
            raise bad("DRY base", "at least 1", self.dry_base)
        for name, value in (("repetition range", self.repetition_range), ("DRY range", self.dry_range),
                            ("DRY allowed length", self.dry_allowed_length)):
            if value < 0:
                raise bad(name, "zero or more", value)
        for key, bias in self.logit_bias:
            if key == "" or (isinstance(key, int) and key < 0) or not math.isfinite(bias):
                raise UserError(f"a logit bias needs a text or a token id and a finite number, got {key!r} {bias}")
        if any(not phrase.strip() for phrase in self.ban):
            raise UserError("a banned phrase must hold some text")
        if self.max_copy is not None and self.max_copy < 1:
            raise bad("max-copy", "at least 1 character", self.max_copy)


SAMPLING_FIELDS = tuple(f.name for f in fields(Sampling))


def bias_pairs(pairs: Iterable[Sequence]) -> tuple[tuple[str | int, float], ...]:
    """Logit biases as JSON gives them back: [key, bias] lists, a key a token id (an int) or a text."""
    return tuple((key if isinstance(key, int) else str(key), float(bias)) for key, bias in pairs)


def changed(settings: dict[str, object]) -> dict[str, object]:
    """The settings that differ from the chain's defaults: what a front end passes on, so that a model's own
    defaults (`assistant models set`) stand for the settings a writer left alone."""
    return {k: v for k, v in settings.items() if v != getattr(Sampling, k)}


class Cursor(Protocol):
    """A kind's model after the prompt, stepped by contract.loop: ids in, next-token logits out, and back again."""

    prompt_ids: list[int]  # the ids it was started from (what the penalties also look at)
    logits: torch.Tensor  # the next-token logits after the prompt

    def feed(self, token: int) -> torch.Tensor:
        """Take `token` as written; the logits after it."""
        ...

    def rewind(self, n: int) -> torch.Tensor:
        """Take back the last `n` tokens fed (n >= 1, at most the `keep` it was started with); the logits there."""
        ...


class Decoder(Protocol):
    """A trained model loaded for writing: what a kind's `infer.load(card, device)` returns.

    `encode` gives the ids it reads a text as, so that front ends can count
    tokens as the model does (an API's usage, a client's budget).

    A decoder that can reuse a prompt's prefix also has `new_state()`, an
    object its `start` takes as `state=` and keeps the model's state in
    between generations (see assistant.generation.Session). One that can
    write in int8 has `quantize(card, mode)` and a `precision` (see
    assistant.generation.load_model).
    """

    end_id: int | None  # the id that ends a document (GPT-2's <|endoftext|>), None where the model has none

    def start(self, prompt: str, state: object | None = None, keep: int = 0) -> Cursor:
        """The model after `prompt` (unconditional when it is empty), able to rewind `keep` tokens."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`; a token holding part of a character decodes to U+FFFD until the rest comes."""
        ...

    def token_texts(self) -> list[str]:
        """Each id's text on its own (kept: it is asked once per model)."""
        ...

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, as the model would write it mid-text."""
        ...


class PromptWarning(UserWarning):
    """A prompt had characters the model's vocabulary lacks."""


def warn_dropped(dropped: list[str]) -> None:
    if dropped:
        shown = "".join(sorted(set(dropped)))
        warnings.warn(f"the model has never seen {len(dropped)} character(s) of the prompt; dropped: {shown!r}",
                      PromptWarning, stacklevel=4)
