"""Turn raw downloaded bytes into the author's text, and nothing else.

Gutenberg files wrap the book in a header and a licence; training on those
teaches the model legal boilerplate. We cut at the START/END markers (and the
older variants), drop the producer credits right after the header, and
normalise BOMs and line endings. The text's own characters are kept as is.
"""

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


def decode(data: bytes, source: str, encoding: str | None = None) -> str:
    """Bytes to text, with a one-line error naming the file and byte offset.

    A word processor's file is refused whatever the encoding: `--encoding` is
    for text in another character set, and would read a .docx's bytes as text.
    """
    if (document := sniff(data)) is not None:
        raise UserError(not_text(source, document))
    if encoding is None:
        nul = data.find(b"\x00", 0, 1 << 16)
        if nul >= 0:
            raise UserError(f"{source}: looks like a binary file (NUL byte at offset {nul}), not text")
    enc = encoding or "utf-8"
    try:
        return data.decode(enc)
    except LookupError:
        raise UserError(f"unknown encoding {enc!r}") from None
    except UnicodeDecodeError as e:
        raise UserError(
            f"{source}: not valid {enc} (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "pass --encoding (for example --encoding latin-1) to read it"
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
