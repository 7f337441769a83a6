"""What the terminal front ends (`assistant generate`, the REPL) share: a stream written out as it comes."""

import sys

from .generation import Generation, Stream


def stream_to_stdout(stream: Stream) -> tuple[Generation, bool]:
    """Write each piece at once; Ctrl-C ends the stream (its result then says cancelled) instead of the program.

    Returns the result and whether Ctrl-C stopped it. The line is ended
    before anything else is said (a store warning, the corpus index's one
    line), so no message lands in the middle of the text.
    """
    stopped = False
    try:
        with stream:
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
    except KeyboardInterrupt:
        stopped = True
    sys.stdout.write("\n")
    sys.stdout.flush()
    assert stream.result is not None
    return stream.result, stopped
