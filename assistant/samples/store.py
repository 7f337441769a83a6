"""The sample store: every generation, its tags and its copied span, in one SQLite database.

`samples.db` in the data directory, in WAL mode so the REPL, the editor
server and the CLI can write at once (a writer waits for the lock instead of
failing), with plain table and column names so `sqlite-utils` and Datasette
read it as it is. The schema lives in `migrations.py`.
"""

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import monotonic, sleep
from typing import Any

from sqlite_utils import Database

from contract.modeldir import checkpoint_label
from corpora import UserError
from corpora.home import data_home

from .migrations import migrate

DATABASE = "samples.db"
GHOSTWRITTEN = "ghostwritten"
LOCK_WAIT_S = 30.0


@dataclass
class Sample:
    """One stored generation, as a row of `samples` plus its tags."""

    id: int
    created: str
    model: str
    model_path: str | None
    model_kind: str | None
    corpus: str | None
    mode: str
    source: str
    prompt: str
    text: str
    params: dict[str, Any]
    chars: int
    duration_s: float | None
    cancelled: bool
    copied_chars: int | None = None
    copied_document: str | None = None
    copied_offset: int | None = None
    copied_sample_offset: int | None = None
    client: str | None = None  # the program that asked for it through the HTTP API (its User-Agent)
    checkpoint: str | None = None  # None: a base's sample, or one stored before checkpoints were recorded
    checkpoint_step: int | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """`NAME@CHECKPOINT`: the model and checkpoint that wrote it (the name alone where that was not recorded)."""
        return checkpoint_label(self.model, self.checkpoint, None)

    @property
    def named(self) -> str:
        """`NAME@CHECKPOINT, step N`, as far as it was recorded."""
        return checkpoint_label(self.model, self.checkpoint, self.checkpoint_step)

    def copies(self, min_span: int) -> bool:
        return self.copied_chars is not None and self.copied_chars >= min_span

    @property
    def full_text(self) -> str:
        """The prompt and what the model wrote after it, exactly as stored: the passage a writer takes away."""
        return self.prompt + self.text


def database_path() -> Path:
    return data_home() / DATABASE


def now() -> str:
    """UTC, ISO 8601 to the millisecond: sorts and compares as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_since(value: str) -> str:
    """`--since`: a date or time as the listings show it (local time unless it names a zone), a time of
    today (14:30), or an age such as 30m, 12h, 7d, 2w; as UTC text to compare with `created`."""
    age = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", value)
    if age:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[age[2]]
        return (datetime.now(UTC) - timedelta(**{unit: float(age[1])})).isoformat(timespec="milliseconds")
    try:
        if clock := re.fullmatch(r"\s*(\d{1,2})(:\d{2}(?::\d{2})?)\s*", value):
            when = datetime.combine(datetime.now().date(), time.fromisoformat(f"{int(clock[1]):02d}{clock[2]}"))
        else:
            when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"cannot read --since {value!r}: give a date (2026-11-24), a time (14:30 or "
                        "2026-11-24 14:30), or an age (30m, 12h, 7d)") from None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")  # a naive time is taken as local time


def damaged(e: sqlite3.Error) -> bool:
    """Whether SQLite failed because the file is not a sound database ("file is not a database", "database disk
    image is malformed"), rather than because it could not get at it (locked, unreadable: an OperationalError)."""
    return isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError)


