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

from .store import Sample, Store, database_path

if TYPE_CHECKING:
    from ..generation import Generation, TextModel


# the copied-span columns of a sample whose model has no corpus to check against
UNCHECKED: dict[str, Any] = dict.fromkeys(("copied_chars", "copied_document", "copied_offset", "copied_sample_offset"))


class StoreWarning(UserWarning):
    """A sample could not be stored; the text was still shown."""


def record(result: "Generation", source: str, client: str | None = None, kept: "Kept | None" = None,
           branch: dict[str, Any] | None = None) -> int | None:
    """Store a generation with its corpus check; its id, or None (and a warning) when it could not be stored.

    `client`: the program that asked for it, for the HTTP API's samples;
    `kept`: a store kept open (a server's), else the store is opened for it;
    `branch`: which sample it branched from (`/branch`: its `parent` id, the `token` and the `alternative`
    chosen there), kept with the settings, in the params.
    """
    try:
        row = {**sample_row(result, source), "client": client}
        if branch is not None:
            row["params"]["branch"] = branch
        return store_sample(row, result.model.card, kept.get() if kept is not None else None)
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
        "model_kind": model.kind, "corpus": model.card.corpus_name,
        "mode": "prompted" if result.prompt else "unconditional", "source": source, "prompt": result.prompt,
        "text": result.text, "params": asdict(result.params), "chars": len(result.text),
        "duration_s": round(result.duration_s, 3), "cancelled": result.cancelled,
        "checkpoint": model.card.checkpoint if model.path is not None else None, "checkpoint_step": model.card.step,
    }


def store_sample(row: dict[str, Any], card: Card, store: Store | None = None) -> int:
    """Check the text against the model's corpus, store it (in `store`, else in the store opened for it), and return
    its id."""
    index = card.corpus_index()
    row = {**row, **(UNCHECKED if index is None else span_columns(index.longest_span(row["text"])))}
    if store is not None:
        return store.add(row)
    with Store() as opened:
        return opened.add(row)


class Kept:
    """A store kept open between samples, for a server that records many, on the one thread that opened it.

    Opening the database and closing it again for each sample costs a
    checkpoint of its write-ahead log and a sync each time (16 ms of the 27 ms a
    sample took on a CPU machine's disk), and a commit's own sync 8 ms more. A
    connection kept open pays neither: it syncs at the log's checkpoints
    (SQLite's synchronous=NORMAL, which it recommends with a write-ahead log): a
    program killed loses nothing it committed, a machine losing power at most
    the last samples, and the database is never damaged. It follows the data
    directory (reopened when ASSISTANT_HOME points elsewhere), and closes with
    the program.
    """

    def __init__(self) -> None:
        self._store: Store | None = None

    def get(self) -> Store:
        path = database_path()
        if self._store is None or self._store.path != path:
            if self._store is not None:
                self._store.close()
            self._store = Store(path)
            self._store.db.execute("PRAGMA synchronous=NORMAL")
        return self._store


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


def copied_span(result: "Generation", sample_id: int | None, store: Store | None = None) -> Span | None:
    """The longest passage a generation shares with its model's corpus, so that the writer is told when it copies.

    A stored sample was checked as it was stored: its span is read back, not
    searched again. One that was not stored (--no-log, or a store that failed)
    is checked now, since the writer has seen its text all the same. None when
    it shares nothing, or its model has no corpus to check against.
    """
    if sample_id is not None:
        if store is not None:
            return stored_span(store.get(sample_id))
        with Store() as opened:
            return stored_span(opened.get(sample_id))
    index = result.model.card.corpus_index()
    return None if index is None else index.longest_span(result.text)


def check_stored(store: Store, sample: Sample) -> tuple[Span | None, CorpusIndex]:
    """The memorization check of a stored sample, run again (the corpus may be back) and saved with it."""
    if sample.corpus is None:
        raise UserError(f"sample {sample.id}: its model {sample.model} was trained on no corpus, so there is nothing to check")
    if sample.model_path is None:
        raise UserError(f"sample {sample.id}: its model {sample.model} has been removed (assistant models rm), and with "
                        "it the record of its corpus")
    from ..blending import is_blend, stored_index

    path = modeldir.find(sample.model_path)
    if path is None and not is_blend(sample.model_path):
        raise UserError(f"sample {sample.id}: cannot read its model's {sample.model_path}/config.json, so not its corpus either")
    index = stored_index(sample.model_path) if path is None else modeldir.read(path).corpus_index()
    if index is None:
        raise UserError(f"sample {sample.id}: its corpus {sample.corpus} cannot be checked (see the warning)")
    span = index.longest_span(sample.text)
    store.set_copied(sample.id, span_columns(span))
    return span, index
