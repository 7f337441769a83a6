"""assistant.tables: listings that fit a terminal of any width without cutting a value."""

import io

import pytest
from rich.console import Console

from assistant.tables import Column, fitted

COLUMNS = [Column("name", wrap=False), Column("status"), Column("created"), Column("steps", wrap=False, right=True),
           Column("continuation", preview=True)]
ROWS = [["manuscript-char@ghostwriting", "max_time, UNTRAINED (best at step 0)", "2026-12-13 13:37", "2151",
         "he leaped onto the probe, shouting that the door was open"],
        ["pkd", "interrupted", "2026-12-14 09:05", "17", "It was quite by accident I discovered"]]


@pytest.mark.parametrize("width", [56, 60, 76, 80, 120])
def test_a_fitted_table_keeps_every_word_of_every_value_it_shows(width: int):
    console = Console(file=io.StringIO(), width=width)
    table, hidden = fitted(console, COLUMNS, ROWS, optional=("created", "status"))
    assert table is not None
    console.print(table)
    text = console.file.getvalue()
    words = text.split()
    assert max(map(len, text.splitlines())) <= width
    shown = [c for c in COLUMNS if c.header not in hidden]
    assert (hidden == []) == (width >= 120) and (hidden == ["status", "created"]) == (width <= 60)
    for column in shown:
        assert column.header in words
        if column.preview:
            assert all(row[4][:5] in text for row in ROWS)  # a glimpse: its start
            continue
        for row in ROWS:
            value = row[COLUMNS.index(column)]
            assert all(words.count(w) >= 1 for w in (value.split() if column.wrap else [value]))
    assert hidden == [c.header for c in COLUMNS if c not in shown]


def test_a_table_whose_essential_columns_do_not_fit_is_none():
    table, hidden = fitted(Console(width=40), COLUMNS, ROWS, optional=("created",))
    assert table is None and hidden == ["created"]
