"""The one generation API every front end uses.

`load_model(name_or_path)` returns a `TextModel`; `.stream(...)` returns a
`Stream` that yields text as it is produced and, once it has ended (run out,
cut by a length or stop string, or closed early), holds a `Generation`: the
text, the prompt, the parameters, the seed, whether it was cancelled, and how
long it took. `.generate(...)` returns the whole text. Stop strings, length
limits, seeding and the parameters are handled here once; a model kind only
supplies a decoder (see contract.sampling.Decoder): its model after a prompt,
stepped and rewound; the one loop of contract.loop draws each token through
the sampler chain, for every kind alike.

Nothing is stored here, and nothing is written on the model, which the REPL
and the editor server share between requests: the front end that asked for a
generation records its result (assistant.samples.recording.record).

Names resolve to a trained model in the data directory first, then to a
directory, then (for GPT-2) to a Hugging Face hub name such as `gpt2`, so a
fine-tuned model can be compared with the base it came from. Only a name that
looks like a hub's (GPT-2's own, or OWNER/NAME) is asked of the hub: any other
is a mistyped model name, answered with the nearest one.
"""

import itertools
import math
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from contract import loop, modeldir, registry
from contract.blend import Guided
from contract.copyguard import CopyGuard
from contract.loop import Token
from contract.modeldir import Card
from contract.processors import check_token_ids
from contract.sampling import SAMPLING_FIELDS, Decoder, Sampling, bias_pairs
from corpora import UserError
from corpora.index import CorpusIndex, MemorizationWarning
from corpora.suggest import did_you_mean
from finetune.memory import ran_out_of_memory

DEFAULT_CHARS = 500
QUANTIZE = ("auto", "int8", "none")  # load_model's choices: int8 where it is checked and allowed, int8 or else an error, as saved
# What computes a GPT-2's forward pass: torch, or llama.cpp over the model's GGUF export (an optional extra); the
# backend of a front end without a --backend flag is ASSISTANT_BACKEND's
BACKENDS = ("torch", "llama.cpp")
# A bound in characters is a bound in tokens too: a byte-level token holds at least one byte of UTF-8 and a character
# at most four, so N characters take at most 4N tokens. Without it a model whose tokens decode to nothing (a broken
# tokenizer, a run of partial characters) would never reach its length, and the generation would never end.
TOKENS_PER_CHAR = 4
SPARE_TOKENS = 8  # a few more, for a stop string or a character split across tokens at the end

# Where a continuation may end short of its length, so that it ends as a writer would: after a sentence's punctuation
# and any closing quotes or brackets, before a line break, or before a blank line. A sentence is over when the next
# word does not start in lower case (`"Yes!" he said.` is one sentence) and the full stop is not a title's (Mr.); it
# never runs on past the end of its paragraph.
SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?…][\"'”’)\]]*(?=\s+(?![a-z])\S)")
PARAGRAPH_END = re.compile(r"(?=\n[^\S\n]*\n)")
STOP_AT = {
    "sentence": re.compile(f"{SENTENCE_END.pattern}|{PARAGRAPH_END.pattern}"),
    "line": re.compile(r"(?=\n)"),
    "paragraph": PARAGRAPH_END,
}
LONGEST_END = 16  # the most characters before a piece an end can start at (punctuation and its closing quotes)


@dataclass(frozen=True)
class Params(Sampling):
    """Everything a generation is written with: the sampler chain's settings (contract.sampling.Sampling), its
    length, seed and ends; a sample's row in the store keeps all of it, so it can be written again."""

    max_new_chars: int | None = DEFAULT_CHARS
    max_new_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_at: str | None = None  # end at the first end of a sentence, line or paragraph (see STOP_AT)
    # steering (assistant.blending.steered): write as one author of a model trained with --author-tags, with
    # classifier-free guidance towards that author's tag, or towards the prompt
    author: str | None = None
    guidance: float | None = None
    prompt_guidance: float | None = None

    def check(self) -> None:
        for what, value in (("length", self.max_new_chars), ("tokens", self.max_new_tokens)):
            if value is not None and value < 0:
                raise UserError(f"{what} must be zero or more, got {value}")
        if self.stop_at is not None and self.stop_at not in STOP_AT:
            raise UserError(f"stop-at must be one of {', '.join(STOP_AT)}, got {self.stop_at!r}"
                            + did_you_mean(self.stop_at, STOP_AT, tail=True))
        super().check()

    @property
    def sampling(self) -> Sampling:
        return Sampling(**{name: getattr(self, name) for name in SAMPLING_FIELDS})


