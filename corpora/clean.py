"""Turn raw downloaded bytes into the author's text, and nothing else.

Gutenberg files wrap the book in a header and a licence; training on those
teaches the model legal boilerplate. We cut at the START/END markers (and the
older variants), drop the producer credits right after the header, and
normalise BOMs and line endings. The text's own characters are kept as is.
"""

import re

from .errors import UserError

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
_CREDITS = re.compile(
    r"^(Produced by|E-text prepared by|This etext was produced|Transcribed from)\b.*?(\n\s*\n|\Z)",
    re.IGNORECASE | re.DOTALL,
)
# Gutenberg's PKD stories end with a note on the magazine printing and copyright.
_TRAILING_NOTE = re.compile(r"\n\s*\[?Transcriber'?s Note:?[^\n]*\n(.{0,1200})\Z", re.IGNORECASE | re.DOTALL)


def decode(data: bytes, source: str, encoding: str | None = None) -> str:
    """Bytes to text, with a one-line error naming the file and byte offset."""
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
        text = _CREDITS.sub("", text.lstrip(), count=1)
        text = _TRAILING_NOTE.sub("\n", text.rstrip())
    return text


def clean(text: str) -> str:
    """BOM, CRLF/CR, Gutenberg wrapper, surrounding blank lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    body = strip_gutenberg(text).strip("\n")
    return body + "\n" if body.strip() else ""
