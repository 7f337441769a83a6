"""The open documents' text, kept in step with the editor: full and incremental changes.

LSP positions count lines and, within a line, code units of the encoding
agreed at initialization: UTF-16 unless the client offers another (pygls
negotiates it), so a character beyond the Basic Multilingual Plane, such as an
emoji, is two units and not one. Positions are turned into string offsets
here once, and requests for a document the server never opened are refused
instead of being answered from the file on disk.
"""

import re
from collections.abc import Sequence

from lsprotocol import types

from corpora import UserError

LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Documents:
    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self.encoding = types.PositionEncodingKind.Utf16

    def open(self, uri: str, text: str) -> None:
        self._texts[uri] = text

    def close(self, uri: str) -> None:
        self._texts.pop(uri, None)

    def change(self, uri: str, changes: Sequence[types.TextDocumentContentChangeEvent]) -> None:
        """Apply the changes in order, each to the text the previous one left (as the spec says)."""
        text = self.text(uri)
        for change in changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = (self.offset(text, p) for p in (change.range.start, change.range.end))
                if start > end:
                    raise UserError(f"{uri}: a change whose range ends before it starts")
                text = text[:start] + change.text + text[end:]
            else:
                text = change.text
        self._texts[uri] = text

    def text(self, uri: str) -> str:
        try:
            return self._texts[uri]
        except KeyError:
            raise UserError(f"{uri} is not open: send textDocument/didOpen first") from None

    def before(self, uri: str, position: types.Position) -> str:
        """The document's text before `position`."""
        text = self.text(uri)
        return text[: self.offset(text, position)]

    def offset(self, text: str, position: types.Position) -> int:
        """The index in `text` of an LSP position; a character past the end of its line means the line's end."""
        line_start = 0
        for _ in range(position.line):
            found = LINE_BREAK.search(text, line_start)
            if found is None:
                raise UserError(f"line {position.line} is past the end of the document ({text.count(chr(10)) + 1} lines)")
            line_start = found.end()
        found = LINE_BREAK.search(text, line_start)
        line_end = found.start() if found else len(text)
        units, index = 0, line_start
        while index < line_end and units < position.character:
            units += self._units(text[index])
            index += 1
        return index

    def _units(self, char: str) -> int:
        if self.encoding == types.PositionEncodingKind.Utf8:
            return len(char.encode("utf-8"))
        if self.encoding == types.PositionEncodingKind.Utf32:
            return 1
        return 2 if ord(char) > 0xFFFF else 1