@dataclass(frozen=True)
class Generation:
    """What one stream did: everything a front end needs to show or store it."""

    model: "TextModel"
    prompt: str
    text: str
    params: Params  # with the seed actually used
    cancelled: bool  # closed before it ended by itself (Ctrl-C, a newer request, an error)
    created: str  # when it started, ISO 8601 UTC
    duration_s: float
    taken: int = 0  # the model's tokens it took (a char model's are characters), text held back or cut included
    tokens: tuple[Token, ...] = ()  # those the text holds, each with its probability and alternatives where asked for

    @property
    def reached_bound(self) -> bool:
        """Whether it ended because it took as many tokens as it was allowed (rather than at a stop, or cancelled)."""
        return not self.cancelled and self.taken >= token_bound(self.params)

    @property
    def seed(self) -> int:
        assert self.params.seed is not None
        return self.params.seed


class Stream:
    """The pieces of one generation as they come; `result` once it has ended or been closed."""

    def __init__(self, model: "TextModel", prompt: str, params: Params, pieces: Iterator[str], tokens: list[Token]):
        self._model, self._prompt, self._params = model, prompt, params
        self._pieces, self._tokens = pieces, tokens
        self._parts: list[str] = []
        self._created = datetime.now(UTC).isoformat(timespec="seconds")
        self._start = time.perf_counter()
        self.result: Generation | None = None

    @property
    def tokens(self) -> list[Token]:
        """The tokens written so far, each as the loop handed it out. They can run ahead of the pieces (text that
        could start a stop string is held back) and past the text (the one a stop string or a length cuts)."""
        return self._tokens

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.result is not None:
            raise StopIteration
        try:
            piece = next(self._pieces)
        except StopIteration:
            self._end(cancelled=False)
            raise
        except BaseException:
            self.close()
            raise
        self._parts.append(piece)
        return piece

    def close(self) -> None:
        """Stop generating; a stream that had not ended by itself is cancelled, its text so far kept."""
        if self.result is None:
            self._pieces.close()  # type: ignore[attr-defined]
            self._end(cancelled=True)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _end(self, cancelled: bool) -> None:
        text = "".join(self._parts)
        kept, at = [], 0  # the tokens the text holds: a stop string or a length may have cut the last ones
        for token in self._tokens:
            if at >= len(text) and token.text:
                break
            kept.append(token)
            at += len(token.text)
        self.result = Generation(self._model, self._prompt, text, self._params, cancelled, self._created,
                                 time.perf_counter() - self._start, len(self._tokens), tuple(kept))


class Session:
    """What one document (editor server) or one conversation (REPL) keeps between its generations.

    Consecutive prompts of a writer share almost everything before the cursor;
    a session keeps the model's state for the last one (GPT-2's KV cache, the
    LSTM's state), so that the next generation feeds only the tokens after the
    longest common prefix, and an edit before that point recomputes from there.
    What it writes is what a fresh run with the same seed writes. One stream
    at a time uses it: a second one started while it runs goes without.
    `prompt` is the last prompt it was used for, by which a server picks, for a
    client that names no document, the session a new prompt shares most with.
    """

    def __init__(self, model: "TextModel"):
        self.model = model
        new_state = getattr(model.decoder, "new_state", None)
        self._state = new_state() if new_state is not None else None
        self._busy = False
        self.prompt = ""

    @property
    def busy(self) -> bool:
        return self._busy

    def borrow(self, prompt: str) -> object | None:
        """The state for one stream of `prompt`, or None (nothing to reuse, or another stream has it)."""
        if self._state is None or self._busy:
            return None
        self._busy, self.prompt = True, prompt
        return self._state

    def give_back(self) -> None:
        self._busy = False


