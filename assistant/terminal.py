"""What the terminal front ends (`assistant generate`, the REPL) share: a stream written out as it comes."""

import sys
from collections.abc import Callable

from .generation import Generation, Stream


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
