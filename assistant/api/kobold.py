"""The KoboldAI-compatible routes, so that story front ends can pick ghostwriter as a KoboldCpp-style backend.

SillyTavern and Kobold Lite use KoboldCpp's extras (streaming, abort,
token counts) only when `/api/extra/version` answers `"result": "KoboldCpp"`,
so it does, with ghostwriter's own version beside it. `memory` comes before
the prompt; `genkey` names a generation so that `/api/extra/abort` stops it
(a generate call then answers with what it had, as KoboldCpp's does). The
stream is events `message` with `{"token": ...}`, the last one carrying the
`finish_reason` and the `ghostwriter` field (sample id, copied span). With
`logprobs: true` a generation's result has KoboldCpp's `logprobs` (the 5
likeliest tokens at each), and so does each streamed token's event.
"""

import importlib.metadata
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..serving.jobs import Busy, Stopped
from . import logprobs
from .errors import busy, failure
from .generations import Choice, Piece, Run, start
from .replies import STREAM_HEADERS, body_json, client, event, extension, headers
from .service import Service
from .settings import MAX_PROMPT_CHARS, Invalid, read, text

API_VERSION = "1.2.5"  # the KoboldAI API version whose fields it takes (stop_sequence came in 1.2.2)
KOBOLDCPP_VERSION = "1.80"  # the KoboldCpp whose extras it answers


async def model(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    return JSONResponse({"result": f"ghostwriter/{service.default}"})


async def api_version(request: Request) -> JSONResponse:
    return JSONResponse({"result": API_VERSION})


async def extra_version(request: Request) -> JSONResponse:
    return JSONResponse({"result": "KoboldCpp", "version": KOBOLDCPP_VERSION, "server": "ghostwriter",
                         "ghostwriter": importlib.metadata.version("ghostwriter")})


async def generate(request: Request) -> Response:
    run = await _start(request)
    choices = await run.collect(request)
    asked = run.settings.logprobs is not None
    return JSONResponse({"results": [{"text": c.text, "finish_reason": c.finish_reason,
                                      "logprobs": logprobs.kobold(c.tokens) if asked else None} for c in choices],
                         "ghostwriter": extension(run.settings, choices)}, headers=headers(run.settings))


async def generate_stream(request: Request) -> Response:
    run = await _start(request)
    return StreamingResponse(_tokens(run), media_type="text/event-stream",
                             headers={**STREAM_HEADERS, **headers(run.settings)})


async def _tokens(run: Run) -> AsyncIterator[str]:
    try:
        async for item in run.events():
            if isinstance(item, Piece):
                found = {"token": item.text, "finish_reason": None}
                yield event({**found, "logprobs": logprobs.kobold(item.tokens)} if item.tokens else found, "message")
            else:
                yield _last(item, run)
    except Stopped:  # aborted, or the server is stopping
        yield _last(run.partial(0), run)
    except Exception as e:
        yield event(failure(e).body(), "error")


def _last(choice: Choice, run: Run) -> str:
    return event({"token": "", "finish_reason": choice.finish_reason,
                  "ghostwriter": extension(run.settings, [choice])}, "message")


async def _start(request: Request) -> Run:
    service: Service = request.app.state.service
    settings = read(await body_json(request), "kobold")
    return start(service, settings, client(request), f"kobold:{settings.genkey}" if settings.genkey else None)


async def abort(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    body = await body_json(request) if await request.body() else {}
    genkey = body.get("genkey") if isinstance(body, dict) else None
    if genkey is not None and not isinstance(genkey, str):
        raise Invalid(f"genkey must be a string, got {genkey!r}", "genkey")
    return JSONResponse({"success": bool(genkey) and service.jobs.stop(f"kobold:{genkey}")})


async def tokencount(request: Request) -> JSONResponse:
    """The default model's token count of `prompt` (a char model's: its characters), with the ids."""
    service: Service = request.app.state.service
    body = await body_json(request)
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object with a prompt")
    prompt = text(MAX_PROMPT_CHARS)("prompt", body.get("prompt", ""))
    try:
        ids = await service.jobs.run(lambda stop: service.models.get(service.default, service.options.quantize)
                                     .tokens(prompt))
    except (Busy, Stopped) as e:
        raise busy("the server is busy") from e
    return JSONResponse({"value": len(ids), "ids": ids})


ROUTES = [
    Route("/api/v1/model", model, methods=["GET"]),
    Route("/api/v1/info/version", api_version, methods=["GET"]),
    Route("/api/extra/version", extra_version, methods=["GET"]),
    Route("/api/v1/generate", generate, methods=["POST"]),
    Route("/api/extra/generate/stream", generate_stream, methods=["POST"]),
    Route("/api/extra/abort", abort, methods=["POST"]),
    Route("/api/extra/tokencount", tokencount, methods=["POST"]),
]
