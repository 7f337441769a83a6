"""Looking inside trained models: eval against the n-gram baseline, the loss pictures, the evolution of samples."""

import json
import random
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from assistant import load_model
from assistant.evaluation import evaluate
from contract import modeldir
from corpora import UserError
from corpora.ngram import NGramModel
from finetune.checkpoint import read_jsonl
from finetune.overfit import memorizing_step
from finetune.plot import Curves, loss_picture

from .conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_ngram_baseline_counts_what_repeats_and_picks_n_on_validation():
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    text = " ".join(rng.choice(words) for _ in range(9000))
    shuffled = "".join(rng.sample(text, len(text)))
    model = NGramModel.fit(text[:40_000], text[40_000:46_000])
    assert model.loss(text[46_000:]) < 0.5 * model.loss(shuffled[:6000])  # words are predictable, shuffled letters not
    # n is the best on validation, and the search stopped two orders past it; validated on shuffled letters instead,
    # the same counts choose the unigram model
    assert model.order == min(model.scores, key=model.scores.get) == 3 and len(model.scores) == model.order + 2
    assert NGramModel.fit(text[:40_000], shuffled[:6000]).order == 1
    # a distribution: the probabilities of every next character (and of one never seen) sum to 1
    chars = [*sorted(set(text)), "\u2603"]
    total = sum(float(model._probabilities(model._ids("gamma del" + c))[-1]) for c in chars)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_eval_agrees_with_training_and_keeps_the_test_split_apart(quoted_model: Path, tmp_path: Path):
    model = load_model(f"{quoted_model}@best-val", "cpu")
    card = model.card
    val = evaluate(model, "val")
    assert val.model.per_unit == pytest.approx(card.result["best_val"], abs=1e-5)  # as the training loop measured it
    assert val.model.units == val.model.chars and val.n >= 3  # quoted speech is predictable from a few characters
    assert val.model.bits_per_char < val.baseline.bits_per_char + 1
    a, b = card.split["test"]
    assert card.split["train"][1] <= card.split["val"][0] < a < b and (b - a) / b == pytest.approx(0.05, abs=0.01)
    test = evaluate(model, "test")
    assert test.model.units == val.model.units and abs(test.model.per_unit - val.model.per_unit) < 0.1
    other = tmp_path / "other.txt"
    other.write_text('he said "never" \u2603 and went home ' * 200)
    elsewhere = evaluate(model, corpus=str(other))
    assert elsewhere.dropped == 200 and elsewhere.what == "corpus other"
    result = run_cli("eval", str(quoted_model), "--split", "test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"quoted@best-val, step {card.result['best_step']} on the test split")  # what it measured
    assert "test split" in result.stdout and "bits/char" in result.stdout and "-gram (Kneser-Ney)" in result.stdout
    with pytest.raises(UserError, match="--split must be one of val, test"):
        evaluate(model, "train")


def test_eval_of_a_gpt2_per_token_and_per_character(gpt2_base: Path, tmp_path: Path):
    model = load_model(gpt2_base, "cpu")
    split = model.card.split
    assert split["test_tokens"] in (split["val_tokens"], split["val_tokens"] + 1)  # the held-out tenth, halved
    val = evaluate(model, "val")
    assert val.model.unit == "token" and val.model.units == split["val_tokens"] - 1
    assert val.model.per_unit == pytest.approx(model.card.result["best_val"], rel=1e-4)
    assert 3 < val.model.chars / val.model.units < 5  # English: about 4 characters a token
    assert evaluate(model, "test").model.units >= val.model.units
    # a directory from before test splits validated on the whole held-out tenth: it loads, and has no test split
    old = tmp_path / "old"
    shutil.copytree(gpt2_base, old, ignore=shutil.ignore_patterns("last"))
    config = json.loads((old / "config.json").read_text())
    del config["split"]["test_tokens"]
    (old / "config.json").write_text(json.dumps(config))
    before = load_model(old, "cpu")
    assert evaluate(before, "val").model.units == split["val_tokens"] + split["test_tokens"] - 1
    with pytest.raises(UserError, match="trained before test splits were kept"):
        evaluate(before, "test")


def test_the_loss_pictures(quoted_model: Path, trained_model: Path, tmp_path: Path):
    card = modeldir.read(quoted_model)
    rows = read_jsonl(quoted_model / modeldir.HISTORY)
    curves = Curves.of(card, rows)
    assert curves.unit == "char" and curves.best_step == card.result["best_step"]
    for name in ("loss.png", "loss.svg"):
        loss_picture([curves], tmp_path / name)
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG
    svg = ET.parse(tmp_path / "loss.svg").getroot()
    ids = {g.get("id") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    assert {"step-train-quoted", "step-val-quoted", "elapsed-train-quoted", "elapsed-val-quoted"} <= ids
    out = tmp_path / "both.svg"
    result = run_cli("plot", str(quoted_model), str(trained_model), "-o", str(out))
    assert result.returncode == 0, result.stderr
    ids = {g.get("id") for g in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}g")}
    assert {"step-val-quoted", "step-val-tiny-pkd"} <= ids
    with pytest.raises(UserError, match=r"give a file name ending in \.png or \.svg"):
        loss_picture([curves], tmp_path / "loss.pdf")


def test_where_memorizing_began():
    def row(step: int, train: float | None, val: float) -> dict:
        return {"step": step, "train_smooth": train, "val_loss": val}

    # best at step 100; three evaluations later validation is up more than 1% and rising while training fell
    rows = [row(0, None, 4.0), row(50, 2.9, 2.5), row(100, 2.6, 2.3), row(150, 2.3, 2.36), row(200, 2.1, 2.35),
            row(250, 1.9, 2.40), row(300, 1.8, 2.45)]
    assert memorizing_step(rows, patience=3) == 250
    assert memorizing_step(rows[:5], patience=3) is None
    assert memorizing_step([{**r, "val_loss": 4 - r["step"] / 100} for r in rows], patience=3) is None  # still learning


def test_evolution_of_samples(quoted_model: Path, tmp_path: Path):
    page = tmp_path / "evolution.html"
    result = run_cli("evolution", str(quoted_model), "-o", str(page))
    assert result.returncode == 0, result.stderr
    samples = read_jsonl(quoted_model / modeldir.SAMPLES)
    assert [s["step"] for s in samples] == [40, 80, 120]
    assert all(f"step {s['step']} (train " in result.stdout for s in samples)
    html = page.read_text()
    assert html.count("<h2>") == 3 and html.index("step 40") < html.index("step 120")
