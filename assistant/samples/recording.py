"""Storing what a generation did: the front ends call `record` with a stream's result.

The CLI, the REPL and the editor server each record the generations they
asked for, when the stream has ended (normally, by a stop string or the
length, or cut short: closed, Ctrl-C, an error, which marks it cancelled and
keeps the partial text). Before a sample is stored its text is checked
against the model's training corpus for copied passages (memorization.py).
`record` turns any store or corpus problem into a warning: it never costs the
writer the text they have just been shown.
"""

import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from contract import modeldir
from contract.modeldir import Card
from corpora import UserError
from corpora.index import CorpusIndex, Span

from .store import Sample, Store

if TYPE_CHECKING:
    from ..generation import Generation, TextModel


# the copied-span columns of a sample whose model has no corpus to check against
UNCHECKED: dict[str, Any] = dict.fromkeys(("copied_chars", "copied_document", "copied_offset", "copied_sample_offset"))


class StoreWarning(UserWarning):
    """A sample could not be stored; the text was still shown."""


def record(result: "Generation", source: str, branch: dict[str, Any] | None = None) -> int | None:
    """Store a generation with its corpus check; its id, or None (and a warning) when it could not be stored.

    `branch` says which sample it branched from (`/branch`: its `parent` id, the `token` and the `alternative`
    chosen there); it is kept with the settings, in the params.
    """
    try:
        row = sample_row(result, source)
        if branch is not None:
            row["params"]["branch"] = branch
        return store_sample(row, result.model.card)
    except Exception as e:  # whatever goes wrong here, the writer keeps the text already shown
        warnings.warn(f"the sample was not stored: {type(e).__name__}: {e}", StoreWarning, stacklevel=2)
        return None


def written(model: "TextModel", prompt: str, source: str, log: bool = True, **params: Any) -> tuple["Generation", int | None]:
    """One whole generation and, unless `log` is false, the id it was stored under (for front ends that do not stream)."""
    with model.stream(prompt, **params) as stream:
        for _ in stream:
            pass
    assert stream.result is not None
    return stream.result, record(stream.result, source) if log else None


def sample_row(result: "Generation", source: str) -> dict[str, Any]:
    """The columns of `samples` for one generation (the copied span aside: `store_sample` adds it)."""
    model = result.model
    return {
        "created": result.created, "model": model.name, "model_path": str(model.path or model.name),
        "model_kind": model.kind, "corpus": model.card.corpus.name if model.card.corpus else None,
        "mode": "prompted" if result.prompt else "unconditional", "source": source, "prompt": result.prompt,
        "text": result.text, "params": asdict(result.params), "chars": len(result.text),
        "duration_s": round(result.duration_s, 3), "cancelled": result.cancelled,
    }


def store_sample(row: dict[str, Any], card: Card) -> int:
    """Check the text against the model's corpus, store it, and return its id."""
    index = card.corpus_index()
    row = {**row, **(UNCHECKED if index is None else span_columns(index.longest_span(row["text"])))}
    with Store() as store:
        return store.add(row)


def span_columns(span: Span | None) -> dict[str, Any]:
    """The `copied_*` columns of a checked sample (0 characters when none of it is in the corpus)."""
    if span is None:
        return {**UNCHECKED, "copied_chars": 0}
    return {"copied_chars": span.length, "copied_document": span.document, "copied_offset": span.offset,
            "copied_sample_offset": span.sample_offset}


def stored_span(sample: Sample) -> Span | None:
    """The copied span a stored sample was checked to have (the inverse of `span_columns`); None when it has none or
    was not checked."""
    if not sample.copied_chars or sample.copied_document is None:
        return None
    return Span(sample.copied_chars, sample.copied_sample_offset or 0, sample.copied_document, sample.copied_offset or 0)


def copied_span(result: "Generation", sample_id: int | None) -> Span | None:
    """The longest passage a generation shares with its model's corpus, so that the writer is told when it copies.

    A stored sample was checked as it was stored: its span is read back, not
    searched again. One that was not stored (--no-log, or a store that failed)
    is checked now, since the writer has seen its text all the same. None when
    it shares nothing, or its model has no corpus to check against.
    """
    if sample_id is not None:
        with Store() as store:
            return stored_span(store.get(sample_id))
    index = result.model.card.corpus_index()
    return None if index is None else index.longest_span(result.text)


def check_stored(store: Store, sample: Sample) -> tuple[Span | None, CorpusIndex]:
    """The memorization check of a stored sample, run again (the corpus may be back) and saved with it."""
    if sample.corpus is None:
        raise UserError(f"sample {sample.id}: its model {sample.model} was trained on no corpus, so there is nothing to check")
    if sample.model_path is None:
        raise UserError(f"sample {sample.id}: its model {sample.model} has been removed (assistant models rm), and with "
                        "it the record of its corpus")
    path = modeldir.find(sample.model_path)
    if path is None:
        raise UserError(f"sample {sample.id}: cannot read its model's {sample.model_path}/config.json, so not its corpus either")
    index = modeldir.read(path).corpus_index()
    if index is None:
        raise UserError(f"sample {sample.id}: its corpus {sample.corpus} cannot be checked (see the warning)")
    span = index.longest_span(sample.text)
    store.set_copied(sample.id, span_columns(span))
    return span, index
