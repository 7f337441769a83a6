"""Resolve a corpus name or path to cleaned documents.

Catalogue names are looked up in `ASSISTANT_CORPORA` (a directory laid out
like the project's shared corpora), then in the user cache (checksums
verified), then downloaded into the cache. Anything else must be a text file
or a folder of `.txt` and `.md` files; a folder's other files are left out
and listed in `Corpus.skipped` with the reason, so a writer sees why their
novel.docx is not in it.
"""

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
from .formats import TEXT_SUFFIXES, skip_reason
from .home import corpora_cache_dir
from .suggest import did_you_mean
from .unwrap import unwrap as unwrapped

CHECKSUMS = "checksums.json"


@dataclass(frozen=True)
class Document:
    name: str  # the file, relative to the corpus
    text: str
    title: str | None = None  # a catalogue document's title; a writer's file is known by its name
    encoding: str = "utf-8"  # what its bytes were read as: UTF-8, or --encoding for a file that is not UTF-8
    unwrapped: bool = False  # whether its hard-wrapped lines were joined (corpora.unwrap)
    author: str | None = None  # in a corpus of several authors (corpora.authors), whose it is


@dataclass(frozen=True)
class Skipped:
    """A file of a folder corpus that is not in it, and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@dataclass(frozen=True)
class Corpus:
    """A named list of cleaned documents; `source` says where they came from, `skipped` what was left out."""

    name: str
    documents: tuple[Document, ...]
    source: str
    skipped: tuple[Skipped, ...] = ()

    @property
    def chars(self) -> int:
        return sum(len(d.text) for d in self.documents)

    @property
    def encoded(self) -> dict[str, list[str]]:
        """The documents read in another encoding than UTF-8 (--encoding), by encoding: the files that are not UTF-8."""
        found: dict[str, list[str]] = {}
        for d in self.documents:
            if d.encoding != "utf-8":
                found.setdefault(d.encoding, []).append(d.name)
        return found

    def reading(self) -> str | None:
        """Which files --encoding applied to, in one line; None when every file is UTF-8."""
        if not self.encoded:
            return None
        read = "; ".join(f"{few(names)} as {enc}" for enc, names in self.encoded.items())
        others = sum(map(len, self.encoded.values())) < len(self.documents)
        return f"Read {read} (--encoding)" + ("; the other files are UTF-8, and read as UTF-8" if others else "")

    def unwrapping(self) -> str | None:
        """Which documents had their hard-wrapped lines joined, in one line; None when none had."""
        joined = [d.name for d in self.documents if d.unwrapped]
        if not joined:
            return None
        which = "all its documents" if len(joined) == len(self.documents) else few(joined)
        return f"Joined the hard-wrapped lines inside paragraphs of {which} (--no-unwrap keeps them)"

    @property
    def checksum(self) -> str:
        """sha256 of the cleaned documents, so a model records exactly what it saw."""
        h = hashlib.sha256()
        for d in self.documents:
            h.update(d.name.encode() + b"\0" + d.text.encode() + b"\0")
        return h.hexdigest()

    def authors(self) -> list[tuple[str | None, int]]:
        """Each author's run of documents, in order, as (author, documents): one run (author None) for one author's
        corpus. The kinds split each run on its own, so that every author has a validation text (corpora.authors)."""
        runs: list[tuple[str | None, int]] = []
        for d in self.documents:
            if runs and runs[-1][0] == d.author:
                runs[-1] = (d.author, runs[-1][1] + 1)
            else:
                runs.append((d.author, 1))
        return runs

    def stats(self) -> dict[str, int]:
        vocab: set[str] = set()
        words = 0
        for d in self.documents:
            vocab.update(d.text)
            words += len(d.text.split())
        return {"documents": len(self.documents), "characters": self.chars, "vocabulary": len(vocab), "words": words}


def load_corpus(name_or_path: str, encoding: str | None = None, unwrap: bool | None = None, *,
                allow_download: bool = True, author_tags: bool = False) -> Corpus:
    """The corpus a user named: catalogue entry or local text, cleaned; `A,B` several corpora joined as one, each
    document after its author's tag with `author_tags` (corpora.authors).

    `unwrap` (corpora.unwrap): None joins the lines of the documents that are hard-wrapped (Gutenberg's), True those
    of every paragraph wrapped at its text's width (--unwrap), False none (--no-unwrap).

    With `allow_download=False` a catalogue corpus that is neither in ASSISTANT_CORPORA
    nor in the cache is a UserError instead of a download (the memorization
    check never downloads a corpus).
    """
    from .authors import check_tags, joined, parts

    check_tags(name_or_path, author_tags)
    if (names := parts(name_or_path)) is not None:
        return joined(names, [load_corpus(name, encoding, unwrap, allow_download=allow_download) for name in names],
                      author_tags)
    if name_or_path in CATALOGUE:
        return _load_catalogue(CATALOGUE[name_or_path], encoding, unwrap, allow_download)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _load_path(path, encoding, unwrap)
    if os.sep in name_or_path or name_or_path.endswith(".txt"):
        raise UserError(f"no such file or directory: {name_or_path}")
    hint = did_you_mean(name_or_path, CATALOGUE)
    raise UserError(
        f"unknown corpus {name_or_path!r}: {hint}known corpora are {', '.join(CATALOGUE)}, "
        "or give a path to a .txt file or directory"
    )


def _documents(files: list[tuple[str, bytes]], name: str, encoding: str | None, unwrap: bool | None,
               titles: dict[str, str] | None = None) -> tuple[Document, ...]:
    docs = []
    for doc_name, data in files:
        raw, used = decode(data, doc_name, encoding)
        text, joined = (clean(raw), False) if unwrap is False else unwrapped(clean(raw), force=unwrap is True)
        docs.append(Document(doc_name, text, (titles or {}).get(doc_name), used, joined))
    kept = tuple(d for d in docs if d.text)
    if not kept:
        raise UserError(f"corpus {name!r} is empty: no text left after cleaning")
    return kept


def _load_path(path: Path, encoding: str | None, unwrap: bool | None) -> Corpus:
    files, skipped = _folder_files(path) if path.is_dir() else ([path], [])
    # documents are named relative to the corpus, so the checksum does not depend on how the path was typed
    root = path if path.is_dir() else path.parent
    docs = _documents([(str(f.relative_to(root)), _read(f)) for f in files], str(path), encoding, unwrap)
    kept = {d.name for d in docs}
    skipped += [Skipped(str(f.relative_to(root)), "no text in it") for f in files if str(f.relative_to(root)) not in kept]
    name = path.stem if path.is_file() else path.resolve().name
    return Corpus(name=name, documents=docs, source=str(path.resolve()),
                  skipped=tuple(sorted(skipped, key=lambda s: s.name)))


def _folder_files(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """A folder's text files, and its other files with the reason each is left out.

    Hidden files and folders (.DS_Store, .git) are the system's, not the
    writer's: they are neither read nor listed.
    """
    files, skipped = [], []
    for f in sorted(folder.rglob("*")):
        relative = f.relative_to(folder)
        if not f.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if f.suffix.lower() in TEXT_SUFFIXES:
            files.append(f)
        else:
            skipped.append(Skipped(str(relative), skip_reason(f)))
    if not files:
        found = f"; left out {listing(skipped)}" if skipped else ""
        raise UserError(f"{folder}: no {' or '.join(TEXT_SUFFIXES)} files in this folder{found}")
    return files, skipped


def listing(skipped: "list[Skipped] | tuple[Skipped, ...]", most: int = 5) -> str:
    """Skipped files as one short phrase (the first few, and how many more), for a one-line message."""
    return few(list(map(str, skipped)), most, "; ")


def few(names: list[str], most: int = 5, between: str = ", ") -> str:
    """The first few names and how many more, as a phrase."""
    return between.join(names[:most]) + (f"{between}and {len(names) - most} more" if len(names) > most else "")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def _load_catalogue(entry: Entry, encoding: str | None, unwrap: bool | None, allow_download: bool) -> Corpus:
    for source, raw in (_from_shared(entry), _from_cache(entry)):
        if raw is not None:
            return Corpus(entry.name, _documents(raw, entry.name, encoding, unwrap, _titles(entry)), source)
    if not allow_download:
        raise UserError(f"corpus {entry.name} is not on this machine (neither in ASSISTANT_CORPORA nor in the cache)")
    raw = _download(entry)
    return Corpus(entry.name, _documents(raw, entry.name, encoding, unwrap, _titles(entry)), "download")


def _titles(entry: Entry) -> dict[str, str]:
    return {d.file: d.title for d in entry.documents}


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


def find_trained_corpus(name: str, source: str, checksum: str, encoding: str | None = None,
                        unwrap: bool | None = False) -> tuple[Corpus | None, str]:
    """The corpus a model was trained on (as its card records it), exactly, never downloaded; else None and why not.

    A catalogue corpus is found by its name (its source may be a cache or a shared folder), a file by its path.
    """
    candidates = [c for c in (name if name in CATALOGUE else "", source) if c and c != "download"]
    changed = False
    for candidate in candidates:  # a file may share its name with a catalogue corpus: try both
        for tags in (False, True) if "," in candidate else (False,):  # several authors', with their tags or without
            try:
                corpus = load_corpus(candidate, encoding, unwrap, allow_download=False, author_tags=tags)
            except UserError:
                continue
            if corpus.checksum == checksum:
                return corpus, ""
            changed = True
    return None, f"corpus {name!r} " + ("has changed since the model was trained" if changed else f"({source}) not found")
