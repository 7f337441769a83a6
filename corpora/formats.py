"""Which files are a writer's plain text, and what the others are.

A writer's folder holds the novel as a Word file beside the notes in
Markdown. Word, PDF, EPUB, OpenDocument and RTF files are recognized by their
first bytes (a zip's by its members), whatever their name and whatever
`--encoding` says: read as text, they would train a model on XML, PDF streams
or RTF control words. Each such file gets one line saying to save it as plain
text, which every word processor can do.
"""

import io
import zipfile
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".md")  # what a folder corpus reads; Markdown is plain text with a few marks
SAVE_AS_TEXT = "save it as plain text (.txt)"

# what each recognized format is called, by the suffix it usually has
FORMATS = {
    ".docx": "a Word document",
    ".doc": "a Word 97-2003 document",
    ".odt": "an OpenDocument text (LibreOffice)",
    ".rtf": "a rich-text (RTF) document",
    ".pdf": "a PDF",
    ".epub": "an EPUB e-book",
    ".pages": "an Apple Pages document",
    ".zip": "a zip archive",
}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound file of Word 97-2003 (and other old Office files)


def sniff(data: bytes) -> str | None:
    """The suffix of the document format these bytes are (".docx", ".pdf"...), or None for anything else."""
    if data.startswith(b"%PDF-"):
        return ".pdf"
    if data.lstrip(b"\xef\xbb\xbf").startswith(b"{\\rtf"):
        return ".rtf"
    if data.startswith(_OLE):
        return ".doc"
    if data.startswith(b"PK\x03\x04"):
        return _zip_format(data)
    return None


def _zip_format(data: bytes) -> str:
    """A zip's document format, told by its members as the readers themselves tell it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):  # damaged, encrypted: a zip all the same
        return ".zip"
    if "word/document.xml" in names:
        return ".docx"
    if mimetype == "application/epub+zip":
        return ".epub"
    if mimetype.startswith("application/vnd.oasis.opendocument.text"):
        return ".odt"
    if any(n.startswith("Index/Document") for n in names):
        return ".pages"
    return ".zip"


def not_text(source: str, suffix: str) -> str:
    """The one line for a document that is not plain text."""
    return f"{source} is {FORMATS[suffix]} ({suffix}), not plain text: {SAVE_AS_TEXT} and give that file"


def skip_reason(path: Path) -> str:
    """Why a folder corpus leaves this file out, in words a writer can act on."""
    if path.suffix.lower() in FORMATS:
        return f"{FORMATS[path.suffix.lower()]}: {SAVE_AS_TEXT} to include it"
    return f"not a {' or '.join(TEXT_SUFFIXES)} file"
