"""What the editor is offered: the model's continuation of the text before the cursor.

The context is the last `context_chars` characters before the cursor, as far
back as the model usefully reads. The continuation ends at the end of the
sentence (the punctuation and any closing quote kept), at the end of the
line, or at the length limit, whichever the settings ask for and comes first.
It is cut in the worker, piece by piece, so that a stop event (a cancelled or
superseded request) ends it at once.
"""

import re
import threading
from dataclasses import asdict, replace

from ..generation import Generation, Params, TextModel
from .jobs import Stopped
from .settings import Settings

# a sentence ends at . ! ? or …, with any closing quotes or brackets, before white space
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")


def context(text_before_cursor: str, settings: Settings) -> str:
    return text_before_cursor[-settings.context_chars:] if settings.context_chars else ""


def params(settings: Settings, limit: int, stop_at: str) -> Params:
    """The generation parameters of one suggestion; no seed, so that each stream draws its own (kept in its result)."""
    return Params(max_new_chars=limit, temperature=settings.temperature, top_p=settings.top_p,
                  stop=() if stop_at == "length" else ("\n",))


def continue_text(model: TextModel, prompt: str, params: Params, stop_at: str, stop: threading.Event) -> Generation:
    """The continuation of `prompt`, cut where `stop_at` says, as the generation to record if the writer takes it.

    A stream cut at the end of a sentence is closed there; what it had written
    past the cut is not part of the continuation, which ended where the
    settings say, so the result is not a cancelled one. When `stop` is set the
    stream is closed and Stopped raised: nobody wants its text any more.
    """
    with model.stream(prompt, **asdict(params)) as stream:
        text = ""
        for piece in stream:
            if stop.is_set():
                raise Stopped
            text += piece
            end = SENTENCE_END.search(text) if stop_at == "sentence" else None
            if end:
                text = text[: end.end()]
                break
    assert stream.result is not None  # `with` closed it if the loop did not run it out
    return replace(stream.result, text=text, cancelled=False)
