"""Generation off the event loop: one worker thread that every generation shares, taking turns.

A server's event loop only reads and answers requests, so a slow generation
never holds up a `$/cancelRequest`, a document change, `/health` or another
client. Generations run on a single worker thread (a CPU model gains
nothing from running two at once). A job is an iterator: the worker
advances one job by one step (one piece of text, for a streamed
generation), then the next, so up to `slots` generations take turns token
by token, and each client sees its first piece after the prompts of those
ahead of it rather than after their whole generations. Further jobs wait in
a queue of at most `queue`; beyond it `submit` refuses at once (Busy), for
a server to answer "try again later".

Each job has a stop event that the worker checks before each step. A
request cancelled by its client (the LSP's `$/cancelRequest`, an HTTP
client that hangs up, KoboldAI's abort), or superseded by a newer request
under the same key (a document, a genkey), sets it: the worker closes the
job's iterator at its next turn (a generation so closed is cancelled) and is
free for what is still wanted. Closing (shutdown, exit, SIGTERM, the client
going away) sets every job's, the warm-up's too, so the worker, which the
interpreter waits for at exit, is always free and the process always exits.
"""

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
ITEM, END, ERROR = "item", "end", "error"
HAND_OFF_S = 0.005  # the jobs' pieces are handed to the event loop at least this often (see Jobs._hand_off)
IDLE_CHECK_S = 0.5  # how often an idle worker looks whether the program is leaving


class Stopped(Exception):  # not an error: a generation whose answer nobody wants any more
    """A generation stopped: its request was cancelled, its client left, or a newer one under its key came in."""


class Busy(Exception):
    """Every slot is taken and the queue is full: the request is refused before it starts."""


