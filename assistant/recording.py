"""Every generation lands in the sample store, once, from the generation API itself.

`TextModel.stream` wraps its pieces in `recorded`, so the CLI, the REPL and
any Python caller are all recorded the same way. The row is written when the
stream ends: normally, by a stop string or the length, or cut short (closed,
Ctrl-C, an error), which marks it cancelled and keeps the partial text. A
store or corpus problem becomes a warning: it never costs the writer the
text they have just been shown.
"""

import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpora import UserError

from .memorization import CorpusIndex, Span, model_index
from .store import Sample, Store, now

if TYPE_CHECKING:
    from .generation import Params, TextModel


# the copied-span columns of a sample whose model has no corpus to check against
UNCHECKED: dict[str, Any] = dict.fromkeys(("copied_chars", "copied_document", "copied_offset", "copied_sample_offset"))


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
        row = sample_row(model, prompt, params, model.last_seed, source, "".join(parts), created,
                         time.perf_counter() - start, cancelled=not finished)
        try:
            model.last_sample_id = store_sample(row, model.config)
        except Exception as e:  # whatever goes wrong here, the writer keeps the text already shown
            model.last_sample_id = None
            warnings.warn(f"the sample was not stored: {type(e).__name__}: {e}", StoreWarning, stacklevel=2)


def sample_row(model: "TextModel", prompt: str, params: "Params", seed: int | None, source: str, text: str,
               created: str, duration_s: float, cancelled: bool = False) -> dict[str, Any]:
    """The columns of `samples` for one generation (the copied span aside: `store_sample` adds it)."""
    return {
        "created": created, "model": model.name, "model_path": str(model.path), "model_kind": model.kind,
        "corpus": (model.config.get("corpus") or {}).get("name"),
        "mode": "prompted" if prompt else "unconditional", "source": source, "prompt": prompt,
        "text": text, "params": {**asdict(params), "seed": seed}, "chars": len(text),
        "duration_s": round(duration_s, 3), "cancelled": cancelled,
    }


def store_sample(row: dict[str, Any], config: dict) -> int:
    """Check the text against the model's corpus, store it, and return its id."""
    index = model_index(config)
    row = {**row, **(UNCHECKED if index is None else span_columns(index.longest_span(row["text"])))}
    with Store() as store:
        return store.add(row)


def span_columns(span: Span | None) -> dict[str, Any]:
    """The `copied_*` columns of a checked sample (0 characters when none of it is in the corpus)."""
    if span is None:
        return {**UNCHECKED, "copied_chars": 0}
    return {"copied_chars": span.length, "copied_document": span.document, "copied_offset": span.offset,
            "copied_sample_offset": span.sample_offset}


def check_stored(store: Store, sample: Sample) -> tuple[Span | None, CorpusIndex]:
    """The memorization check of a stored sample, run again (the corpus may be back) and saved with it."""
    if sample.corpus is None:
        raise UserError(f"sample {sample.id}: its model {sample.model} was trained on no corpus, so there is nothing to check")
    config_file = Path(sample.model_path or "") / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        raise UserError(f"sample {sample.id}: cannot read its model's {config_file}, so not its corpus either") from None
    index = model_index(config)
    if index is None:
        raise UserError(f"sample {sample.id}: its corpus {sample.corpus} cannot be checked (see the warning)")
    span = index.longest_span(sample.text)
    store.set_copied(sample.id, span_columns(span))
    return span, index
