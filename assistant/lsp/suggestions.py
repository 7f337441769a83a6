"""The suggestions offered lately, and what the writer did with them, recorded in the sample store.

A suggestion is not a sample until the writer takes it: its generation is
kept here, unrecorded, under an id the plugins send back, and its events
(`shown`, `accepted`, `partial`) become rows of `editor_events`. An accepted
or partially accepted suggestion is recorded as a sample too (source
`editor`, memorization-checked like every sample), holding the text the
writer actually took.
"""

import itertools
from collections import OrderedDict
from dataclasses import dataclass, replace

from corpora import UserError

from ..generation import Generation
from ..samples import recording
from ..samples.store import Store, now

EVENTS = ("shown", "accepted", "partial")
KEEP = 512  # suggestions remembered for their events; older ones are forgotten


@dataclass(frozen=True)
class Suggestion:
    id: str
    document: str | None
    result: Generation  # its text is the suggestion, as offered

    @property
    def text(self) -> str:
        return self.result.text


class Suggestions:
    def __init__(self) -> None:
        self._recent: OrderedDict[str, Suggestion] = OrderedDict()
        self._ids = itertools.count(1)

    def add(self, document: str | None, result: Generation) -> Suggestion:
        suggestion = Suggestion(f"s{next(self._ids)}", document, result)
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
    it is required and must be how the suggestion begins. The sample holds
    only the accepted text, and is not cancelled: the writer took all of it.
    """
    if event not in EVENTS:
        raise UserError(f"unknown event {event!r}: one of {', '.join(EVENTS)}")
    if event == "accepted" and accepted is None:
        accepted = suggestion.text
    if event == "partial" and not (isinstance(accepted, str) and accepted and suggestion.text.startswith(accepted)):
        raise UserError("a partial acceptance needs the accepted text, the start of the suggestion")
    sample_id = None
    if event != "shown" and accepted:
        sample_id = recording.record(replace(suggestion.result, text=accepted, cancelled=False), "editor")
    with Store() as store:
        store.add_editor_event({
            "created": now(), "event": event, "suggestion": suggestion.id, "document": suggestion.document,
            "model": suggestion.result.model.name, "text": suggestion.text,
            "accepted": accepted if event != "shown" else None, "sample_id": sample_id,
        })
    return sample_id
