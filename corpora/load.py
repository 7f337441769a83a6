"""Resolve a corpus name or path to cleaned documents.

Catalogue names are looked up in `ASSISTANT_CORPORA` (a directory laid out
like the project's shared corpora), then in the user cache (checksums
verified), then downloaded into the cache. Anything else must be a `.txt`
file or a directory of them.
"""

import difflib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import download
from .catalogue import CATALOGUE, Entry
from .clean import clean, decode
from .errors import UserError
from .files import write_bytes
from .home import corpora_cache_dir

CHECKSUMS = "checksums.json"


@dataclass(frozen=True)
class Document:
    name: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """A named list of cleaned documents; `source` says where they came from."""

    name: str
    documents: tuple[Document, ...]
    source: str

    @property
    def chars(self) -> int:
        return sum(len(d.text) for d in self.documents)

    @property
    def checksum(self) -> str:
        """sha256 of the cleaned documents, so a model records exactly what it saw."""
        h = hashlib.sha256()
        for d in self.documents:
            h.update(d.name.encode() + b"\0" + d.text.encode() + b"\0")
        return h.hexdigest()

    def stats(self) -> dict[str, int]:
        vocab: set[str] = set()
        words = 0
        for d in self.documents:
            vocab.update(d.text)
            words += len(d.text.split())
        return {"documents": len(self.documents), "characters": self.chars, "vocabulary": len(vocab), "words": words}


def load_corpus(name_or_path: str, encoding: str | None = None, *, allow_download: bool = True) -> Corpus:
    """The corpus a user named: catalogue entry or local text, cleaned.

    With `allow_download=False` a catalogue corpus that is neither in ASSISTANT_CORPORA
    nor in the cache is a UserError instead of a download (the memorization
    check never downloads a corpus).
    """
    if name_or_path in CATALOGUE:
        return _load_catalogue(CATALOGUE[name_or_path], encoding, allow_download)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _load_path(path, encoding)
    if os.sep in name_or_path or name_or_path.endswith(".txt"):
        raise UserError(f"no such file or directory: {name_or_path}")
    close = difflib.get_close_matches(name_or_path, list(CATALOGUE), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(
        f"unknown corpus {name_or_path!r}: {hint}known corpora are {', '.join(CATALOGUE)}, "
        "or give a path to a .txt file or directory"
    )


def _documents(files: list[tuple[str, bytes]], name: str, encoding: str | None) -> tuple[Document, ...]:
    docs = tuple(Document(doc_name, clean(decode(data, doc_name, encoding))) for doc_name, data in files)
    docs = tuple(d for d in docs if d.text)
    if not docs:
        raise UserError(f"corpus {name!r} is empty: no text left after cleaning")
    return docs


def _load_path(path: Path, encoding: str | None) -> Corpus:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"{path}: no .txt files in this directory")
    else:
        files = [path]
    # documents are named relative to the corpus, so the checksum does not depend on how the path was typed
    root = path if path.is_dir() else path.parent
    docs = _documents([(str(f.relative_to(root)), _read(f)) for f in files], str(path), encoding)
    name = path.stem if path.is_file() else path.resolve().name
    return Corpus(name=name, documents=docs, source=str(path.resolve()))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def _load_catalogue(entry: Entry, encoding: str | None, allow_download: bool) -> Corpus:
    for source, raw in (_from_shared(entry), _from_cache(entry)):
        if raw is not None:
            return Corpus(entry.name, _documents(raw, entry.name, encoding), source)
    if not allow_download:
        raise UserError(f"corpus {entry.name} is not on this machine (neither in ASSISTANT_CORPORA nor in the cache)")
    raw = _download(entry)
    return Corpus(entry.name, _documents(raw, entry.name, encoding), "download")


def _from_shared(entry: Entry) -> tuple[str, list[tuple[str, bytes]] | None]:
    root = os.environ.get("ASSISTANT_CORPORA")
    if not root:
        return "", None
    folder = Path(root).expanduser() / entry.folder
    paths = [folder / d.file for d in entry.documents]
    if not all(p.is_file() for p in paths):
        return "", None
    return str(folder), [(d.file, p.read_bytes()) for d, p in zip(entry.documents, paths, strict=True)]


def _cache_folder(entry: Entry) -> Path:
    return corpora_cache_dir() / entry.name


def _from_cache(entry: Entry) -> tuple[str, list[tuple[str, bytes]] | None]:
    """Cached files whose checksums still match; None if any is missing or damaged."""
    folder = _cache_folder(entry)
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
        raw = [(d.file, (folder / d.file).read_bytes()) for d in entry.documents]
    except (OSError, ValueError):
        return "", None
    if any(sums.get(f) != download.sha256(data) for f, data in raw):
        return "", None
    return str(folder), raw


def _download(entry: Entry) -> list[tuple[str, bytes]]:
    from rich.console import Console
    from rich.progress import track

    folder = _cache_folder(entry)
    raw = []
    description = f"Downloading {entry.name} ({len(entry.documents)} files)"
    for d in track(entry.documents, description=description, console=Console(stderr=True), transient=True):
        data = download.fetch(d.download_url())
        write_bytes(folder / d.file, data)
        raw.append((d.file, data))
    sums = {f: download.sha256(data) for f, data in raw}
    write_bytes(folder / CHECKSUMS, json.dumps(sums, indent=1).encode())
    return raw
