"""Running the HTTP API: uvicorn on the chosen address, the lines to paste into a client, a clean stop.

Ctrl-C or SIGTERM stops it: no new connection is taken, every generation in
flight is stopped at its next token and recorded as cancelled (a streaming
client gets its last chunk and `[DONE]`), and the process exits with status
0 once the answers are out. uvicorn would raise the signal again after its
shutdown, to die of it; a server stopped cleanly has nothing left to die of.
"""

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

from corpora import UserError

from ..generation import cpu_threads
from .app import build
from .service import Options, Service

GRACEFUL_S = 10  # the longest a shutdown waits for answers still going out


class Server(uvicorn.Server):
    """uvicorn's server, which stops the generations when a signal asks it to stop, and says where it listens."""

    def __init__(self, service: Service, config: uvicorn.Config, on_ready: Callable[[int], None] = lambda port: None):
        super().__init__(config)
        self.service, self.on_ready = service, on_ready
        self.port: int | None = None  # once it listens: the port (the one drawn, for --port 0)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        starting = _Starting()
        logging.getLogger("uvicorn.error").addFilter(starting)
        try:
            await super().startup(sockets)
        except SystemExit:  # uvicorn's answer to an address it cannot listen on
            raise UserError(f"cannot listen on {self.config.host}:{self.config.port}: {starting.error or 'see above'}; "
                            "is another server using that port? Pick another with --port") from None
        finally:
            logging.getLogger("uvicorn.error").removeFilter(starting)
        self.port = self.servers[0].sockets[0].getsockname()[1]
        self.on_ready(self.port)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:  # on the loop's own thread: a signal handler may come between any two lines
            self._loop.call_soon_threadsafe(self.service.jobs.close)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.service.jobs.close()
        await super().shutdown(sockets)
        self._captured_signals.clear()  # stopped cleanly: uvicorn would raise the signal again


def config(service: Service, port: int | None = None) -> uvicorn.Config:
    """uvicorn's configuration for `service` (on `port`, when given, instead of the options')."""
    options = service.options
    return uvicorn.Config(build(service), host=options.host, port=options.port if port is None else port,
                          log_config=None, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACEFUL_S,
                          lifespan="on")


def serve(options: Options) -> None:
    """Load the model, listen, print how to connect, and serve until Ctrl-C or SIGTERM."""
    os.environ.setdefault("ASSISTANT_THREADS", str(cpu_threads(reserve=1)))  # a core for the event loop
    service = Service(options)
    print(f"loading {service.default} ...", file=sys.stderr, flush=True)
    service.load()
    server = Server(service, config(service), lambda port: print(banner(service, port), flush=True))
    log = logging.StreamHandler()
    log.setFormatter(logging.Formatter("ghostwriter serve: %(levelname)s %(message)s"))
    for name in ("uvicorn", "ghostwriter.api"):
        logging.getLogger(name).addHandler(log)
    server.run()
    print("stopped", file=sys.stderr, flush=True)


class _Starting(logging.Filter):
    """Holds back uvicorn's errors while it starts, keeping the last: the one line that says why it could not."""

    error: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self.error = record.getMessage()
            return False
        return True


def url(host: str, port: int) -> str:
    """The address a client on this machine uses: a wildcard bind is reached at 127.0.0.1."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def banner(service: Service, port: int) -> str:
    """What to paste into a client."""
    options = service.options
    base = url(options.host, port)
    key = "the one given with --api-key" if options.api_key else "none needed (clients that insist: any text)"
    return "\n".join([
        f"ghostwriter is serving {service.default} at {base} (Ctrl-C stops it)",
        f"  the writing pad: open {base}/ in a browser",
        f"  OpenAI-compatible clients: base URL {base}/v1   model {service.default}   API key: {key}",
        f"  KoboldAI / KoboldCpp clients (SillyTavern, Kobold Lite): API URL {base}",
        f"  models: {', '.join(service.names())}   (docs/serve.md: each writing tool's settings)",
    ])
