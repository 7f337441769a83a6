"""One request's generations: run on the serving core's worker, recorded in the sample store, streamed or collected.

Both APIs' routes start a request here and only format what comes back: a
`Piece` of a choice's text as the model writes it, and a `Choice` once a
generation has ended, stored (source `api`, client from the User-Agent) and
checked for copying as the REPL's samples are. The model is the generation
API's, so stop strings, bounds, seeds and int8 behave as in `assistant
generate`; each prompt takes the session that shares most of it (see
assistant.serving.models), so a story sent again pays only for its new words.

A generation whose client goes away, whose KoboldAI genkey is aborted, or
that a shutdown stops, is closed at its next token and recorded as
cancelled with the text it had.
"""

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request

from contract.loop import Token
from corpora import UserError

from ..samples import recording
from ..samples.views import copy_warning
from ..serving.jobs import Busy, Job, Stopped
from .errors import busy
from .logprobs import Handed, held
from .service import Service
from .settings import Invalid, Settings

T = TypeVar("T")

if TYPE_CHECKING:  # the generation API imports torch: the server loads it with its first model
    from ..generation import Generation, Stream


@dataclass(frozen=True)
class Piece:
    index: int  # which choice
    text: str
    tokens: tuple[Token, ...] = ()  # the tokens whose text this piece completes, when probabilities were asked for


@dataclass(frozen=True)
class Choice:
    """How one generation ended."""

    index: int
    text: str  # what the model wrote, without the prompt
    finish_reason: str  # "length" (its bound), else "stop" (a stop string, the model's end, or stopped early)
    prompt_tokens: int
    completion_tokens: int
    sample_id: int | None = None
    copied: dict[str, Any] | None = None  # the passage it copies from the model's corpus, when at least min_span long
    cancelled: bool = False
    tokens: tuple[Token, ...] = ()  # its text token by token, when probabilities were asked for (see logprobs.held)

    def extension(self) -> dict[str, Any]:
        """The `ghostwriter` field clients ignore: where the sample is stored, and what it copies."""
        return {"sample_id": self.sample_id, "copied": self.copied, "cancelled": self.cancelled}


@dataclass
class Run:
    """A request on the worker: its pieces and choices as they come (`events`), or all of them (`collect`)."""

    job: Job
    settings: Settings
    model: str
    written: dict[int, list[str]] = field(default_factory=dict)  # each choice's pieces so far

    async def events(self) -> AsyncIterator[Piece | Choice]:
        """Pieces and choices in order; Stopped when the request was stopped (abort, shutdown)."""
        async for event in self.job.items():
            if isinstance(event, Piece):
                self.written.setdefault(event.index, []).append(event.text)
            yield event

    async def collect(self, request: Request) -> list[Choice]:
        """Every choice, once all have ended; the generation stops if the client goes away first.

        A request stopped before it ended (KoboldAI's abort, a shutdown) gives
        what each choice had written, as KoboldCpp's generate does.
        """
        done: dict[int, Choice] = {}

        async def gather() -> None:
            async for event in self.events():
                if isinstance(event, Choice):
                    done[event.index] = event

        work, gone = asyncio.ensure_future(gather()), asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            work.cancel()  # nothing, when it has ended; else the client is gone: stop the generation
            [outcome] = await asyncio.gather(work, return_exceptions=True)
        if isinstance(outcome, BaseException) and not isinstance(outcome, Stopped | asyncio.CancelledError):
            raise outcome
        return [done.get(i) or self.partial(i) for i in range(self.settings.choices)]

    def partial(self, index: int) -> Choice:
        """A choice stopped before it ended: what it had written (its sample is stored, cancelled, on the worker)."""
        return Choice(index, "".join(self.written.get(index, [])), "stop", 0, 0, cancelled=True)


def start(service: Service, settings: Settings, client: str | None, key: str | None = None) -> Run:
    """Queue a request's generations (a newer request under the same `key` stops an older one); 404 for a model the
    server does not have, 503 with Retry-After when the queue is full or the server is stopping."""
    name = service.resolve(settings.model)
    try:
        job = service.jobs.submit(functools.partial(steps, settings, name, service, client), key)
    except Busy as e:
        raise busy(f"the server is busy ({e})") from None
    except Stopped:
        raise busy("the server is stopping") from None
    return Run(job, settings, name)


def steps(settings: Settings, model_name: str, service: Service, client: str | None,
          stop: threading.Event) -> Iterator[Piece | Choice]:
    """On the worker: each prompt's `n` generations, one piece per step, each recorded as it ends."""
    model = service.models.get(model_name, service.options.quantize)
    for p, prompt in enumerate(settings.prompts):
        prompt_tokens = len(model.tokens(prompt))
        for i in range(settings.n):
            index = p * settings.n + i
            try:
                stream = model.stream(prompt, **settings.generation(i, model.decoder.token_texts),
                                      session=service.models.sessions.closest(model, prompt))
            except UserError as e:  # a setting this model cannot take: max_copy without its corpus on this machine
                raise Invalid(str(e)) from None
            handed = Handed(stream.tokens) if settings.logprobs is not None else None
            result, sample_id, copied = yield from recorded(
                stream, "api", client, service, functools.partial(_piece, index, handed))
            tokens = held(result.tokens, result.text) if handed else ()
            if handed and (rest := tokens[handed.given:]):  # the last, cut by a stop string or a length
                yield Piece(index, "", rest)
            yield Choice(index, result.text, "length" if result.reached_bound else "stop", prompt_tokens,
                         result.taken, sample_id, copied, result.cancelled, tokens)


def _piece(index: int, handed: Handed | None, text: str) -> Piece:
    return Piece(index, text, handed.piece(text) if handed else ())


def recorded(stream: "Stream", source: str, client: str | None, service: Service,
             shape: Callable[[str], T]) -> Generator[T, None, tuple["Generation", int | None, dict[str, Any] | None]]:
    """On the worker: a generation's pieces, each as `shape` makes it; once it has ended, or is closed at a piece
    (stopped), it is recorded either way. Returns what it wrote, its sample's id and the passage it copies
    (`copied`), for the routes that stream generations (both APIs' and the pad's) to send the same."""
    try:
        for piece in stream:
            if piece:
                yield shape(piece)
    finally:
        stream.close()
        result = stream.result
        assert result is not None
        sample_id = recording.record(result, source, client, service.store)
    return result, sample_id, copied_passage(service, result, sample_id)


def copied_passage(service: Service, result: "Generation", sample_id: int | None) -> dict[str, Any] | None:
    """The passage a generation shares word for word with its model's corpus (where, and the one line a writer is
    told), when at least the server's min_span long; else None."""
    span = recording.copied_span(result, sample_id, service.store.get() if sample_id is not None else None)
    warning = copy_warning(span, result.text, service.options.min_span)
    if span is None or warning is None:
        return None
    return {"chars": span.length, "document": span.document, "offset": span.offset,
            "text": result.text[span.sample_offset : span.sample_offset + span.length], "warning": warning}


async def _disconnected(request: Request) -> None:
    """Returns when the client has closed its connection (the body was read already: what comes next is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
