"""Is a sample the model's own, or a passage copied from its training corpus?

`CorpusIndex` holds a corpus's documents joined into one text and its suffix
array. It is built once per corpus and cached in the data directory under the
corpus checksum, so it always describes exactly the cleaned text a model was
trained on (its config.json records that checksum); a later process loads it
in milliseconds instead of building it again.
"""

import json
import sys
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import suffixarray
from .files import replacing
from .home import corpora_cache_dir
from .load import Corpus, find_trained_corpus
from .unwrap import SETTINGS

INDEX_FORMAT = 1
SEPARATOR = "\0"  # between documents: cleaned text never holds it, so no span crosses two documents


class MemorizationWarning(UserWarning):
    """The memorization check was skipped (its corpus is missing or has changed)."""


@dataclass(frozen=True)
class Span:
    """The longest passage a sample shares with the corpus: where it is in both."""

    length: int
    sample_offset: int
    document: str
    offset: int  # in the document


class CorpusIndex:
    """A corpus's documents as one text with its suffix array, for longest-shared-span queries."""

    def __init__(self, text: str, sa: np.ndarray, names: list[str], starts: list[int]):
        self.text = text
        self.sa = sa
        self.names = names
        self.starts = starts

    @classmethod
    def build(cls, corpus: Corpus) -> "CorpusIndex":
        starts, offset = [], 0
        for d in corpus.documents:
            starts.append(offset)
            offset += len(d.text) + len(SEPARATOR)
        text = SEPARATOR.join(d.text for d in corpus.documents)
        return cls(text, suffixarray.build(text), [d.name for d in corpus.documents], starts)

    def save(self, folder: Path) -> None:
        """Write the folder whole or not at all: a reader never sees half an index."""
        with replacing(folder) as tmp:
            tmp.mkdir()
            (tmp / "text.txt").write_bytes(self.text.encode("utf-8"))
            np.save(tmp / "sa.npy", self.sa)
            meta = {"format": INDEX_FORMAT, "documents": self.names, "starts": self.starts}
            (tmp / "documents.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> "CorpusIndex | None":
        try:
            meta = json.loads((folder / "documents.json").read_text())
            if meta.get("format") != INDEX_FORMAT:
                return None
            text = (folder / "text.txt").read_bytes().decode("utf-8")
            sa = np.load(folder / "sa.npy", mmap_mode="r")
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            return None
        return cls(text, sa, meta["documents"], meta["starts"])

    def longest_span(self, sample: str) -> Span | None:
        """The longest span of `sample` found verbatim in the corpus; None when not a character is."""
        match = suffixarray.longest_match(self.text, self.sa, sample.replace(SEPARATOR, ""))
        if match is None:
            return None
        doc = bisect_right(self.starts, match.text_offset) - 1
        return Span(match.length, match.sample_offset, self.names[doc], match.text_offset - self.starts[doc])

    def context(self, span: Span, width: int) -> tuple[str, str, str]:
        """The corpus text before the span, the span, and after it: `width` characters each side, within its document."""
        doc = self.names.index(span.document)
        begin = self.starts[doc]
        end = self.starts[doc + 1] - len(SEPARATOR) if doc + 1 < len(self.starts) else len(self.text)
        at = begin + span.offset
        return (self.text[max(begin, at - width) : at], self.text[at : at + span.length],
                self.text[at + span.length : min(end, at + span.length + width)])


def index_folder(checksum: str) -> Path:
    return corpora_cache_dir() / "index" / checksum


@lru_cache(maxsize=4)
def cached_index(folder: Path, checksum: str, name: str, source: str, encoding: str | None = None,
                 unwrap: str = "off") -> CorpusIndex | None:
    """The index of the corpus with this checksum: from `folder`, or built from the corpus once and saved there.

    Kept in memory too, so a REPL loads it once. None, with a warning, when
    the corpus cannot be found or no longer has that checksum: the check is
    skipped rather than run against other text.
    """
    index = CorpusIndex.load(folder)
    if index is not None:
        return index
    corpus = _find_corpus(checksum, name, source, encoding, unwrap)
    if corpus is None:
        return None
    sys.stderr.write(f"indexing corpus {corpus.name} for the memorization check (once)...\n")
    sys.stderr.flush()
    index = CorpusIndex.build(corpus)
    try:
        index.save(folder)
    except OSError as e:
        warnings.warn(f"cannot cache the corpus index in {folder}: {e}", MemorizationWarning, stacklevel=2)
    return index


def _find_corpus(checksum: str, name: str, source: str, encoding: str | None = None, unwrap: str = "off") -> Corpus | None:
    corpus, missing = find_trained_corpus(name, source, checksum, encoding, SETTINGS[unwrap])
    if corpus is None:
        warnings.warn(f"{missing}; no memorization check", MemorizationWarning, stacklevel=3)
    return corpus


def corpus_index(name: str, source: str, checksum: str, encoding: str | None = None, unwrap: str = "off") -> CorpusIndex | None:
    """The index of the corpus with this name, source and checksum (as a model's card records them, with the
    --encoding and unwrap setting it was read with), built at its first use; None, with a warning, when that corpus
    is not on this machine or has changed."""
    index = cached_index(index_folder(checksum), checksum, name, source, encoding, unwrap)
    if index is None:
        cached_index.cache_clear()  # a missing corpus may be back by the next check: remember successes only
    return index
