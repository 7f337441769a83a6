"""Turn raw downloaded bytes into the author's text, and nothing else.

Gutenberg files wrap the book in a header and a licence; training on those
teaches the model legal boilerplate. We cut at the START/END markers (and the
older variants), drop the producer credits right after the header, and
normalise BOMs and line endings. The text's own characters are kept as is.
"""

import codecs
import re

from .errors import UserError
from .formats import not_text, sniff

_START = re.compile(
    r"^\s*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$"
    r"|^\*END\*THE SMALL PRINT!.*$"
    r"|^\s*\*{3}\s*START OF THE PROJECT GUTENBERG.*$",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    r"^\s*\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*$"
    r"|^\s*End of (the )?Project Gutenberg'?s?\b.*$"
    r"|^\s*End of this Project Gutenberg.*$",
    re.IGNORECASE | re.MULTILINE,
)
# Paragraphs about the e-text rather than of it. Credits and copyright notes are
# only cut in an unbroken run at the very start or end of the body (an author's
# paragraph may begin "Produced by..." too); a transcriber's note is cut wherever
# it stands near the edges, since some stories put it after their title.
_CREDIT = re.compile(
    r"\s*(Produced by|E-text prepared by|Special thanks|This e-?text was produced|Transcriber'?s Note:)\b",
    re.IGNORECASE,
)
_TRANSCRIBER = re.compile(r"\s*\[\s*Transcriber'?s Note\b|\s*Transcriber'?s Note:", re.IGNORECASE)
_PARAGRAPH = re.compile(r"(?:[ \t]*\S[^\n]*(?:\n|$))+")
NOTES_HEAD = 3000  # how far into the body a note may stand
NOTES_TAIL = 1500  # how near the end


def decode(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes to text and the encoding they were read in, with a one-line error naming the file and byte offset.

    `--encoding` is for the files that are not UTF-8: one that is valid UTF-8
    stays UTF-8, so that a folder of UTF-8 chapters with one latin-1 file among
    them, read with --encoding latin-1 as the error advises, is not garbled
    (latin-1 reads any bytes, and would turn each curly quote into three
    characters). A file with NUL bytes is no UTF-8 text (UTF-16's ASCII is).
    A word processor's file is refused whatever the encoding: `--encoding` is
    for text in another character set, and would read a .docx's bytes as text.
    """
    if (document := sniff(data)) is not None:
        raise UserError(not_text(source, document))
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UserError(f"unknown encoding {encoding!r}") from None
    nul = data.find(b"\x00", 0, 1 << 16)
    if encoding is None and nul >= 0:
        raise UserError(f"{source}: looks like a binary file (NUL byte at offset {nul}), not text")
    if encoding is not None and nul < 0:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    enc = encoding or "utf-8"
    try:
        return data.decode(enc), enc
    except UnicodeDecodeError as e:
        raise UserError(
            f"{source}: not valid {enc} (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "pass --encoding (for example --encoding latin-1) to read it (files that are UTF-8 stay UTF-8)"
        ) from None


def strip_gutenberg(text: str) -> str:
    """The body between the Gutenberg markers; unmarked text comes back whole."""
    start = _START.search(text)
    if start:
        text = text[start.end() :]
    end = _END.search(text)
    if end:
        text = text[: end.start()]
    if start:
        text = _drop_notes(text)
    return text


def _drop_notes(body: str) -> str:
    """Remove note paragraphs at the start and end of a Gutenberg body."""
    paragraphs = list(_PARAGRAPH.finditer(body))
    cut: set[int] = set()
    for order in (range(len(paragraphs)), range(len(paragraphs) - 1, -1, -1)):
        for i in order:  # the run of credits at this edge
            if not _CREDIT.match(paragraphs[i].group()):
                break
            cut.add(i)
    for i, m in enumerate(paragraphs):
        if (m.start() < NOTES_HEAD or m.end() > len(body) - NOTES_TAIL) and _TRANSCRIBER.match(m.group()):
            cut.add(i)
    for a, b in sorted((paragraphs[i].span() for i in cut), reverse=True):
        body = body[:a] + body[b:]
    return body


def clean(text: str) -> str:
    """BOM, CRLF/CR, Gutenberg wrapper, surrounding blank lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    body = strip_gutenberg(text).strip("\n")
    return body + "\n" if body.strip() else ""
