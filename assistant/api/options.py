"""The server's options, checked before anything listens (torch-free: the command line reads their defaults).

A server bound beyond this machine without an API key is refused in one
line, as is a CORS origin of `*`.
"""

from dataclasses import dataclass
from pathlib import Path

from corpora import UserError

from ..serving import DEFAULT_MEMORY

DEFAULT_PORT = 5001  # KoboldCpp's: the port story front ends try first
SLOTS = 4  # generations taking turns at once (each keeps a session: a GPT-2 small's cache is 75 MB)
QUEUE = 32  # requests waiting beyond those; more are answered 503
MAX_BODY = 2 * 2**20  # bytes
LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    import ipaddress  # here: the command line imports this module for its defaults, and --help stays fast

    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Options:
    model: str | None = None  # None: the newest trained model
    device: str = "auto"
    quantize: str = "auto"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    slots: int = SLOTS
    queue: int = QUEUE
    max_memory: int = DEFAULT_MEMORY
    min_span: int = 50  # a sample copying this many characters of its corpus is reported as copied
    max_body: int = MAX_BODY
    documents: str | None = None  # the pad's folder of documents (None: documents/ in the data directory)

    def check(self) -> None:
        if not is_loopback(self.host) and not self.api_key:
            raise UserError(f"--host {self.host} lets other machines reach the server: give it an --api-key (or set "
                            "ASSISTANT_API_KEY), or keep the default --host 127.0.0.1")
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("--api-key is empty: give a key, or leave it out")
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be between 0 and 65535, got {self.port}")
        for name, value, low in (("--parallel", self.slots, 1), ("--queue", self.queue, 0), ("--min-span", self.min_span, 1)):
            if value < low:
                raise UserError(f"{name} must be at least {low}, got {value}")
        if self.max_memory <= 0:
            raise UserError(f"--max-memory must be more than 0, got {self.max_memory}")
        if self.documents is not None and not Path(self.documents).expanduser().is_dir():
            raise UserError(f"--documents {self.documents} is not a folder: give the folder of your Markdown or text files")
        if any(origin == "*" for origin in self.cors_origins):
            raise UserError("--cors-origin '*' would let every web page read the answers: name the origins")


