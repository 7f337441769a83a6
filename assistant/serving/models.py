"""The models a server has loaded, and the sessions that keep their prompts' state between requests.

A server loads a model on first use and keeps it: loading GPT-2 takes
seconds, and a request should not pay them. Several may be asked for (the
HTTP API's `model` field, an editor's settings); they stay loaded while
their weights fit within `max_bytes` together, the least recently used let
go first, and the one just asked for always stays. Only weights are counted:
a GPT-2 small takes 0.5 GB in float32, 0.2 GB in int8, and each session's
cache 75 MB more; while a new model loads, the old ones are still there.

Sessions (assistant.generation.Session) keep a prompt's model state so that
the next prompt that starts the same way feeds only its new tokens. The
editor server keeps one per document; an HTTP client names no document, so
its prompt takes the idle session whose last prompt it shares most with,
as llama.cpp's server picks a slot: a client that sends its story again with
a few more words pays only for those. Only the few most recent are kept.

Both are used on the worker thread only (see jobs.py), so nothing here locks.
"""

import itertools
from collections import OrderedDict

from contract import modeldir

from ..generation import Session, TextModel, load_model
from . import DEFAULT_MEMORY

SESSIONS = 4  # sessions kept: a GPT-2 small's cache takes 75 MB


class Sessions:
    """The most recently used sessions, each under a key: a document's URI, or one drawn for a client's prompt."""

    def __init__(self, keep: int = SESSIONS):
        self.keep = keep
        self._kept: OrderedDict[object, Session] = OrderedDict()  # the most recently used last
        self._keys = itertools.count()

    def for_document(self, document: str, model: TextModel) -> Session:
        """The document's session with `model`, so that its next request feeds only what changed since the last one."""
        session = self._kept.pop(document, None)
        if session is None or session.model is not model:
            session = model.session()
        return self._put(document, session)

    def closest(self, model: TextModel, prompt: str) -> Session | None:
        """For a client that names no document: the idle session of `model` whose last prompt shares the longest start
        with `prompt`; else a new one, in place of the least recently used idle one; None when every one is busy."""
        idle = [(key, s) for key, s in self._kept.items() if s.model is model and not s.busy]
        if idle:
            key, best = max(idle, key=lambda found: shared_start(found[1].prompt, prompt))
            if shared_start(best.prompt, prompt):
                return self._put(key, self._kept.pop(key))
        if len(self._kept) >= self.keep:
            oldest = next((key for key, s in self._kept.items() if not s.busy), None)
            if oldest is None:
                return None
            del self._kept[oldest]
        return self._put(next(self._keys), model.session())

    def drop(self, document: str) -> None:
        """A closed document's session goes with it; a generation using it finishes first."""
        self._kept.pop(document, None)

    def forget(self, model: TextModel) -> None:
        """Let go of every session of a model that is let go."""
        for key in [key for key, s in self._kept.items() if s.model is model]:
            del self._kept[key]

    def _put(self, key: object, session: Session) -> Session:
        self._kept[key] = session
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return session


class Models:
    """Models by name and quantization, loaded on first use and kept under a memory bound, and their sessions."""

    def __init__(self, device: str = "auto", max_bytes: int = DEFAULT_MEMORY, sessions: int = SESSIONS):
        self.device = device
        self.max_bytes = max_bytes
        self.sessions = Sessions(sessions)
        self._loaded: OrderedDict[tuple[str, str], tuple[TextModel, int]] = OrderedDict()  # the most recent last

    def get(self, name: str | None, quantize: str) -> TextModel:
        """The model (None: the newest trained), loaded once. Another quantization of it is let go: one copy is enough."""
        name = name or modeldir.newest()
        found = self._loaded.pop((name, quantize), None)
        if found is None:
            for key in [key for key in self._loaded if key[0] == name]:
                self._let_go(key)
            model = load_model(name, self.device, quantize)
            found = (model, weight_bytes(model))
        self._loaded[name, quantize] = found
        while len(self._loaded) > 1 and sum(size for _, size in self._loaded.values()) > self.max_bytes:
            self._let_go(next(iter(self._loaded)))
        return found[0]

    def loaded(self) -> list[tuple[str, str]]:
        """The names and quantizations loaded, the least recently used first."""
        return list(self._loaded)

    def _let_go(self, key: tuple[str, str]) -> None:
        model, _ = self._loaded.pop(key)
        self.sessions.forget(model)


def shared_start(a: str, b: str) -> int:
    """How many characters `a` and `b` start with in common (a binary search of slices: a story's length, at C speed)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def weight_bytes(model: TextModel) -> int:
    """What a model's weights take in memory: every tensor of its state once (a tied embedding counts once), int8's
    packed ones included."""
    import torch

    seen: set[int] = set()

    def size(value: object) -> int:
        if isinstance(value, torch.Tensor):
            key = value.data_ptr() if not value.is_quantized else id(value)
            if key in seen:
                return 0
            seen.add(key)
            return value.numel() * value.element_size()
        if isinstance(value, tuple | list):
            return sum(size(v) for v in value)
        return 0

    module = getattr(model.decoder, "model", None)
    return sum(size(v) for v in module.state_dict().values()) if isinstance(module, torch.nn.Module) else 0
