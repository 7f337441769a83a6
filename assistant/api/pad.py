"""The writing pad's routes: the page at `/`, its documents, its suggestions as they stream, and what the writer accepts.

The page (assistant/pad/static) is a plain one: it asks `/pad/api/write`
for continuations after a pause in typing and shows them as ghost text.
Each continuation runs on the serving core's worker like the APIs'
generations, under the document's key, so a newer request for the same
document stops the older at its next token, as does a page that aborts
its fetch because the writer typed on; either way the sample is recorded
as cancelled. Every continuation is a sample (source `pad`) with its tokens'
probabilities and alternatives and the copy check; what the writer accepts
is tagged `ghostwritten` and with the document's name, so the REPL and
`assistant samples list --tag ghostwritten` see it.
"""

import functools
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contract import modeldir
from contract.sampling import SAMPLING_FIELDS, Sampling
from corpora import UserError

from ..pad.documents import Documents, Missing
from ..samples import publishing, recording
from ..serving.jobs import Busy, Stopped
from .errors import ApiError, busy, failure
from .generations import recorded
from .replies import STREAM_HEADERS, body_json, client, event
from .service import Service
from .settings import MAX_N, MAX_PROMPT_CHARS, Invalid, integer, of_type, text

STATIC = Path(str(resources.files("assistant.pad") / "static"))
MAX_CHARS = 4000  # the longest continuation one request writes
MAX_ALTERNATIVES = 10
NOTE_LINES = 3  # the author's note goes this many lines before the cursor, as story front ends put it


@dataclass(frozen=True)
class Ask:
    """What the page asks for: the text before the cursor, the document's memory and note, the settings."""

    document: str
    before: str
    memory: str = ""
    note: str = ""
    model: str | None = None
    n: int = 1  # continuations, written one after the other (Alt-] shows the next)
    chars: int = 60
    stop_at: str | None = None
    seed: int | None = None
    alternatives: int = 5  # the likeliest tokens listed at each written one
    sampling: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, body: Any) -> "Ask":
        if not isinstance(body, dict):
            raise Invalid("the request body must be a JSON object")
        sampling = of_type(dict, "a JSON object")("settings", body.get("settings") or {})
        stray = sorted(set(sampling) - set(SAMPLING_FIELDS))
        if stray:
            raise Invalid(f"settings: unknown {', '.join(stray)} (known: {', '.join(SAMPLING_FIELDS)})", "settings")
        sampling = {k: _tuples(v) for k, v in sampling.items() if v is not None}
        try:
            Sampling(**sampling).check()
        except (UserError, TypeError, ValueError) as e:
            raise Invalid(f"settings: {e}", "settings") from None
        stop_at = body.get("stop_at")
        if stop_at not in (None, "sentence", "line", "paragraph"):
            raise Invalid(f"stop_at must be sentence, line, paragraph or null, got {stop_at!r}", "stop_at")
        seed = body.get("seed")
        return cls(document=text(200)("document", body.get("document") or ""),
                   before=text(MAX_PROMPT_CHARS)("before", body.get("before") or ""),
                   memory=text(MAX_PROMPT_CHARS)("memory", body.get("memory") or ""),
                   note=text(10_000)("note", body.get("note") or ""), model=body.get("model") or None,
                   n=integer(1, MAX_N)("n", body.get("n", 1)), chars=integer(1, MAX_CHARS)("chars", body.get("chars", 60)),
                   stop_at=stop_at, seed=None if seed is None else integer(0, 2**62)("seed", seed),
                   alternatives=integer(0, MAX_ALTERNATIVES)("alternatives", body.get("alternatives", 5)),
                   sampling=sampling)

    @property
    def prompt(self) -> str:
        return prompt(self.memory, self.before, self.note)


def prompt(memory: str, before: str, note: str) -> str:
    """What the model reads: the memory, then the text before the cursor with the author's note NOTE_LINES lines
    before its end (at its start when it has fewer), each on a line of its own."""
    if note.strip():
        lines = before.split("\n")
        at = max(0, len(lines) - NOTE_LINES)
        head, tail = "\n".join(lines[:at]), "\n".join(lines[at:])
        before = (head + "\n" if at else "") + f"[{note.strip()}]\n" + tail
    return (memory.rstrip("\n") + "\n\n" if memory.strip() else "") + before


