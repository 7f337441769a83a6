"""The suggestions offered lately, and what the writer did with them, recorded in the sample store.

A suggestion is not a sample until the writer takes it: it is generated
without being stored, kept here under an id the plugins send back, and its
events (`shown`, `accepted`, `partial`) become rows of `editor_events`. An
accepted or partially accepted suggestion is stored as a sample too (source
`editor`, memorization-checked like every sample), holding the text the
writer actually took.
"""

import itertools
from collections import OrderedDict
from dataclasses import dataclass

from corpora import UserError

from ..generation import Params, TextModel
from ..recording import sample_row, store_sample
from ..store import Store, now

EVENTS = ("shown", "accepted", "partial")
KEEP = 512  # suggestions remembered for their events; older ones are forgotten


@dataclass(frozen=True)
class Suggestion:
    id: str
    document: str | None
    model: TextModel
    prompt: str
    text: str
    params: Params
    seed: int
    created: str
    duration_s: float


class Suggestions:
    def __init__(self) -> None:
        self._recent: OrderedDict[str, Suggestion] = OrderedDict()
        self._ids = itertools.count(1)

    def add(self, document: str | None, model: TextModel, prompt: str, text: str, params: Params, seed: int,
            duration_s: float) -> Suggestion:
        suggestion = Suggestion(f"s{next(self._ids)}", document, model, prompt, text, params, seed, now(), duration_s)
        self._recent[suggestion.id] = suggestion
        while len(self._recent) > KEEP:
            self._recent.popitem(last=False)
        return suggestion

    def get(self, suggestion_id: object) -> Suggestion:
        found = self._recent.get(suggestion_id) if isinstance(suggestion_id, str) else None
        if found is None:
            raise UserError(f"no suggestion {suggestion_id!r}: it was never offered, or is too old to record")
        return found


def record(suggestion: Suggestion, event: str, accepted: str | None) -> int | None:
    """Store the event (and, for accepted text, the sample); the sample's id, if one was stored.

    `accepted` defaults to the whole suggestion for `accepted`; for `partial`
    it is required and must be how the suggestion begins.
    """
    if event not in EVENTS:
        raise UserError(f"unknown event {event!r}: one of {', '.join(EVENTS)}")
    if event == "accepted" and accepted is None:
        accepted = suggestion.text
    if event == "partial" and not (isinstance(accepted, str) and accepted and suggestion.text.startswith(accepted)):
        raise UserError("a partial acceptance needs the accepted text, the start of the suggestion")
    sample_id = None
    if event != "shown" and accepted:
        row = sample_row(suggestion.model, suggestion.prompt, suggestion.params, suggestion.seed, "editor", accepted,
                         suggestion.created, suggestion.duration_s)
        sample_id = store_sample(row, suggestion.model.config)
    with Store() as store:
        store.add_editor_event({
            "created": now(), "event": event, "suggestion": suggestion.id, "document": suggestion.document,
            "model": suggestion.model.name, "text": suggestion.text,
            "accepted": accepted if event != "shown" else None, "sample_id": sample_id,
        })
    return sample_id
