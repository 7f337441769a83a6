"""Tiny but real word-processor files, built the way their programs lay them out, for the format checks.

A .docx is a zip holding `word/document.xml`; an EPUB and an OpenDocument
text are zips whose first member, `mimetype`, is stored uncompressed and names
the format; a PDF starts with `%PDF-`, an RTF file with `{\\rtf1`. Each one
holds a sentence of prose, so that only its format, not a lack of text, can
make it fail.
"""

import io
import zipfile

PROSE = "The robot said it had dreamed of electric sheep."


def _zip(members: dict[str, str], mimetype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype is not None:
            archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def document(suffix: str) -> bytes:
    """The bytes of a one-sentence document in the format with this suffix (.docx, .epub, .odt, .pdf, .rtf)."""
    if suffix == ".docx":
        return _zip({"[Content_Types].xml": '<?xml version="1.0"?><Types/>',
                     "word/document.xml": f"<w:document><w:body><w:p><w:r><w:t>{PROSE}</w:t></w:r></w:p></w:body></w:document>"})
    if suffix == ".epub":
        return _zip({"META-INF/container.xml": '<?xml version="1.0"?><container/>',
                     "OEBPS/chapter1.xhtml": f"<html><body><p>{PROSE}</p></body></html>"}, "application/epub+zip")
    if suffix == ".odt":
        return _zip({"content.xml": f"<office:document-content><text:p>{PROSE}</text:p></office:document-content>"},
                    "application/vnd.oasis.opendocument.text")
    if suffix == ".pdf":
        return f"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nBT ({PROSE}) Tj ET\n%%EOF\n".encode("latin-1")
    if suffix == ".rtf":
        return ("{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}}\\f0\\fs24 " + PROSE + "\\par}").encode("ascii")
    raise ValueError(suffix)


FORMATS = (".docx", ".epub", ".odt", ".pdf", ".rtf")
