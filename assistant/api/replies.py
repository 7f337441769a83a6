"""What both APIs' routes share in answering: reading the body, the client's name, the extension headers, SSE."""

import json
from typing import Any

from starlette.requests import Request

from .generations import Choice
from .settings import Invalid, Settings

MAX_CLIENT_CHARS = 200


async def body_json(request: Request) -> Any:
    """The request's JSON body; Invalid (400) when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Invalid(f"the request body is not JSON: {e}") from None
    except RecursionError:
        raise Invalid("the request body is not JSON this server reads: it is nested too deeply") from None


def client(request: Request) -> str | None:
    """The program asking, as its User-Agent names it, recorded with each sample."""
    agent = request.headers.get("user-agent", "").strip()
    return agent[:MAX_CLIENT_CHARS] or None


def headers(settings: Settings) -> dict[str, str]:
    """The fields not applied and the values clamped, named in headers (clients that read only the text still can)."""
    found = {}
    if settings.not_applied:
        found["X-Ghostwriter-Not-Applied"] = ", ".join(settings.not_applied)
    if settings.clamped:
        found["X-Ghostwriter-Clamped"] = ", ".join(settings.clamped)
    return found


def extension(settings: Settings, choices: list[Choice]) -> dict[str, Any]:
    """The top-level `ghostwriter` field: the first choice's sample and copied span, and what was not applied."""
    first = choices[0].extension() if choices else {}
    return {**first, "not_applied": list(settings.not_applied), "clamped": list(settings.clamped)}


def event(data: Any, name: str | None = None) -> str:
    """One server-sent event: `data: {json}` (after `event: NAME` if named) and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
