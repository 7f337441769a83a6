"""Tables that fit the terminal without cutting a value: every listing of the command line and the REPL.

Rich shrinks a table that is too wide by narrowing its widest columns, below
the longest word if need be, so that "2026-12-13" prints as "2026-12-1" and a
header loses a letter. Here the widths are worked out before rich sees the
table: each column gets at least its longest word (a column that must not wrap,
its longest value), the room left goes first to the columns that then need
not wrap at all, and when even that does not fit, the least needed columns are
left out, in an order the caller gives, and the caller says which. A preview
column (the start of a sample's text) takes whatever room is left and is cut
with an ellipsis, since it is a glimpse, not a value.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

PREVIEW_MIN = 24  # the narrowest a preview column gets while columns that may go are left to make room for it
PREVIEW_LEAST = 8  # ... and once they are gone


@dataclass(frozen=True)
class Column:
    """One column: its header, whether its values may wrap between words, whether it is the preview."""

    header: str
    wrap: bool = True
    preview: bool = False
    right: bool = False  # figures line up on the right


def fitted(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str | Text]],
           optional: Sequence[str] = (), **table_options: object) -> tuple[Table | None, list[str]]:
    """The table at `console`'s width with every value whole, and the headers of the columns left out to fit.

    `optional` names the columns that may be left out, the first to go first; None for the table when the others
    do not fit even alone.
    """
    shown = list(columns)
    dropping = [c for name in optional for c in columns if c.header == name]
    while True:
        cells = [[row[columns.index(c)] for c in shown] for row in rows]
        table = _table(shown, cells, console.width, table_options, PREVIEW_MIN if dropping else PREVIEW_LEAST)
        if table is not None or not dropping:
            return table, [c.header for c in columns if c not in shown]
        shown.remove(dropping.pop(0))


def _table(columns: list[Column], rows: list[list[str | Text]], width: int, options: dict, glimpse: int) -> Table | None:
    cells = [[Text(c.header), *(Text(row[i]) if isinstance(row[i], str) else row[i] for row in rows)]
             for i, c in enumerate(columns)]
    longest = [max((line.cell_len for t in column for line in t.split()), default=1) for column in cells]
    least = [max(glimpse, len(c.header)) if c.preview else
             max((len(word) for t in column for word in (t.plain.split() if c.wrap else [t.plain])), default=1)
             for c, column in zip(columns, cells, strict=True)]
    least = [min(a, b) for a, b in zip(least, longest, strict=True)]
    table = Table(*(c.header for c in columns), **{"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True,
                                                   **options})  # type: ignore[arg-type]
    for column, c in zip(table.columns, columns, strict=True):
        column.no_wrap = not c.wrap or c.preview
        column.overflow = "ellipsis" if c.preview else "fold"
        column.justify = "right" if c.right else "left"
    widths = _widths(table, least, longest, width)
    if widths is None:
        return None
    for column, w in zip(table.columns, widths, strict=True):
        column.width = w
    for row in rows:
        table.add_row(*row)
    return table


def _widths(table: Table, least: list[int], longest: list[int], width: int) -> list[int] | None:
    """Each column's width: its least, then the room left to the columns it lets stay on one line (the nearest first),
    then to the preview or the others; None when the least widths do not fit."""
    for column, w in zip(table.columns, least, strict=True):
        column.width = w
    needed = Measurement.get(Console(width=1 << 16), Console(width=1 << 16).options, table).minimum
    room = width - needed
    if room < 0:
        return None
    widths = list(least)
    for i in sorted(range(len(widths)), key=lambda i: longest[i] - least[i]):
        grow = min(room, longest[i] - widths[i])
        widths[i] += grow
        room -= grow
    return widths