class TextModel:
    """A model loaded for writing: its card (what it is) and its kind's decoder."""

    def __init__(self, card: Card, decoder: Decoder, device: torch.device):
        self.card = card
        self.decoder = decoder
        self.device = device
        self._index: CorpusIndex | None = None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def kind(self) -> str:
        return self.card.kind

    @property
    def path(self) -> Path | None:
        return self.card.path

    @property
    def precision(self) -> str:
        """What its products compute in: float32, or int8 (see load_model's `quantize`)."""
        return getattr(self.decoder, "precision", "float32")

    def stream(
        self,
        prompt: str = "",
        *,
        max_new_chars: int | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
        stop: str | list[str] | tuple[str, ...] | None = None,
        stop_at: str | None = None,
        session: Session | None = None,
        alternatives: int | None = None,
        author: str | None = None,
        guidance: float | None = None,
        prompt_guidance: float | None = None,
        **sampling,
    ) -> Stream:
        """The continuation piece by piece; it ends before the first stop string.

        The length is in characters, tokens, or both (whichever comes first);
        with neither, 500 characters. A length in characters bounds the
        tokens as well (see TOKENS_PER_CHAR), so every generation ends. `stop_at` ("sentence", "line" or
        "paragraph") ends it sooner, at the first end of one, so that it stops
        where a writer would rather than mid-word; the length still bounds it.
        A `session` (see `session()`) reuses what its last generation computed.
        `author` writes as that author of a model trained on several with their tags, `guidance` with
        classifier-free guidance towards the author, `prompt_guidance` towards the prompt (assistant.blending.steered).
        `sampling` takes every setting of contract.sampling.Sampling (temperature,
        top_k, min_p, ban, max_copy...); `alternatives` asks each token's
        probability and that many likeliest tokens (the result's `tokens`).
        Parameters are checked here, when
        called, not at the first piece, so a front end can report a bad value
        before it prints anything. Without a seed one is drawn, and kept in the
        result so that the sample can be written again.
        """
        stops = tuple(s for s in ((stop,) if isinstance(stop, str) else (stop or ())) if s)
        if max_new_chars is None and max_new_tokens is None:
            max_new_chars = DEFAULT_CHARS
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little")
        if stray := sorted(set(sampling) - set(SAMPLING_FIELDS)):
            raise TypeError(f"stream() got unknown settings: {', '.join(stray)}")
        sampling = {**self.card.extra.get("sampling", {}), **sampling}  # the model's own defaults (`models set`)
        sampling = {k: tuple(v) if isinstance(v, list) else v for k, v in sampling.items()}  # as JSON gives them back
        if "logit_bias" in sampling:
            sampling["logit_bias"] = bias_pairs(sampling["logit_bias"])
        params = Params(**sampling, max_new_chars=max_new_chars, max_new_tokens=max_new_tokens, seed=seed, stop=stops,
                        stop_at=stop_at, author=author, guidance=guidance, prompt_guidance=prompt_guidance)
        params.check()
        from .blending import steered

        decoder = steered(self, author, guidance, prompt_guidance)
        check_token_ids(params.logit_bias, decoder)
        guard = self._guard(params.max_copy) if params.max_copy is not None else None
        generator = torch.Generator().manual_seed(seed)
        written: list[Token] = []
        pieces = itertools.islice(self._pieces(decoder, prompt, params.sampling, generator, session, guard, alternatives,
                                               written), token_bound(params))
        pieces = _until_stop(pieces, params.max_new_chars, stops)
        return Stream(self, prompt, params, pieces if stop_at is None else _until_end(pieces, STOP_AT[stop_at]), written)

    def generate(self, prompt: str = "", **kwargs) -> str:
        return "".join(self.stream(prompt, **kwargs))

    def session(self) -> Session:
        """A session for a document or conversation: pass it to each of its `stream` calls."""
        return Session(self)

    def tokens(self, text: str) -> list[int]:
        """The ids the model reads `text` as (a char model's: one per character it knows), for counting."""
        return self.decoder.encode(text)

    def _guard(self, limit: int) -> CopyGuard:
        """A copy guard over the model's corpus index; a one-line error without the corpus."""
        return CopyGuard(self.guarded_index(), limit, self.decoder.token_texts())

    def guarded_index(self) -> CorpusIndex:
        """The index of the corpus the copy guard checks (loaded once per model); a one-line error without it."""
        if self._index is None:
            with warnings.catch_warnings():  # the memorization check's warning says it again, in other words
                warnings.simplefilter("ignore", MemorizationWarning)
                self._index = self.card.corpus_index()
            if self._index is None:
                what = f"its corpus {self.card.corpus.name!r}" if self.card.corpus else "the corpus it was trained on"
                raise UserError(f"--max-copy needs {what}, and it is not on this machine: the copy guard checks what "
                                f"{self.name} writes against it")
        return self._index

    def _pieces(self, decoder: Decoder, prompt: str, sampling: Sampling, generator: torch.Generator,
                session: Session | None, guard: CopyGuard | None, alternatives: int | None,
                written: list[Token]) -> Iterator[str]:
        """Each written token's text through contract.loop, the tokens themselves kept in `written`. A decoder
        steered by guidance reads two contexts, and reuses no session's state (it holds one)."""
        if session is not None and session.model is not self:
            raise ValueError(f"a session of {session.model.name} used with {self.name}")
        state = session.borrow(prompt) if session is not None and not isinstance(decoder, Guided) else None
        try:
            for token in loop.tokens(decoder, prompt, sampling, generator, state=state, guard=guard,
                                alternatives=alternatives):
                written.append(token)
                yield token.text
        finally:
            if state is not None:
                session.give_back()  # type: ignore[union-attr]


