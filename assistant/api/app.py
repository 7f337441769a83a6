"""The HTTP application: both APIs' routes and /health behind the guard, every error in OpenAI's shape.

`/health` and `/v1/models` never wait on the worker, so a slow generation
(or sixteen) never holds them up. A client's mistake is answered by the
routes' ApiError or Invalid; anything else is a 500 whose traceback goes to
the server's log. At shutdown every generation is stopped (and recorded as
cancelled), so the server stops at once.
"""

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corpora import UserError

from . import completions, kobold, pad
from .errors import ApiError, failure
from .guard import Guard
from .service import Service
from .settings import Invalid


async def health(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    running, waiting = service.jobs.load()
    return JSONResponse({"status": "ok", "model": service.default, "generating": running, "waiting": waiting})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    return ApiError(exc.status_code, message, code=code, headers=exc.headers).response()


async def _error(request: Request, exc: Exception) -> Response:
    return failure(exc).response()


ERRORS = {HTTPException: _http_error, ApiError: _error, Invalid: _error, UserError: _error, Exception: _error}


def build(service: Service) -> Starlette:
    """The application for `service`; uvicorn (or a test's) serves it."""
    options = service.options

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.jobs.close()

    app = Starlette(
        routes=[Route("/health", health, methods=["GET"]), *completions.ROUTES, *kobold.ROUTES, *pad.ROUTES],
        middleware=[Middleware(Guard, hosts=[options.host, *options.allow_hosts], cors_origins=options.cors_origins,
                               api_key=options.api_key, max_body=options.max_body)],
        exception_handlers=ERRORS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.service = service
    return app
