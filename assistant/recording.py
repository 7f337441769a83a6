"""Every generation lands in the sample store, once, from the generation API itself.

`TextModel.stream` wraps its pieces in `recorded`, so the CLI, the REPL and
any Python caller are all recorded the same way. The row is written when the
stream ends: normally, by a stop string or the length, or cut short (closed,
Ctrl-C, an error), which marks it cancelled and keeps the partial text. A
store or corpus problem becomes a warning: it never costs the writer the
text they have just been shown.
"""

import sqlite3
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .memorization import model_index
from .store import Store, now

if TYPE_CHECKING:
    from .generation import Params, TextModel


class StoreWarning(UserWarning):
    """A sample could not be stored; the text was still shown."""


def recorded(model: "TextModel", prompt: str, params: "Params", source: str, pieces: Iterator[str]) -> Iterator[str]:
    """Pass `pieces` through, then store the sample and set `model.last_sample_id`."""
    created, start = now(), time.perf_counter()
    parts: list[str] = []
    finished = False
    try:
        for piece in pieces:
            parts.append(piece)
            yield piece
        finished = True
    finally:
        row = {
            "created": created, "model": model.name, "model_path": str(model.path), "model_kind": model.kind,
            "corpus": (model.config.get("corpus") or {}).get("name"),
            "mode": "prompted" if prompt else "unconditional", "source": source, "prompt": prompt,
            "text": "".join(parts), "params": {**asdict(params), "seed": model.last_seed},
            "chars": sum(map(len, parts)), "duration_s": round(time.perf_counter() - start, 3),
            "cancelled": not finished,
        }
        model.last_sample_id = store_sample(row, model.config)


def store_sample(row: dict[str, Any], config: dict) -> int | None:
    """Check the text against the model's corpus and store it; the new id, or None with a warning."""
    row = {**row, **copied_columns(row["text"], config)}
    try:
        with Store() as store:
            return store.add(row)
    except (sqlite3.Error, OSError) as e:
        warnings.warn(f"the sample was not stored: {e}", StoreWarning, stacklevel=2)
        return None


def copied_columns(text: str, config: dict) -> dict[str, Any]:
    """The `copied_*` columns for a text written by a model with this config (all None when there is no corpus)."""
    index = model_index(config)
    if index is None:
        return {"copied_chars": None, "copied_document": None, "copied_offset": None, "copied_sample_offset": None}
    span = index.longest_span(text)
    if span is None:
        return {"copied_chars": 0, "copied_document": None, "copied_offset": None, "copied_sample_offset": None}
    return {"copied_chars": span.length, "copied_document": span.document, "copied_offset": span.offset,
            "copied_sample_offset": span.sample_offset}