def token_bound(params: Params) -> int:
    """The most tokens a generation may take: its own bound, and never more than its characters can need."""
    bounds = [params.max_new_tokens] if params.max_new_tokens is not None else []
    if params.max_new_chars is not None:
        bounds.append(TOKENS_PER_CHAR * params.max_new_chars + SPARE_TOKENS)
    return min(bounds)


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


def _until_end(pieces: Iterator[str], end: re.Pattern[str]) -> Iterator[str]:
    """Cut a text stream at the first match of `end` (a sentence's, line's or paragraph's), once it holds some text.

    White space at the end is held back until what follows it is known: a line
    break may be the start of a blank line, and a sentence's end is only known
    when white space follows it. Ends before the first character that is not
    white space do not count, so that a continuation of a prompt that had just
    ended its line or paragraph is the next one, not nothing.
    """
    text, shown, start = "", 0, None  # all of it so far, how much has been yielded, where its first word starts
    for piece in pieces:
        text += piece
        unshown = text[shown:]  # only this is scanned again: a long generation stays linear
        if start is None:
            if not unshown.strip():
                continue
            start = len(text) - len(text.lstrip())
        found = end.search(text, max(start, shown - LONGEST_END))
        if found:
            if found.end() > shown:
                yield text[shown : found.end()]
            return
        ready = shown + len(unshown.rstrip())
        if ready > shown:
            yield text[shown:ready]
            shown = ready
    if len(text) > shown:
        yield text[shown:]