class Job(Generic[T]):
    """One submitted job: its steps run on the worker, its events come back to the event loop that submitted it."""

    def __init__(self, make: Callable[[threading.Event], Iterator[T]], key: str | None,
                 release: Callable[["Job"], None]):
        self.stop = threading.Event()
        self.key = key
        self._make, self._release = make, release
        self._steps: Iterator[T] | None = None
        self.loop = asyncio.get_running_loop()  # the event loop that reads it
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._held: list[tuple[str, Any]] = []  # events the worker has not handed to the event loop yet
        self._handed = False  # whether any has been
        self.urgent = False  # whether one held must go at once

    async def items(self) -> AsyncIterator[T]:
        """What each step yields, as it comes; raises what the job raised (Stopped, when it was stopped).

        However the consumer leaves (done, an error, cancelled because its
        client went away), the job is stopped: nobody reads it any more.
        """
        try:
            while True:
                kind, value = await self._events.get()
                if kind == ITEM:
                    yield value
                elif kind == END:
                    return
                else:
                    raise value
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop it (at its next turn, on the worker) and let go of its key; on the event loop."""
        self.stop.set()
        self._release(self)

    # ---- on the worker --------------------------------------------------------
    def step(self) -> bool:
        """One step; whether the job goes on."""
        if self.stop.is_set():
            self._close()
            self._deliver(ERROR, Stopped())
            return False
        try:
            if self._steps is None:
                self._steps = self._make(self.stop)
            item = next(self._steps)
        except StopIteration:
            self._deliver(END, None)
            return False
        except Exception as e:  # the job's own failure: the consumer reports it
            self._deliver(ERROR, e)
            return False
        self._deliver(ITEM, item)
        return True

    def _close(self) -> None:
        close = getattr(self._steps, "close", None)
        if close is not None:
            try:
                close()
            except Exception as e:  # a generation that failed as it was closed: nobody to tell but the log
                self._deliver(ERROR, e)

    def _deliver(self, kind: str, value: Any) -> None:
        """Hold an event for the event loop (see Jobs._hand_off); the first item and the end are urgent."""
        self._held.append((kind, value))
        self.urgent = self.urgent or kind != ITEM or not self._handed

    @property
    def holds(self) -> bool:
        return bool(self._held)

    def take(self) -> list[tuple[str, Any]]:
        """The events held, now handed off."""
        held, self._held = self._held, []
        self._handed, self.urgent = True, False
        return held

    def receive(self, held: list[tuple[str, Any]]) -> None:
        """On the event loop: the events handed off."""
        for found in held:
            self._events.put_nowait(found)


class Jobs:
    """The worker thread and its jobs: up to `slots` taking turns, up to `queue` more waiting (None: no bound)."""

    def __init__(self, slots: int = 1, queue: int | None = None) -> None:
        self.slots, self.queue = slots, queue
        self._turns: deque[Job] = deque()  # the jobs taking turns, the next one first
        self._stepping: Job | None = None  # the one taking its turn now
        self._waiting: deque[Job] = deque()
        self._keys: dict[str, Job] = {}  # the newest job of each key (event loop only)
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._holding: list[Job] = []  # the worker's: jobs with events to hand to their event loops
        self._handed_at = 0.0

    def submit(self, make: Callable[[threading.Event], Iterator[T]], key: str | None = None) -> Job[T]:
        """Queue `make(stop)`'s steps; an older job under `key` is stopped. Busy when full, Stopped once closed.

        On the event loop; read the job with `items()`, which stops it when
        its reader leaves.
        """
        with self._lock:
            if self._closed:
                raise Stopped
            if self.queue is not None and sum(self._load()) >= self.slots + self.queue:
                raise Busy(f"{self.slots} generations are running and {self.queue} are waiting")
            job: Job[T] = Job(make, key, self._release)
            self._waiting.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="ghostwriter-generation")
                self._worker.start()
            self._lock.notify()
        if key is not None:
            older = self._keys.get(key)
            if older is not None:
                older.stop.set()
            self._keys[key] = job
        return job

    async def run(self, fn: Callable[[threading.Event], T], key: str | None = None) -> T:
        """`fn(stop)` on the worker as one step; a later job under the same key stops this one (it raises Stopped).

        Cancelling the awaiting task (what pygls does on `$/cancelRequest`)
        sets `stop` too, so the worker drops the generation at its next piece.
        """
        items = self.submit(lambda stop: _once(fn, stop), key).items()
        try:
            return await anext(items)
        finally:
            await items.aclose()

    def stop(self, key: str) -> bool:
        """Stop the job under `key` (KoboldAI's abort); whether there was one."""
        job = self._keys.get(key)
        if job is not None:
            job.stop.set()
        return job is not None

    def load(self) -> tuple[int, int]:
        """How many jobs take turns now, and how many wait."""
        with self._lock:
            return self._load()

    def _load(self) -> tuple[int, int]:
        return len(self._turns) + (self._stepping is not None), len(self._waiting)

    def close(self) -> None:
        """Stop every job and let the worker go once it has closed them."""
        with self._lock:
            self._closed = True
            for job in (*self._turns, *self._waiting, *([self._stepping] if self._stepping else [])):
                job.stop.set()
            self._lock.notify()

    def _release(self, job: Job) -> None:
        if job.key is not None and self._keys.get(job.key) is job:
            del self._keys[job.key]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._turns and not self._waiting:
                    if self._closed or not threading.main_thread().is_alive():  # the program is leaving
                        self._worker = None
                        return
                    self._lock.wait(IDLE_CHECK_S)
                while len(self._turns) < self.slots and self._waiting:
                    self._turns.append(self._waiting.popleft())
                job = self._stepping = self._turns.popleft()
            goes_on = job.step()
            if job not in self._holding:
                self._holding.append(job)
            if job.urgent or time.monotonic() - self._handed_at >= HAND_OFF_S:
                self._hand_off()
            with self._lock:
                self._stepping = None
                if goes_on:
                    self._turns.append(job)

    def _hand_off(self) -> None:
        """Give each event loop what the jobs hold for it, in one wake-up.

        Waking the event loop's thread for every token made the two threads
        take the interpreter's lock from each other at every token (a char
        model's 64 tokens took 106 ms through HTTP instead of 84; 16 clients
        at once wrote at half the speed of one). Events are handed over at most
        every HAND_OFF_S, all jobs' together, except a job's first piece and
        its end, which go at once: a client sees its first piece as soon as it
        is written.
        """
        batches: dict[asyncio.AbstractEventLoop, list[tuple[Job, list[tuple[str, Any]]]]] = {}
        for job in self._holding:
            if job.holds:
                batches.setdefault(job.loop, []).append((job, job.take()))
        self._holding.clear()
        self._handed_at = time.monotonic()
        for loop, batch in batches.items():
            with contextlib.suppress(RuntimeError):  # the event loop has closed: nobody is waiting for it
                loop.call_soon_threadsafe(_receive, batch)


def _once(fn: Callable[[threading.Event], T], stop: threading.Event) -> Iterator[T]:
    yield fn(stop)


def _receive(batch: list[tuple[Job, list[tuple[str, Any]]]]) -> None:
    for job, held in batch:
        job.receive(held)
