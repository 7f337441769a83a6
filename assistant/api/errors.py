"""Errors as OpenAI answers them, `{"error": {"message", "type", "param", "code"}}`, for both APIs' routes.

Clients of either API show the message to the writer. A client's mistake is
a 4xx naming what was wrong, never a 500 or a traceback; a failure of the
server's own (a model that cannot be loaded) is a 500 with its one line.
"""

import logging
from typing import Any

from starlette.responses import JSONResponse

from corpora import UserError

from .settings import Invalid

log = logging.getLogger("ghostwriter.api")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)


RETRY_AFTER_S = 2


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def busy(why: str) -> ApiError:
    """A request refused for now (the queue is full, the server is stopping): 503, and when to try again."""
    return ApiError(503, f"{why}: try again in a moment", "server_error", code="busy",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def failure(e: Exception) -> ApiError:
    """Any exception as the error a client is told: its own if it is one, a UserError's line (a model that cannot be
    loaded: the server's problem, a 500), or for anything else its type and first line (the traceback goes to the
    server's log, not to the client)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, Invalid):
        return invalid(str(e), e.param)
    if isinstance(e, UserError):
        return ApiError(500, str(e), "server_error")
    log.error("a request failed", exc_info=e)
    first = (str(e).strip().splitlines() or [""])[0][:200]
    return ApiError(500, f"the server failed: {type(e).__name__}: {first}", "server_error")