def _tuples(value: Any) -> Any:
    """JSON's lists as the tuples Sampling holds (logit_bias: pairs)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


# ---- the page ------------------------------------------------------------------------------------------------------
async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


# ---- documents -----------------------------------------------------------------------------------------------------
def _documents(request: Request) -> Documents:
    folder = request.app.state.service.options.documents
    return Documents(Path(folder).expanduser() if folder else None)


def _user(fn):  # type: ignore[no-untyped-def]
    """A route whose UserError is the writer's mistake (400), and Missing a 404, not the server's failure."""
    @functools.wraps(fn)
    async def route(request: Request) -> Response:
        try:
            return await fn(request)
        except Missing as e:
            raise ApiError(404, str(e), code="not_found") from None
        except UserError as e:
            if isinstance(e, Invalid | ApiError):
                raise
            raise ApiError(400, str(e)) from None
    return route


@_user
async def documents(request: Request) -> Response:
    found = _documents(request)
    return JSONResponse({"folder": str(found.folder), "documents": found.names()})


@_user
async def create(request: Request) -> Response:
    body = await body_json(request)
    name = _documents(request).create(text(200)("name", (body or {}).get("name") or ""))
    return JSONResponse({"name": name}, 201)


@_user
async def document(request: Request) -> Response:
    return JSONResponse(_documents(request).read(request.path_params["name"]))


@_user
async def save(request: Request) -> Response:
    body = await body_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise Invalid("the body must be {text, record}", "text")
    record = body.get("record")
    if record is not None and not isinstance(record, dict):
        raise Invalid("record must be a JSON object", "record")
    return JSONResponse({"name": _documents(request).write(request.path_params["name"], body["text"], record)})


@_user
async def rename(request: Request) -> Response:
    body = await body_json(request)
    to = text(200)("to", (body or {}).get("to") or "")
    return JSONResponse({"name": _documents(request).rename(request.path_params["name"], to)})


# ---- writing -------------------------------------------------------------------------------------------------------
async def write(request: Request) -> Response:
    """Continuations as server-sent events: `piece` {index, text} as they come, `choice` once each ends (its tokens
    with their alternatives, its sample, what it copies), then `done`; `stopped` or `error` instead when so."""
    service: Service = request.app.state.service
    ask = Ask.read(await body_json(request))
    name = service.resolve(ask.model)
    try:
        job = service.jobs.submit(functools.partial(_writing, service, ask, name, client(request)),
                                  key=f"pad:{ask.document}")
    except Busy as e:
        raise busy(f"the server is busy ({e})") from None
    except Stopped:
        raise busy("the server is stopping") from None

    async def events() -> AsyncIterator[str]:
        try:
            async for kind, data in job.items():
                yield event(data, kind)
        except Stopped:
            yield event({}, "stopped")
            return
        except Exception as e:  # the generation's own failure: the page shows the one line
            yield event(failure(e).body()["error"], "error")
            return
        yield event({}, "done")

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)


def _piece(index: int, text: str) -> tuple[str, dict]:
    return "piece", {"index": index, "text": text}


def _writing(service: Service, ask: Ask, name: str, agent: str | None, stop: threading.Event) -> Iterator[tuple[str, dict]]:
    """On the worker: `ask.n` continuations one after the other, each recorded (cancelled, when stopped) as it ends."""
    model = service.models.get(name, service.options.quantize)
    prompt_text = ask.prompt
    for i in range(ask.n):
        stream = model.stream(prompt_text, max_new_chars=ask.chars, stop_at=ask.stop_at,
                              seed=None if ask.seed is None else ask.seed + i, alternatives=ask.alternatives,
                              session=service.models.sessions.closest(model, prompt_text), **ask.sampling)
        result, sample_id, copied = yield from recorded(stream, "pad", agent, service,
                                                        functools.partial(_piece, i))
        yield "choice", {"index": i, "text": result.text, "sample_id": sample_id, "copied": copied,
                         "tokens": [t.to_json() for t in result.tokens], "model": name}


async def accept(request: Request) -> Response:
    """The writer accepted `text` of sample `sample_id` into `document`: tagged ghostwritten and with the document's
    name. The whole sample is tagged itself; a part of it (the first words) is stored as a sample of its own, checked
    against the corpus again. One that copies its corpus is refused (409) unless `anyway`."""
    service: Service = request.app.state.service
    body = await body_json(request)
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    sample_id = integer(1)("sample_id", body.get("sample_id"))
    accepted = text(MAX_PROMPT_CHARS)("text", body.get("text") or "")
    name = text(200)("document", body.get("document") or "")
    anyway = bool(body.get("anyway"))
    try:
        found = await service.jobs.run(lambda stop: _accepted(service, sample_id, accepted, name, anyway))
    except Missing as e:
        raise ApiError(404, str(e), code="not_found") from None
    except UserError as e:
        raise ApiError(409, str(e), code="copies_corpus") from None
    return JSONResponse(found)


def _accepted(service: Service, sample_id: int, accepted: str, document: str, anyway: bool) -> dict[str, Any]:
    """On the worker (the store is the worker's): tag the sample, or store the part accepted and tag that."""
    store = service.store.get()
    try:
        sample = store.get(sample_id)
    except UserError as e:
        raise Missing(str(e)) from None
    if not accepted or not sample.text.startswith(accepted):
        raise Invalid(f"the text accepted is not the start of sample {sample_id}'s", "text")
    if accepted != sample.text:
        row = {k: v for k, v in vars(sample).items() if k not in ("id", "tags") and not k.startswith("copied_")}
        row.update(text=accepted, chars=len(accepted), params={**sample.params, "accepted_from": sample_id})
        path = modeldir.find(sample.model_path or sample.model)
        if path is None:
            raise Missing(f"sample {sample_id}'s model {sample.model} is gone: its text cannot be checked")
        sample_id = recording.store_sample(row, modeldir.read(path), store)
    found, warning = publishing.ghostwrite(store, sample_id, service.options.min_span, anyway,
                                           "accept it again with anyway")
    if document:
        store.tag(found.id, [document])
    return {"sample_id": found.id, "tags": store.get(found.id).tags, "warning": warning}


ROUTES = [
    Route("/", page, methods=["GET"]),
    Mount("/pad/static", StaticFiles(directory=STATIC), name="pad"),
    Route("/pad/api/documents", documents, methods=["GET"]),
    Route("/pad/api/documents", create, methods=["POST"]),
    Route("/pad/api/documents/{name}", document, methods=["GET"]),
    Route("/pad/api/documents/{name}", save, methods=["PUT"]),
    Route("/pad/api/documents/{name}/rename", rename, methods=["POST"]),
    Route("/pad/api/write", write, methods=["POST"]),
    Route("/pad/api/accept", accept, methods=["POST"]),
]
