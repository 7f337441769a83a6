"""What the editor is offered: the model's continuation of the text before the cursor.

The context is the last `context_chars` characters before the cursor, as far
back as the model usefully reads. The continuation ends at the end of the
sentence (the punctuation and any closing quote kept), at the end of the
line, or at the length limit, whichever the settings ask for and comes first.
It is cut in the worker, piece by piece, so that a stop event (a cancelled or
superseded request) ends it at once.
"""

import re
import secrets
import threading
from contextlib import closing
from dataclasses import asdict

from ..generation import Params, TextModel
from .jobs import Stopped
from .settings import Settings

# a sentence ends at . ! ? or …, with any closing quotes or brackets, before white space
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")


def context(text_before_cursor: str, settings: Settings) -> str:
    return text_before_cursor[-settings.context_chars:] if settings.context_chars else ""


def params(settings: Settings, limit: int, stop_at: str) -> Params:
    """The generation parameters of one suggestion, with a fresh seed (kept, so a stored one can be written again)."""
    return Params(max_new_chars=limit, temperature=settings.temperature, top_p=settings.top_p, seed=secrets.randbits(32),
                  stop=() if stop_at == "length" else ("\n",))


def continue_text(model: TextModel, prompt: str, params: Params, stop_at: str, stop: threading.Event,
                  source: str | None = None) -> str:
    """The continuation of `prompt`, cut where `stop_at` says; stored only with a `source`.

    A suggestion is not stored when it is made but when it is accepted (see
    suggestions.py); an unconditional sample the writer asks for is.
    """
    pieces = model.stream(prompt, **asdict(params), log=source is not None, source=source or "")
    text = ""
    with closing(pieces):
        for piece in pieces:
            if stop.is_set():
                raise Stopped
            text += piece
            end = SENTENCE_END.search(text) if stop_at == "sentence" else None
            if end:
                return text[: end.end()]
    return text
