"""The ghostwriting evaluation: its measures on real text, and a tiny char model trained until it copies its corpus."""

from pathlib import Path

import pytest

from corpora import load_corpus
from finetune.ghostwriting.evaluate import better, split_text
from finetune.ghostwriting.prompting import distinct, prompt_following
from finetune.ghostwriting.style import passages

from .conftest import CORPORA, run_cli


def test_prompt_following_tells_a_real_continuation_from_another_prompts():
    """Validated on the author's own text: a passage's true continuation against the continuation of another."""
    _, held_out = split_text(load_corpus("pkd"))
    real, shuffled = [], []
    for seed in range(6):
        cut = passages(held_out, 500, 16, seed)
        prompts, continuations = [p[:200] for p in cut], [p[200:] for p in cut]
        real.append(prompt_following(prompts, continuations))
        shuffled.append(prompt_following(prompts, continuations[1:] + continuations[:1]))
    chance = 1 / 16
    assert sum(real) / len(real) >= 3 * chance and sum(shuffled) / len(shuffled) <= 1.5 * chance, (real, shuffled)
    assert prompt_following(["one prompt"], ["its continuation"]) is None  # nothing to compare with


def test_distinct_ngrams_fall_when_the_samples_repeat_themselves():
    varied = ["the robot opened the door", "a dog barked at the moon", "she read the letter twice"]
    assert distinct(varied, 2) == 1.0
    assert distinct(["the robot opened the door"] * 3, 2) == pytest.approx(1 / 3)
    assert distinct(["one"], 3) is None


def test_the_ghostwriting_checkpoint_is_the_best_style_that_does_not_copy():
    best = {"copying": 0.0, "style": 0.5, "val_loss": 2.0}
    assert better({"copying": 0.0, "style": 0.6, "val_loss": 2.5}, best, 0.05)  # writes more like the author
    assert not better({"copying": 0.25, "style": 0.9, "val_loss": 1.0}, best, 0.05)  # but copies
    assert better({"copying": 0.05, "style": 0.5, "val_loss": 1.9}, best, 0.05)  # a tie goes to the better loss
    assert not better({"copying": 0.0, "style": 0.5, "val_loss": 2.1}, best, 0.05)
    assert better({"copying": None, "style": None, "val_loss": 1.5}, {"copying": None, "style": None, "val_loss": 2.0}, 0.05)
    assert better({"copying": 0.0, "style": 0.0, "val_loss": 9.0}, None, 0.05)  # the first that does not copy


@pytest.fixture(scope="module")
def memorizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A char-LSTM far too big for its corpus (a few thousand characters), trained until it copies whole lines:
    --stop-on-copying ends the run once half its samples copy, two evaluations in a row."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    root = tmp_path_factory.mktemp("memorizer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        mp.setenv("ASSISTANT_CORPORA", str(CORPORA))
        corpus = root / "small.txt"
        corpus.write_bytes((CORPORA / "pkd" / "the-eyes-have-it.txt").read_bytes()[:12000])
        config = FinetuneConfig(corpus=str(corpus), model="char", out=root / "mem", max_steps=1500, eval_every=100,
                                sample_every=10_000, seed=7, eval_samples=8, copy_span=30, stop_on_copying=0.5,
                                ghostwriting_every=1,
                                options=CharOptions(size="tiny", hidden=256, batch_size=8, seq_len=32))
        summary = finetune(config, Reporter())
    return root / "mem", summary


def test_a_model_that_memorizes_is_seen_copying_and_its_earlier_checkpoint_is_kept(memorizer):
    from finetune.checkpoint import read_jsonl

    path, summary = memorizer
    rows = [r for r in read_jsonl(path / "history.jsonl") if "copying" in r]
    assert rows[0]["step"] == 0 and rows[0]["copying"] == 0 and len(rows) >= 5
    assert rows[-1]["copying"] >= 0.5 and rows[-2]["copying"] > 0.5  # what stopped it
    assert summary.stop_reason == "copying" and summary.steps < 1500
    assert rows[-1]["val_loss"] > summary.best_val  # validation loss rose while copying rose: memorizing
    assert rows[-1]["copied_span"] > rows[0]["copied_span"] + 20
    assert summary.ghostwriting_step is not None and summary.ghostwriting_step < summary.steps
    assert summary.ghostwriting["copying"] <= 0.05
    for key in ("style", "prompt_following", "distinct_2", "distinct_3"):
        assert key in rows[-1]
    assert {p.name for p in (path / "ghostwriting").iterdir()} == {"model.safetensors"}
    assert (path / "last" / "model.safetensors").is_file()


def test_checkpoints_load_by_name(memorizer):
    from assistant import load_model
    from corpora import UserError

    path, _ = memorizer
    default = load_model(path, "cpu")
    assert default.card.checkpoint == "ghostwriting"
    texts = {at: load_model(f"{path}@{at}", "cpu").generate("The", max_new_chars=80, seed=3)
             for at in ("ghostwriting", "best-val", "last")}
    assert default.generate("The", max_new_chars=80, seed=3) == texts["ghostwriting"]
    assert texts["last"] != texts["ghostwriting"]
    with pytest.raises(UserError, match="unknown checkpoint @newest"):
        load_model(f"{path}@newest", "cpu")


def test_the_report_and_the_sweep(memorizer, tmp_path: Path):
    from assistant import load_model
    from assistant.report import sweep
    from finetune.ghostwriting.evaluate import GhostwritingOptions

    path, _ = memorizer
    picture = tmp_path / "report.png"
    result = run_cli("report", str(path), "--out", str(picture))
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ghostwriting" in result.stdout and "best-val" in result.stdout and "copy" in result.stdout
    rows = {t: figures for t, p, figures in sweep(load_model(f"{path}@last", "cpu"), GhostwritingOptions(samples=8,
                                                                                                        min_span=30))
            if p is None}
    assert rows[0.5]["copying"] >= rows[1.2]["copying"] and rows[0.5]["copied_span"] > rows[1.2]["copied_span"]


def test_compare_prints_the_figures_of_both(memorizer):
    path, _ = memorizer
    result = run_cli("compare", f"{path}@last", f"{path}@best-val", "-p", "The", "-l", "40", "--seed", "1",
                     "--eval-samples", "4")
    assert result.returncode == 0, result.stderr
    assert "copying" in result.stdout and "prompts" in result.stdout and result.stdout.count("mem") >= 2


def test_with_enough_text_the_style_is_measured_and_a_trained_checkpoint_chosen(pkd_slice: Path, tmp_path: Path):
    """Two PKD stories (20,000 characters) are enough author text to fit the classifier, too little to trust it on the
    author's side: the run records both accuracies (on all of PKD it is over 95% on each, tests/test_style.py)."""
    from contract import modeldir
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    out = tmp_path / "styled"
    finetune(FinetuneConfig(corpus=str(pkd_slice), model="char", out=out, max_steps=300, eval_every=100,
                            sample_every=10_000, seed=7, eval_samples=8, ghostwriting_every=1,
                            options=CharOptions(size="tiny")), Reporter())
    card = modeldir.read(out)
    accuracy = card.extra["ghostwriting"]["style_accuracy"]
    assert accuracy["reference"] >= 0.95 and accuracy["author_passages"] >= 1 and 0 <= accuracy["author"] <= 1
    assert card.result["ghostwriting_step"] > 0
