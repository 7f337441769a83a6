"""The sample store's schema, as numbered migrations (the way Simon Willison's `llm` does it).

Each migration runs once per database, in order, and is recorded in
`_migrations`; a database made by any earlier version is brought up to date
when it is opened. Never edit a migration that has shipped: add the next one.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def migrate(db: Database, upto: int | None = None) -> None:
    """Apply the migrations not applied yet (the first `upto` only, for tests of upgrades).

    An up-to-date database is only read. Otherwise several processes may be
    opening it at once: BEGIN IMMEDIATE takes the write lock before reading
    what was applied, so each migration runs once.
    """
    wanted = [fn.__name__ for fn in MIGRATIONS[:upto]]
    if set(wanted) <= _applied(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
        applied = _applied(db)
        for fn in MIGRATIONS[:upto]:
            if fn.__name__ not in applied:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", [fn.__name__, datetime.now(UTC).isoformat()])
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


def _applied(db: Database) -> set[str]:
    if "_migrations" not in db.table_names():
        return set()
    return {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}


@migration
def m001_samples(db: Database) -> None:
    # AUTOINCREMENT: the id of a deleted sample is never given to a new one, so "#12" in a writer's notes stays true
    db.execute("""
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created TEXT NOT NULL,  -- UTC, ISO 8601
            model TEXT NOT NULL,
            model_path TEXT,
            model_kind TEXT,
            corpus TEXT,
            mode TEXT NOT NULL,  -- prompted or unconditional
            source TEXT NOT NULL,  -- cli, repl, editor, api
            prompt TEXT NOT NULL,
            text TEXT NOT NULL,
            params TEXT,  -- JSON
            chars INTEGER NOT NULL,
            duration_s REAL,
            cancelled INTEGER NOT NULL
        )
    """)
    db["samples"].create_index(["created"])
    db["samples"].create_index(["model"])


@migration
def m002_tags(db: Database) -> None:
    db["tags"].create({"id": int, "name": str}, pk="id", not_null={"name"})
    db["tags"].create_index(["name"], unique=True)
    db["sample_tags"].create(
        {"sample_id": int, "tag_id": int},
        pk=("sample_id", "tag_id"),
        foreign_keys=[("sample_id", "samples", "id"), ("tag_id", "tags", "id")],
    )
    db["sample_tags"].create_index(["tag_id"])


@migration
def m003_search(db: Database) -> None:
    db["samples"].enable_fts(["prompt", "text"], fts_version="FTS5", create_triggers=True)


@migration
def m004_copied_span(db: Database) -> None:
    """The longest span each sample shares with its model's corpus (NULL: no corpus to check against)."""
    for column, kind in (("copied_chars", int), ("copied_document", str), ("copied_offset", int),
                         ("copied_sample_offset", int)):
        db["samples"].add_column(column, kind)
    db["samples"].create_index(["copied_chars"])


@migration
def m005_editor_events(db: Database) -> None:
    """What became of each suggestion the editor plugins showed: shown, accepted, partially accepted."""
    db.execute("""
        CREATE TABLE editor_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created TEXT NOT NULL,  -- UTC, ISO 8601
            event TEXT NOT NULL,  -- shown, accepted or partial
            suggestion TEXT NOT NULL,  -- the server's id for the suggestion, shared by its events
            document TEXT,  -- the editor's URI
            model TEXT NOT NULL,
            text TEXT NOT NULL,  -- the suggestion as offered
            accepted TEXT,  -- what the writer took of it (accepted, partial)
            sample_id INTEGER REFERENCES samples(id)  -- the sample the accepted text was stored as
        )
    """)
    db["editor_events"].create_index(["created"])


@migration
def m006_client(db: Database) -> None:
    """Which program asked for each sample through the HTTP API (its User-Agent); NULL for the others."""
    db["samples"].add_column("client", str)


@migration
def m007_checkpoint(db: Database) -> None:
    """Which checkpoint of its model wrote each sample (ghostwriting, best-val, last) and the training step of its
    weights, so that `NAME@CHECKPOINT --seed N` writes it again; NULL in the rows of earlier releases and of bases."""
    db["samples"].add_column("checkpoint", str)
    db["samples"].add_column("checkpoint_step", int)
