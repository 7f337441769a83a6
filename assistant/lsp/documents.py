"""The open documents: pygls's workspace keeps them, in the position encoding it negotiated; these are its gaps.

pygls syncs every document (didOpen, didChange, didClose) and turns LSP
positions into string offsets, counting UTF-16 units (an emoji is two) or
whatever encoding the client chose. Three things it does not do as an editor
server should, each shown by tests/test_lsp.py:

- it answers for a document never opened by reading the file from disk; the
  writer's text is in the editor, not on disk, so such a request is refused
  (test_bad_messages_get_errors_and_the_server_lives, "not open");
- it takes a request's position past the last line as the end of the
  document, and a character past the end of the last line as one before it
  (rewriting the client's Position in place); here the first is refused and
  the second clamped to the end of the line (..._lives, "past the end";
  test_positions_count_utf16_units_and_clamp_to_the_line);
- it applies a change whose range ends before it starts, garbling the text
  without a word; here it is refused (..._lives, "a change whose range ends").
"""

from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from corpora import UserError


def opened(workspace: Workspace, uri: str) -> TextDocument:
    if unquote(uri) not in workspace.text_documents:  # pygls keys its documents by the unquoted URI
        raise UserError(f"{uri} is not open: send textDocument/didOpen first")
    return workspace.get_text_document(uri)


def offset(document: TextDocument, position: types.Position) -> int:
    """The index in `document.source` of an LSP position; a character past the end of its line means the line's end."""
    lines = document.lines
    if position.line < len(lines):
        line = lines[position.line].splitlines()[0]  # without its line break
        character = min(position.character, document.position_codec.client_num_units(line))
        return document.offset_at_position(types.Position(position.line, character))
    ends_with_break = not lines or lines[-1].splitlines()[0] != lines[-1]
    if position.line == len(lines) and ends_with_break:  # the empty line after the last line break
        return len(document.source)
    raise UserError(f"line {position.line} is past the end of the document ({len(lines) + ends_with_break} lines)")


def check_change(document: TextDocument, change: types.TextDocumentContentChangeEvent) -> None:
    """Refuse a change pygls would apply wrongly: a range past the end, or one that ends before it starts."""
    if isinstance(change, types.TextDocumentContentChangePartial):
        start, end = offset(document, change.range.start), offset(document, change.range.end)
        if start > end:
            raise UserError(f"{document.uri}: a change whose range ends before it starts")
