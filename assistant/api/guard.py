"""The checks every request passes before a route sees it: its Host, its key, the size of its body; and CORS.

What the local servers writers use learned the hard way:

- DNS rebinding (Ollama's CVE-2024-28224): a web page's script can reach a
  server on 127.0.0.1 through a domain name of its own that it re-points
  there, but the Host header still carries that name. A request whose Host
  is a name that is neither the bound one, a loopback one (`localhost`,
  `*.localhost`) nor one given with --allow-host is refused (403). An IP
  address as the Host is never a rebinding (there is no name to re-point).
- Open CORS (KoboldCpp's `*`): only loopback origins (a front end served
  from this machine) and those given with --cors-origin are granted, so a
  page on the web cannot read the answers, and never `*`.
- A key: with --api-key (or ASSISTANT_API_KEY) every route but /health and
  the pad's page and files (`/`, `/pad/static/`: the same for everyone, and
  they hold no writing) takes `Authorization: Bearer KEY`; a wrong or missing
  one is a 401. The page asks its writer for the key and sends it. A server
  bound beyond this machine must have one (see app.Options.check).
- A body larger than `max_body` is refused (400) before it is read whole.

Errors are OpenAI's shape (errors.py), so a client shows their message.
"""

import hmac
import ipaddress
from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

PUBLIC = {"/health", "/"}
PUBLIC_FOLDERS = ("/pad/static/",)
LOOPBACK_ORIGIN = r"https?://(localhost|[a-z0-9.-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?"


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `localhost:5001` -> `localhost`, `[::1]:5001` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_host(name: str, allowed: set[str]) -> bool:
    """Whether a request to `name` (from host_name) can be this server's own, not a rebinding."""
    try:
        ipaddress.ip_address(name)
        return True  # an address: nothing a page could re-point
    except ValueError:
        pass
    return name in allowed or name == "localhost" or name.endswith(".localhost")


def public(path: str) -> bool:
    """Whether a path is served without the key: the server's health, and the pad's page and its files."""
    return path in PUBLIC or path.startswith(PUBLIC_FOLDERS)


class Guard:
    """ASGI middleware: the Host check, then CORS, then the key and the body's size, then the app."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str], cors_origins: Iterable[str], api_key: str | None,
                 max_body: int):
        self.hosts = {host_name(h) for h in hosts}
        self.api_key, self.max_body = api_key, max_body
        self.app = app
        self.inner = CORSMiddleware(self._checked, allow_origins=list(cors_origins), allow_origin_regex=LOOPBACK_ORIGIN,
                                    allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"],
                                    expose_headers=["X-Ghostwriter-Not-Applied", "X-Ghostwriter-Clamped"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is not None and not allowed_host(host_name(host), self.hosts):
            await _refuse(ApiError(403, f"requests to host {host!r} are refused: use http://127.0.0.1 or localhost "
                                        "(or start the server with --allow-host NAME)", code="host_not_allowed"),
                          scope, receive, send)
            return
        await self.inner(scope, receive, send)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api_key is not None and not public(scope["path"]) and scope["method"] != "OPTIONS":
            given = _header(scope, b"authorization") or ""
            scheme, _, key = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
                error = ApiError(401, "a valid API key is needed: send the header Authorization: Bearer KEY",
                                 "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                await _refuse(error, scope, receive, send)
                return
        body = await self._body(scope, receive)
        if body is None:
            await _refuse(ApiError(400, f"the request body is larger than {self.max_body:,} bytes",
                                   code="body_too_large"), scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than allowed (read no further than that)."""
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then what the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    await error.response()(scope, receive, send)
