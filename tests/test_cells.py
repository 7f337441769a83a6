"""The cell-activation picture, on a tiny trained model."""

import re
from pathlib import Path

import pytest
import torch

from assistant import load_model
from corpora import UserError
from kinds.charlstm.cells import cell_states, inside_quotes, pick_cells, render_html

from .conftest import run_cli

TEXT = 'He stopped. "Where are you going?" she asked.\n"Out," he said. "To the ship."\n'


def test_inside_quotes_marks_the_quoted_characters():
    marks = inside_quotes('a "bc" d')
    assert marks == [0, 0, 1, 1, 1, 0, 0, 0]


def test_cells_follow_the_text_and_the_picked_ones_track_quotes(trained_model: Path):
    model = load_model(trained_model, "cpu")
    states, read = cell_states(model.decoder, TEXT)
    assert read == TEXT
    layers, hidden = model.card.architecture["layers"], model.card.architecture["hidden"]
    assert states.shape == (layers, len(TEXT), hidden)
    assert states.abs().max() <= 1.0
    cells = pick_cells(states, TEXT, top=3)
    assert len(cells) == 3 and all(len(c.values) == len(TEXT) for c in cells)
    quotes = torch.tensor(inside_quotes(TEXT))
    # the first cell is the best quote tracker there is
    best = max(abs(float(torch.corrcoef(torch.stack([states[layer, :, i], quotes]))[0, 1]))
               for layer in range(layers) for i in range(hidden) if states[layer, :, i].std() > 0)
    assert abs(cells[0].quote_corr) == pytest.approx(best, abs=1e-4)
    page = render_html(TEXT, cells, "test")
    assert page.count("<h2>") == 3 and len(re.findall(r"<span ", page)) == 3 * len(TEXT)


def test_typographic_characters_are_read_and_unknown_ones_named(trained_model: Path):
    model = load_model(trained_model, "cpu")
    states, read = cell_states(model.decoder, "Wait\u2014now.")
    assert read == "Wait--now." and states.size(1) == len(read)
    with pytest.raises(UserError, match="never seen: '\u2603'"):
        cell_states(model.decoder, "\u2603 snow")
    with pytest.raises(UserError, match="between 2 and"):
        cell_states(model.decoder, "x" * 6000)


def test_cells_command_writes_a_page(trained_model: Path, tmp_path: Path):
    out = tmp_path / "cells.html"
    result = run_cli("cells", str(trained_model), "--top", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().count("<h2>") == 2 and "wrote" in result.stdout
    # by default it reads validation text with quotations in it (its own samples had none: every cell scored +0.00)
    correlations = [float(c) for c in re.findall(r"inside a quotation ([+-]\d\.\d\d)", result.stdout)]
    assert len(correlations) == 2 and all(abs(c) >= 0.05 for c in correlations), result.stdout


def test_the_default_passage_is_validation_text_with_quotations(trained_model: Path, tmp_path: Path):
    import json
    import shutil

    from corpora import load_corpus
    from kinds.charlstm.cells import quotes, validation_passage
    from kinds.charlstm.data import DOC_START, corpus_text

    card = load_model(trained_model, "cpu").card
    text = corpus_text(load_corpus(card.corpus.source)).replace(DOC_START, "\n\n")
    a, b = card.split["val"]
    assert quotes(text[a:b]) == 0  # the end of "The Eyes Have It" has no dialogue: a passage it trained on instead
    passage = validation_passage(card)
    assert passage is not None and len(passage) == 800 and quotes(passage) >= 2 and passage in text
    # a model whose validation text has quotations reads them
    moved = tmp_path / "m"
    shutil.copytree(trained_model, moved)
    config = json.loads((moved / "config.json").read_text())
    config["split"]["val"] = [0, len(text) // 2]
    (moved / "config.json").write_text(json.dumps(config))
    passage = validation_passage(load_model(moved, "cpu").card)
    assert passage is not None and quotes(passage) >= 2 and passage in text[: len(text) // 2]
