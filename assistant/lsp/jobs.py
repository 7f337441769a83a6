"""Generation off the event loop: one worker thread, the newest request per document wins.

The server's event loop only reads and answers messages, so a slow
generation never holds up a `$/cancelRequest`, a document change or another
document's request. Generations run one at a time on a single worker thread
(a CPU model gains nothing from running two at once); each gets a stop event
that its loop checks between pieces. A request cancelled by the client, or
superseded by a newer request for the same document, sets it: the worker stops
at the next piece and is free for the request that is still wanted. Closing
(shutdown, exit, or the client going away) sets every job's, the warm-up's
too, so the worker thread, which the interpreter waits for at exit, is
always free and the process always exits.
"""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):  # not an error: a generation whose answer nobody wants any more
    """A generation stopped: its request was cancelled, or a newer one for its document came in."""


class Jobs:
    def __init__(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostwriter-generation")
        self._latest: dict[str, threading.Event] = {}
        self._running: set[threading.Event] = set()  # every job not yet answered, with or without a document

    async def run(self, fn: Callable[[threading.Event], T], document: str | None = None) -> T:
        """`fn(stop)` on the worker; a later `run` for the same document stops this one (it raises Stopped).

        Cancelling the awaiting task (what pygls does on `$/cancelRequest`)
        sets `stop` too, so the worker drops the generation at its next piece.
        """
        stop = threading.Event()
        if document is not None:
            older = self._latest.get(document)
            if older is not None:
                older.set()
            self._latest[document] = stop
        self._running.add(stop)
        try:
            return await asyncio.wrap_future(self._worker.submit(_unless_stopped, fn, stop))
        finally:
            stop.set()
            self._running.discard(stop)
            if document is not None and self._latest.get(document) is stop:
                del self._latest[document]

    def close(self) -> None:
        """Stop every generation and let the worker go."""
        for stop in (*self._running, *self._latest.values()):
            stop.set()
        self._worker.shutdown(wait=False, cancel_futures=True)


def _unless_stopped(fn: Callable[[threading.Event], T], stop: threading.Event) -> T:
    if stop.is_set():  # superseded or cancelled while it waited for the worker
        raise Stopped
    return fn(stop)