def set_aside(path: Path | None = None) -> Path:
    """Move a damaged store (and its WAL files) to `samples.db.damaged-TIME` beside it, and start an empty one there;
    the path it was moved to. A store that opens is refused: this is for damage only, never a way to lose samples."""
    path = path or database_path()
    if not path.is_file():
        raise UserError(f"there is no sample store at {path}: nothing to set aside")
    try:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        if not damaged(e):
            raise UserError(f"cannot open the sample store {path}: {e}") from None
    else:
        raise UserError(f"the sample store {path} is not damaged: nothing to set aside")
    aside = path.with_name(f"{path.name}.damaged-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
    for suffix in ("", "-wal", "-shm"):
        if (old := Path(f"{path}{suffix}")).exists():
            old.rename(f"{aside}{suffix}")
    Store(path).close()
    return aside


def _prepare(db: Database) -> None:
    """WAL mode and the schema, waiting up to LOCK_WAIT_S for other processes opening the store at the same moment.

    Switching the journal mode does not wait on a busy database as other statements do: SQLite answers "database
    is locked" at once. Eight writers opening a new store together saw it (tests/faults/test_store_faults.py).
    """
    deadline = monotonic() + LOCK_WAIT_S
    while True:
        try:
            db.enable_wal()
            migrate(db)
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or monotonic() > deadline:
                raise
            sleep(0.05)


class Store:
    """The sample database, opened (and created or upgraded) on construction."""

    def __init__(self, path: Path | None = None):
        self.path = path or database_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = Database(sqlite3.connect(self.path, timeout=LOCK_WAIT_S))
            _prepare(self.db)
        except sqlite3.DatabaseError as e:
            if damaged(e):  # never written to or replaced: what it holds may yet be saved
                raise UserError(f"the sample store {self.path} is damaged ({e}); it is left as it is: "
                                "`assistant samples fresh` moves it aside for you and starts an empty store") from None
            raise UserError(f"cannot open the sample store {self.path}: {e}") from None
        except (sqlite3.Error, OSError) as e:  # not a file, unreadable, or locked past the wait
            raise UserError(f"cannot open the sample store {self.path}: {e}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction that holds the lock from its start, so it never fails half-way on a busy database."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

    # ---- writing --------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> int:
        """Store one generation (the columns of `samples`, without id); its new id."""
        row = {**row, "params": json.dumps(row.get("params") or {}), "cancelled": int(bool(row.get("cancelled")))}
        with self._writing():
            return self.db["samples"].insert(row).last_pk  # type: ignore[union-attr]

    def add_editor_event(self, row: dict[str, Any]) -> int:
        """Store one event of an editor suggestion (the columns of `editor_events`, without id); its new id."""
        with self._writing():
            return self.db["editor_events"].insert(row).last_pk  # type: ignore[union-attr]

    def editor_events(self) -> list[dict[str, Any]]:
        """Every editor event, oldest first."""
        return list(self.db["editor_events"].rows_where(order_by="id"))

    def tag(self, sample_id: int, tags: list[str]) -> None:
        self.get(sample_id)
        with self._writing():
            for name in _clean_tags(tags):
                self.db.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", [name])
                self.db.execute(
                    "INSERT OR IGNORE INTO sample_tags SELECT ?, id FROM tags WHERE name = ?", [sample_id, name]
                )

    def untag(self, sample_id: int, tags: list[str]) -> list[str]:
        """Remove these tags from the sample; the ones it had (the others did not match, which the writer is told)."""
        self.get(sample_id)
        removed = []
        with self._writing():
            for name in _clean_tags(tags):
                if self.db.execute(
                    "DELETE FROM sample_tags WHERE sample_id = ? AND tag_id IN (SELECT id FROM tags WHERE name = ?)",
                    [sample_id, name],
                ).rowcount:
                    removed.append(name)
        return removed

    def delete(self, sample_ids: list[int]) -> int:
        """Delete every sample named (each once, however often named), or none; how many were deleted."""
        sample_ids = list(dict.fromkeys(sample_ids))
        for sample_id in sample_ids:
            self.get(sample_id)  # all must exist before any is deleted
        with self._writing():
            for sample_id in sample_ids:
                self.db.execute("DELETE FROM sample_tags WHERE sample_id = ?", [sample_id])
                self.db.execute("UPDATE editor_events SET sample_id = NULL WHERE sample_id = ?", [sample_id])
                self.db.execute("DELETE FROM samples WHERE id = ?", [sample_id])
        return len(sample_ids)

    def set_copied(self, sample_id: int, columns: dict[str, Any]) -> None:
        with self._writing():
            self.db["samples"].update(sample_id, columns)

    # ---- a model renamed or removed -------------------------------------------
    # A sample names the model that wrote it twice: `model`, what `samples list --model` filters on, and `model_path`,
    # the directory `samples check` reads the corpus from. Both follow a renamed model; a removed one's samples stay.
    def model_samples(self, model_path: Path) -> int:
        """How many samples the model in this directory wrote."""
        return self.db.execute("SELECT count(*) FROM samples WHERE model_path = ?", [str(model_path)]).fetchone()[0]

    def rename_model(self, old_name: str, old_path: Path, new_path: Path) -> int:
        """The samples (and editor events) of the model `old_name` in `old_path` now by the model in `new_path`, under
        its name; how many samples."""
        with self._writing():
            moved = self.db.execute("UPDATE samples SET model = ?, model_path = ? WHERE model_path = ?",
                                    [new_path.name, str(new_path), str(old_path)]).rowcount
            self.db.execute("UPDATE editor_events SET model = ? WHERE model = ?", [new_path.name, old_name])
        return moved

    def forget_model_path(self, model_path: Path) -> int:
        """The samples of a removed model keep its name but no longer point at its directory, which a new model of
        the same name may take (and `samples check` must not read another model's corpus); how many."""
        with self._writing():
            return self.db.execute("UPDATE samples SET model_path = NULL WHERE model_path = ?", [str(model_path)]).rowcount

    # ---- reading --------------------------------------------------------------
    def get(self, sample_id: int) -> Sample:
        found = self.find(ids=[sample_id])
        if not found:
            raise UserError(f"no sample {sample_id}: see `assistant samples list`")
        return found[0]

    def find(
        self,
        *,
        ids: list[int] | None = None,
        tag: str | None = None,
        model: str | None = None,
        search: str | None = None,
        since: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[Sample]:
        """Samples matching every filter given, newest first; `search` is an FTS5 query over prompt and text."""
        where, args = [], []
        if ids is not None:
            where.append(f"s.id IN ({', '.join('?' * len(ids))})")
            args += ids
        if tag is not None:
            where.append("s.id IN (SELECT sample_id FROM sample_tags JOIN tags ON tags.id = tag_id WHERE tags.name = ?)")
            args.append(tag)
        if model is not None:  # a name takes every checkpoint's samples, NAME@CHECKPOINT one checkpoint's
            where.append("(s.model = ? OR s.model || '@' || s.checkpoint = ?)")
            args += [model, model]
        if search:
            where.append("s.rowid IN (SELECT rowid FROM samples_fts WHERE samples_fts MATCH ?)")
            args.append(_fts_query(search))
        if since is not None:
            where.append("s.created >= ?")
            args.append(parse_since(since))
        sql = (
            "SELECT s.*, (SELECT json_group_array(t.name) FROM sample_tags st JOIN tags t ON t.id = st.tag_id"
            " WHERE st.sample_id = s.id ORDER BY t.name) AS tag_names FROM samples s"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY s.id {'ASC' if oldest_first else 'DESC'}"
            + (" LIMIT ?" if limit is not None else "")
        )
        if limit is not None:
            args.append(limit)
        rows = self.db.execute(sql, args)
        names = [d[0] for d in rows.description]
        return [_sample(dict(zip(names, row, strict=True))) for row in rows.fetchall()]

    def tag_names(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM tags ORDER BY name").fetchall()]

    def model_names(self) -> list[str]:
        """The names of the models that wrote the stored samples, and of their checkpoints that did (NAME@CHECKPOINT)."""
        sql = ("SELECT model FROM samples UNION SELECT model || '@' || checkpoint FROM samples"
               " WHERE checkpoint IS NOT NULL ORDER BY 1")
        return [row[0] for row in self.db.execute(sql).fetchall()]


def _sample(row: dict[str, Any]) -> Sample:
    row["params"] = json.loads(row["params"] or "{}")
    row["cancelled"] = bool(row["cancelled"])
    row["tags"] = sorted(json.loads(row.pop("tag_names") or "[]"))
    return Sample(**row)


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = [t.strip() for t in tags]
    if not cleaned or not all(cleaned):
        raise UserError("give at least one tag, and no empty ones")
    return cleaned


def _fts_query(text: str) -> str:
    """Words as FTS5 terms, each quoted: a user's search never trips over FTS syntax."""
    words = re.findall(r"\w+", text)
    if not words:
        raise UserError(f"nothing to search for in {text!r}")
    return " ".join(f'"{w}"' for w in words)
