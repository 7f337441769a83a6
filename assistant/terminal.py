"""What the terminal front ends (`assistant generate`, the REPL) share: a stream written out as it comes."""

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.table import Table
from rich.text import Text

from contract.loop import Token

from .generation import Generation, Stream


def probability_style(p: float) -> str:
    """A token's colour by its probability: green where the model was sure, yellow, red where it was a long shot."""
    return "green" if p >= 0.5 else "yellow" if p >= 0.1 else "red"


def probability_table(tokens: tuple[Token, ...]) -> Table:
    """Each token with its probability and the likeliest alternatives there (`/probs`, `generate --probs`): the
    numbers `/branch K ALT` takes."""
    table = Table("#", "token", "p", "alternatives", box=None)
    for k, token in enumerate(tokens):
        p = token.probability or 0.0
        alternatives = Text()
        for j, (text, q) in enumerate(token.alternatives):
            alternatives.append(f"{j}:{text!r} {q:.2f}  ", style=probability_style(q))
        table.add_row(str(k), Text(repr(token.text), style=probability_style(p)), f"{p:.2f}", alternatives)
    return table


def stream_to_stdout(stream: Stream, echo: Callable[[], None] | None = None) -> tuple[Generation, bool]:
    """Write each piece at once; Ctrl-C ends the stream (its result then says cancelled) instead of the program.

    Returns the result and whether Ctrl-C stopped it. `echo` writes what goes
    before the text (the prompt); it is called once the first piece is ready,
    so a warning the model gives as it reads the prompt (characters it has
    never seen) is on its own line before the text, not glued into it. The
    line is ended before anything else is said (a store warning, the corpus
    index's one line), so no message lands in the middle of the text either.
    """
    stopped = False
    try:
        with stream:
            for piece in stream:
                if echo is not None:
                    echo()
                    echo = None
                sys.stdout.write(piece)
                sys.stdout.flush()
    except KeyboardInterrupt:
        stopped = True
    if echo is not None:  # nothing written: the prompt still belongs above the (empty) continuation
        echo()
    sys.stdout.write("\n")
    sys.stdout.flush()
    assert stream.result is not None
    return stream.result, stopped


@contextmanager
def ctrl_c_noted() -> Iterator[Callable[[], bool]]:
    """Within it, Ctrl-C is noted instead of raised, and the function it gives says whether it came.

    For output drawn in large writes (the side-by-side columns redrawn as they
    fill): a KeyboardInterrupt in the middle of one would leave half a frame,
    or half a character, on the terminal. The caller looks between pieces.
    Where Ctrl-C is ignored (a background job) it stays ignored.
    """
    came: list[bool] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda *_: came.append(True))
    try:
        yield lambda: bool(came)
    finally:
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
