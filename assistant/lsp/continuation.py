"""What the editor is offered: the model's continuation of the text before the cursor.

The context is at most the last `context_chars` characters before the cursor,
as far back as the model usefully reads. Its start moves in steps of a quarter
of that, not with every character typed, so that consecutive requests share
their prefix and the document's session feeds only what was typed (a window
sliding by one character would change the first token and every one after it). The continuation ends at the end of the
sentence (the generation API's `stop_at`, shared with the CLI and the REPL),
at the end of the line, or at the length limit, whichever the settings ask for
and comes first. A stop event (a cancelled or superseded request) ends it at
once, piece by piece.
"""

import threading
from dataclasses import asdict

from ..generation import Generation, Params, Session, TextModel
from ..serving.jobs import Stopped
from .settings import Settings


def context(text_before_cursor: str, settings: Settings) -> str:
    """Between 3/4 of `context_chars` and all of it (the whole text when shorter), starting at a multiple of 1/4."""
    size = settings.context_chars
    if not size:
        return ""
    step = max(1, size // 4)
    start = -(-max(0, len(text_before_cursor) - size) // step) * step  # rounded up: never more than `size`
    return text_before_cursor[start:]


def params(settings: Settings, limit: int, stop_at: str) -> Params:
    """The generation parameters of one suggestion; no seed, so that each stream draws its own (kept in its result).

    Ghost text stays on its line, so a sentence ends at the end of the line too.
    """
    return Params(max_new_chars=limit, temperature=settings.temperature, top_p=settings.top_p,
                  stop=() if stop_at == "length" else ("\n",), stop_at="sentence" if stop_at == "sentence" else None,
                  author=settings.author, guidance=settings.guidance, prompt_guidance=settings.prompt_guidance,
                  **settings.chain())


def continue_text(model: TextModel, prompt: str, params: Params, stop: threading.Event,
                  session: Session | None = None) -> Generation:
    """The continuation of `prompt`, as the generation to record if the writer takes it.

    When `stop` is set the stream is closed and Stopped raised: nobody wants its text any more.
    The document's `session` lets it start from what the last request computed.
    """
    with model.stream(prompt, **asdict(params), session=session) as stream:
        for _ in stream:
            if stop.is_set():
                raise Stopped
    assert stream.result is not None
    return stream.result
