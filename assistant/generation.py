"""The one generation API every front end uses.

`load_model(name_or_path)` returns a `TextModel`; `.stream(...)` yields text as
it is produced and `.generate(...)` returns it whole. Stop strings, length
limits, seeding and the parameters are handled here once; a model kind only
supplies `_pieces`, the decoded text of each new token (a character for the
char-LSTM, a BPE token for GPT-2).

Names resolve to a trained model in the data directory first, then to a
directory, then (for GPT-2) to a Hugging Face hub name such as `gpt2`, so a
fine-tuned model can be compared with the base it came from.
"""

import itertools
import math
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from corpora import UserError
from corpora.home import models_dir
from finetune import checkpoint as ckpt

from .memorization import model_index
from .recording import recorded


class PromptWarning(UserWarning):
    """A prompt had characters the model's vocabulary lacks."""


DEFAULT_CHARS = 500


@dataclass(frozen=True)
class Params:
    max_new_chars: int | None = DEFAULT_CHARS
    max_new_tokens: int | None = None
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def check(self) -> None:
        for what, value in (("length", self.max_new_chars), ("tokens", self.max_new_tokens)):
            if value is not None and value < 0:
                raise UserError(f"{what} must be zero or more, got {value}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise UserError(f"temperature must be a finite number, zero or more, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise UserError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not (0 < self.top_p <= 1):
            raise UserError(f"top-p must be in (0, 1], got {self.top_p}")


class TextModel(ABC):
    """A trained model loaded for writing."""

    kind: str

    def __init__(self, path: Path, config: dict, device: torch.device):
        self.path = path
        self.config = config
        self.device = device
        self.name = config.get("name", path.name)
        self.last_seed: int | None = None
        self.last_sample_id: int | None = None  # set when a recorded stream ends

    @abstractmethod
    def _pieces(self, prompt: str, params: Params, generator: torch.Generator) -> Iterator[str]:
        """The text of each token after the prompt (unconditional when it is empty), one piece per token.

        A piece may be empty (a token holding part of a character); the stream
        ends only where the model ends a document.
        """

    def stream(
        self,
        prompt: str = "",
        *,
        max_new_chars: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | tuple[str, ...] | None = None,
        log: bool = True,
        source: str = "api",
    ) -> Iterator[str]:
        """The continuation piece by piece; it ends before the first stop string.

        The length is in characters, tokens, or both (whichever comes first);
        with neither, 500 characters. Parameters are checked here, when
        called, not at the first piece, so a front end can report a bad value
        before it prints anything. Unless `log` is false the sample is stored
        when the stream ends, cut short or not, with `source` saying which
        front end asked (see recording.py).
        """
        stops = tuple(s for s in ((stop,) if isinstance(stop, str) else (stop or ())) if s)
        if max_new_chars is None and max_new_tokens is None:
            max_new_chars = DEFAULT_CHARS
        params = Params(max_new_chars, max_new_tokens, temperature, top_k, top_p, seed, stops)
        params.check()
        self.last_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        generator = torch.Generator().manual_seed(self.last_seed)
        pieces = itertools.islice(self._pieces(prompt, params, generator), params.max_new_tokens)
        text = _until_stop(pieces, params.max_new_chars, stops)
        return recorded(self, prompt, params, source, text) if log else text

    def generate(self, prompt: str = "", **kwargs) -> str:
        return "".join(self.stream(prompt, **kwargs))


def _until_stop(pieces: Iterator[str], limit: int | None, stops: tuple[str, ...]) -> Iterator[str]:
    """Cut a text stream at `limit` characters (None: no limit) or before a stop string.

    Text that could be the start of a stop string is held back until it is
    known not to be, so the output never contains a stop string, not even
    across pieces.
    """
    held = ""
    room = limit if limit is not None else math.inf  # characters still allowed
    hold = max((len(s) for s in stops), default=1) - 1
    for piece in pieces:
        held += piece
        cut = min((i for i in (held.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            held = held[:cut]
            break
        if len(held) >= room:
            break
        safe = held[: len(held) - hold] if hold else held
        if safe:
            yield safe
            room -= len(safe)
            held = held[len(safe) :]
    tail = held if room == math.inf else held[: int(room)]
    if tail:
        yield tail


def resolve_model_dir(name_or_path: str | Path) -> Path | None:
    """A ghostwriter model directory by path or by name in the data directory, or None."""
    path = Path(name_or_path).expanduser()
    named = models_dir() / str(name_or_path)
    for candidate in (path, named) if path.name == str(name_or_path) else (path,):
        config = candidate / ckpt.CONFIG
        if not config.is_file():
            continue
        try:
            if "kind" in ckpt.read_json(config):
                return candidate.resolve()  # the store keeps this path: it must work from any directory
        except ValueError as e:
            raise UserError(f"{config} is damaged (not JSON: {e})") from None
    return None


def list_model_names() -> list[str]:
    """The ghostwriter model directories in the data directory whose config.json reads (a damaged one does not)."""
    root = models_dir()
    return sorted(p.name for p in root.iterdir() if _is_model(p)) if root.is_dir() else []


def _is_model(path: Path) -> bool:
    try:
        return "kind" in ckpt.read_json(path / ckpt.CONFIG)
    except (OSError, ValueError):
        return False


def load_model(name_or_path: str | Path, device: str = "auto") -> TextModel:
    """A trained model by name (in the data directory) or path, or a GPT-2 base, ready to write."""
    from finetune.device import pick_device

    from .charmodel import CharModel
    from .gpt2model import GPT2Model

    kinds: dict[str, type[TextModel]] = {CharModel.kind: CharModel, GPT2Model.kind: GPT2Model}
    torch_device = pick_device(device)
    path = resolve_model_dir(name_or_path)
    if path is None:
        return GPT2Model.base(str(name_or_path), torch_device, _no_model_hint(str(name_or_path)))
    config = ckpt.read_json(path / ckpt.CONFIG)
    kind = config.get("kind")
    if kind not in kinds:
        raise UserError(f"{path}: unknown model kind {kind!r}; this version loads {', '.join(kinds)}")
    model = kinds[kind](path, config, torch_device)
    # The memorization check's index of the model's corpus, built (once per corpus) now, while nothing streams:
    # built at the first stored sample, its message would land in the middle of that sample's text.
    model_index(config)
    return model


def _no_model_hint(name: str) -> str:
    known = list_model_names()
    hint = f"trained models: {', '.join(known)}" if known else "no models trained yet (see `assistant finetune`)"
    return f"no model {name!r}: {hint}"


def warn_dropped(dropped: list[str]) -> None:
    if dropped:
        shown = "".join(sorted(set(dropped)))
        warnings.warn(f"the model has never seen {len(dropped)} character(s) of the prompt; dropped: {shown!r}",
                      PromptWarning, stacklevel=3)
