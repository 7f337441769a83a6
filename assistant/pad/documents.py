"""The pad's documents: Markdown or plain-text files in one folder, each with a record of what the model wrote.

The folder is `documents/` in the data directory, or a writer's own
manuscript folder (`assistant serve --documents PATH`): the files stay plain
files any editor opens. What the pad knows about a document beyond its text
(which spans the model wrote, its memory, author's note and settings) is its
record, a JSON file of the same name in `.ghostwriter/` beside them, so the
manuscript itself never holds markup. Every write goes to a temporary file
that then replaces the old one: a crash or a full disk never leaves half a
chapter.
"""

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corpora import UserError
from corpora.home import data_home

SUFFIXES = (".md", ".txt", ".markdown")
RECORDS = ".ghostwriter"
MAX_NAME = 120


class Missing(UserError):
    """No document of that name."""


class Documents:
    """The documents of one folder (None: the data directory's `documents/`, looked up at each call, so it follows
    ASSISTANT_HOME)."""

    def __init__(self, folder: Path | None = None):
        self._folder = folder

    @property
    def folder(self) -> Path:
        folder = self._folder if self._folder is not None else data_home() / "documents"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def names(self) -> list[dict[str, Any]]:
        """Each document's name, size and when it last changed, the most recent first."""
        found = [(p.stat(), p.name) for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
        found.sort(key=lambda f: f[0].st_mtime, reverse=True)
        return [{"name": name, "bytes": stat.st_size,
                 "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")}
                for stat, name in found]

    def read(self, name: str) -> dict[str, Any]:
        """The document's text and record ({} when the pad has never saved one)."""
        path = self.path(name)
        if not path.is_file():
            raise Missing(f"no document {name!r} in {self.folder}")
        record_path = self._record(path)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            record = {}  # a damaged record costs the marks, never the text
        return {"name": path.name, "text": path.read_text(encoding="utf-8", errors="replace"), "record": record}

    def write(self, name: str, text: str, record: dict[str, Any] | None = None) -> str:
        """Save the text (and the record, when given), each replacing the old file whole; the name it was saved as."""
        path = self.path(name)
        _replace(path, text)
        if record is not None:
            self._record(path).parent.mkdir(exist_ok=True)
            _replace(self._record(path), json.dumps(record, ensure_ascii=False))
        return path.name

    def create(self, name: str) -> str:
        """A new empty document; an error when one of that name is there already."""
        path = self.path(name)
        if path.exists():
            raise UserError(f"there is a document {path.name!r} already: pick another name")
        return self.write(path.name, "")

    def rename(self, name: str, to: str) -> str:
        """Rename a document and its record; its new name."""
        old, new = self.path(name), self.path(to)
        if not old.is_file():
            raise Missing(f"no document {name!r} in {self.folder}")
        if new.exists() and new != old:
            raise UserError(f"there is a document {new.name!r} already: pick another name")
        old.rename(new)
        if self._record(old).is_file():
            self._record(old).rename(self._record(new))
        return new.name

    def path(self, name: str) -> Path:
        """The file of a document name: no folders, no hidden files; `.md` added when it has none of SUFFIXES."""
        name = name.strip()
        if not name or len(name) > MAX_NAME or name.startswith(".") or any(c in name for c in '/\\\0:'):
            raise UserError(f"{name!r} is not a document name: a file name without folders, up to {MAX_NAME} characters")
        if Path(name).suffix.lower() not in SUFFIXES:
            name += ".md"
        return self.folder / name

    def _record(self, path: Path) -> Path:
        return path.parent / RECORDS / (path.name + ".json")


def _replace(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it to disk, and put it in place in one rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
