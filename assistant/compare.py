"""One prompt through several models, side by side (`assistant compare`, the REPL's /compare).

The models write at once, a piece each in turn, and the columns fill as they
come, so a writer reads both while they are written. Ctrl-C stops every side
(each is kept, marked cancelled) between two pieces, never in the middle of
drawing the columns, and is reported to the caller rather than raised: in the
REPL it ends the comparison, not the session.
"""

import os
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live

from corpora.index import Span

from .generation import Generation, TextModel
from .samples.recording import copied_span, record
from .samples.views import copy_warning, side_by_side
from .terminal import ctrl_c_noted

REFRESH_S = 0.1  # how often the columns are redrawn while the models write: often enough to read as streaming


@dataclass
class Side:
    """One model's column: its text so far, and once it has ended its result, stored sample id and copied span."""

    model: TextModel
    text: str = ""
    result: Generation | None = None
    sample_id: int | None = None
    span: Span | None = None

    def column(self, min_span: int) -> tuple[str, str, str | None]:
        head = self.model.card.label + (f"  #{self.sample_id}" if self.sample_id is not None else "")
        return head, self.text, copy_warning(self.span, self.text, min_span)


def compare(models: list[TextModel], prompt: str, console: Console, *, source: str, min_span: int, log: bool = True,
            **params: Any) -> tuple[list[Side], bool]:
    """Stream the prompt through every model with the same parameters and seed, in columns drawn on `console`.

    Returns the sides, each with its result (stored unless `log` is false) and
    the span it copies, and whether Ctrl-C stopped them. The final columns are
    printed once every side has ended, with a warning under each that copies
    its corpus.
    """
    if params.get("seed") is None:
        params["seed"] = int.from_bytes(os.urandom(4), "little")  # the same draw for every model, so they differ by model alone
    streams = [model.stream(prompt, **params) for model in models]  # parameters checked before anything is shown
    sides = [Side(model) for model in models]
    with ctrl_c_noted() as stopped, Live(console=console, transient=True, auto_refresh=False,
                                         vertical_overflow="ellipsis") as live:
        drawn = time.monotonic()
        try:
            running = list(zip(sides, streams, strict=True))
            while running and not stopped():
                for side, stream in list(running):
                    piece = next(stream, None)
                    if piece is None:
                        running.remove((side, stream))
                    else:
                        side.text += piece
                if time.monotonic() - drawn >= REFRESH_S:
                    live.update(side_by_side(prompt, [s.column(min_span) for s in sides]), refresh=True)
                    drawn = time.monotonic()
        finally:
            for stream in streams:  # what a side wrote before Ctrl-C is kept, marked cancelled
                stream.close()
    for side, stream in zip(sides, streams, strict=True):
        assert stream.result is not None
        side.result, side.text = stream.result, stream.result.text
        side.sample_id = record(side.result, source) if log else None
        side.span = copied_span(side.result, side.sample_id)
    console.print(side_by_side(prompt, [s.column(min_span) for s in sides]), highlight=False)
    return sides, stopped()