def cpu_threads(reserve: int = 0) -> int:
    """Set and return torch's thread count for writing on a CPU: the cores this process may use, less `reserve`.

    torch counts the machine's cores, not the ones this process is allowed
    (a container, taskset), and threads beyond those only wait on each other:
    a decode step is a few dozen small operations, each a barrier, and on 2
    busy cores 2 threads ran GPT-2 5x slower than 1. The editor server keeps
    a core for its event loop (reserve=1). ASSISTANT_THREADS overrides it.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = int(os.environ.get("ASSISTANT_THREADS") or max(1, min(cores - reserve, torch.get_num_threads())))
    torch.set_num_threads(threads)
    return threads


def load_model(name_or_path: str | Path, device: str = "auto", quantize: str = "auto",
               backend: str | None = None, weights: str | None = None) -> TextModel:
    """A trained model by name (in the data directory) or path, or a GPT-2 base, ready to write.

    `NAME@best-val` and `NAME@last` load those checkpoints; a plain name the
    ghostwriting checkpoint where training chose one (see finetune.ghostwriting),
    else the best validation loss. `quantize`: "auto" writes in int8 on a CPU
    where the model's kind can and its recorded loss check allows it, "int8"
    insists (a one-line error says why it cannot), "none" keeps the weights as saved.
    `backend` "llama.cpp" writes with a trained GPT-2's GGUF export on the CPU
    (q8_0, or f32 with quantize "none"; see kinds.gpt2.llamacpp); None: $ASSISTANT_BACKEND, else torch.
    `A+B@0.7,0.3` blends models (see assistant.blending); `weights` ("0.7,0.3") are a blend's when its name has none.
    """
    from finetune.device import pick_device

    from . import blending

    if blending.is_blend(name_or_path):
        return blending.load_blend(str(name_or_path), device, quantize, backend, weights)
    if weights is not None:
        raise UserError(f"--weights are for a blend of models (A+B); {name_or_path} is one model")

    backend = backend or os.environ.get("ASSISTANT_BACKEND") or "torch"
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: choose {', '.join(BACKENDS)}")
    if backend == "llama.cpp":
        return _through_llama_cpp(name_or_path, device, quantize)
    torch_device = pick_device(device)
    if torch_device.type == "cpu":
        cpu_threads()
    card = find_card(name_or_path)
    if card is None:
        from kinds.gpt2.infer import load_base

        card, decoder = load_base(str(name_or_path), torch_device)
        return _quantized(TextModel(card, decoder, torch_device), quantize)
    return _quantized(TextModel(card, _decoder(card, torch_device), torch_device), quantize)


def find_card(name_or_path: str | Path) -> Card | None:
    """The card of a trained model by name or path, at the checkpoint its name asks for (see load_model), with
    weights to load; None for a GPT-2 base (a hub name or a save_pretrained directory)."""
    path, checkpoint = resolve(name_or_path)
    if path is None:
        return None
    card = modeldir.read(path).at(checkpoint)
    if card.kind not in registry.KINDS:
        raise UserError(f"{path}: unknown model kind {card.kind!r}; this version loads {', '.join(registry.KINDS)}")
    if not card.has_weights:
        raise UserError(f"{path} has no weights yet: its training was stopped before the first evaluation")
    return card


def _through_llama_cpp(name_or_path: str | Path, device: str, quantize: str) -> TextModel:
    """A trained GPT-2 written through llama.cpp: its export for these weights, made once (see assistant.export)."""
    from kinds.gpt2.infer import tokenizer_source
    from kinds.gpt2.llamacpp import LlamaCppDecoder, library

    from .export import engine_file, exportable

    if device not in ("auto", "cpu"):
        raise UserError(f"--backend llama.cpp writes on the CPU, not {device}")
    if quantize not in QUANTIZE:
        raise UserError(f"unknown quantization {quantize!r}: choose {', '.join(QUANTIZE)}")
    card = find_card(name_or_path)
    if card is None:
        raise UserError(f"--backend llama.cpp writes with a model you trained; {name_or_path} is a GPT-2 base "
                        "(assistant export writes a base's file for an engine of yours)")
    exportable(str(name_or_path), card)
    library()  # installed, before anything is written for it
    path, quant = engine_file(card, "f32" if quantize == "none" else "q8_0")
    decoder = LlamaCppDecoder(path, tokenizer_source(card), card.extra.get("n_positions", 1024), cpu_threads(), quant)
    return TextModel(card, decoder, torch.device("cpu"))


def resolve(name_or_path: str | Path) -> tuple[Path | None, str | None]:
    """The model directory and checkpoint a name means (`NAME@CHECKPOINT`; a directory's own name may hold an @), or
    (None, None) for a GPT-2 base: a hub name or a save_pretrained directory. Anything else is answered at once with
    the nearest name of the writer's models, not after a trip to the hub."""
    name, path, checkpoint = str(name_or_path), modeldir.find(name_or_path), None
    if path is None and "@" in name:
        name, _, checkpoint = name.rpartition("@")
        path = modeldir.find(name)
    if path is None:
        from kinds.gpt2 import base as bases

        if not (bases.is_hub_name(str(name_or_path)) or Path(name_or_path).expanduser().is_dir()):
            raise modeldir.no_model(name, bases.HUB_GPT2)
    return path, checkpoint


def _quantized(model: TextModel, mode: str) -> TextModel:
    """`model` in int8 where `mode` and its kind allow (a decoder that can has `quantize(card, mode)`)."""
    if mode not in QUANTIZE:
        raise UserError(f"unknown quantization {mode!r}: {did_you_mean(mode, QUANTIZE)}choose {', '.join(QUANTIZE)}")
    quantize = getattr(model.decoder, "quantize", None)
    if quantize is not None:
        quantize(model.card, mode)
    elif mode == "int8":
        raise UserError(f"--quantize int8 is for GPT-2 models; {model.name} is a {model.kind} model")
    return model


def _decoder(card: Card, device: torch.device) -> Decoder:
    """The kind's decoder for `card`; weights or a config.json that do not load (truncated, another format such as a
    pickle, tensors of other shapes, keys missing) are one line that says which directory, not a traceback."""
    from safetensors import SafetensorError

    try:
        return registry.get(card.kind).infer().load(card, device)
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError, TypeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if ran_out_of_memory(e):  # a full device, not a damaged directory
            raise UserError(f"{card.path}: its weights do not fit in the {device.type} memory left ({reason}): free "
                            "some (another model or process holds it), or load it with --device cpu") from None
        raise UserError(f"{card.path}: its weights cannot be loaded ({reason}); the directory is damaged or not a "
                        "ghostwriter model's: restore it from a copy, or train it again") from None

