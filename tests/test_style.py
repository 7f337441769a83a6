"""The style classifier on real corpora: Dick against Austen and Shakespeare, held-out text, shuffled words."""

from pathlib import Path

import pytest

from corpora import UserError, load_corpus
from finetune.ghostwriting.style import StyleClassifier, build_classifier, passages, shuffle_words
from kinds.charlstm.data import corpus_text, split_points

from .conftest import CORPORA


@pytest.fixture(scope="module")
def pkd(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """PKD's text cut as a char model cuts it: its training part (first 90%) and the rest, held out."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_CORPORA", str(CORPORA))
        mp.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
        text = corpus_text(load_corpus("pkd", allow_download=False))
    end = split_points(len(text))["train"][1]
    return text[:end], text[end:]


@pytest.fixture(scope="module")
def pkd_style(pkd: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[StyleClassifier, dict]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_CORPORA", str(CORPORA))
        mp.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
        return build_classifier(*pkd, "pkd", seed=0)


def test_passages_are_cut_at_words_about_the_length_asked_and_fixed_by_the_seed(pkd: tuple[str, str]):
    text = pkd[1]
    for length in (300, 400, 500):
        cut = passages(text, length, 40, seed=3)
        assert len(cut) == 40
        assert cut == passages(text, length, 40, seed=3)
        assert cut != passages(text, length, 40, seed=4)
        longest_word = max(len(w) for w in text.split())
        start = 0
        for p in cut:
            at = text.index(p, start)  # in text order, never overlapping
            assert at == 0 or text[at - 1].isspace()
            assert at + len(p) == len(text) or text[at + len(p)].isspace()
            assert not p[0].isspace() and not p[-1].isspace()
            assert length <= len(p) <= length + longest_word
            start = at + len(p)
    everything = passages(text, 400, 10_000, seed=0)
    assert 0.95 * len(text) / 400 < len(everything) <= len(text) / 400  # the whole text, bar word ends and spaces
    assert passages("too short", 400, 5, seed=0) == []
    with pytest.raises(ValueError):
        passages(text, 0, 5, seed=0)


def test_shuffled_words_keep_the_words_not_the_order():
    text = "It was a truth, universally acknowledged: the wub spoke.\nPeterson stared."
    shuffled = shuffle_words(text, seed=1)
    assert sorted(shuffled.split(" ")) == sorted(text.split()) and shuffled != " ".join(text.split())
    assert shuffled == shuffle_words(text, seed=1)


def test_dick_is_told_from_austen_and_shakespeare_on_held_out_passages(pkd_style: tuple[StyleClassifier, dict]):
    _, report = pkd_style
    assert report["reference_corpora"] == ["austen", "shakespeare"]  # never the author's own corpus
    assert report["left_out_references"] == []
    assert report["author_passages"] >= 100 and report["reference_passages"] >= 100
    assert report["author"] >= 0.95 and report["reference"] >= 0.95 and report["overall"] >= 0.95, report
    assert report["shuffled_author_share"] <= 0.1, report


def test_held_out_dick_scores_high_and_the_same_words_shuffled_score_low(pkd: tuple[str, str],
                                                                        pkd_style: tuple[StyleClassifier, dict]):
    classifier, _ = pkd_style
    held_out = [p for length in (300, 400, 500) for p in passages(pkd[1], length, 32, seed=11)]
    shuffled = [shuffle_words(p, seed=i) for i, p in enumerate(held_out)]
    assert classifier.author_share(held_out) >= 0.9
    # Shuffled, the passages keep every word and character of Dick's and lose only the order: measured 0-2%.
    assert classifier.author_share(shuffled) <= 0.1
    scores = classifier.scores(held_out)
    assert len(scores) == len(held_out) and all(0.0 <= s <= 1.0 for s in scores)
    assert sum(scores) / len(scores) > 0.5 > sum(classifier.scores(shuffled)) / len(shuffled)
    accuracy = classifier.accuracy(held_out, shuffled)
    assert accuracy["author_passages"] == accuracy["reference_passages"] == len(held_out)
    assert accuracy["overall"] >= 0.9
    assert classifier.accuracy(held_out, [])["reference"] is None


def test_without_reference_corpora_the_style_is_not_measured(pkd: tuple[str, str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASSISTANT_CORPORA", str(tmp_path))  # nothing there, and the cache is empty
    with pytest.raises(UserError) as error:
        build_classifier(*pkd, "pkd")
    assert "austen" in str(error.value) and "\n" not in str(error.value)


def test_extra_reference_alone_is_enough_and_partly_held_out(pkd: tuple[str, str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASSISTANT_CORPORA", str(tmp_path))
    shakespeare = (CORPORA / "tinyshakespeare" / "input.txt").read_text()
    extra = passages(shakespeare, 400, 200, seed=0)
    _, report = build_classifier(*pkd, "pkd", extra_reference=extra)
    assert report["reference_corpora"] == [] and report["extra_reference"] == 200
    assert report["reference_passages"] == 40  # every fifth one, kept out of the fit
    assert report["author"] >= 0.95 and report["reference"] >= 0.95, report


def test_too_little_author_text_is_a_user_error(pkd: tuple[str, str]):
    with pytest.raises(UserError, match=r"^too little text by pkd[^\n]*$"):
        build_classifier(pkd[0][:5000], pkd[1], "pkd")


def test_a_reference_corpus_holding_the_authors_own_text_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A writer's manuscript taken from Emma: Austen's novels would teach the classifier that Emma is not the author.
    The corpus sharing its sentences is left out and named; the others stay."""
    monkeypatch.setenv("ASSISTANT_CORPORA", str(CORPORA))
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path))
    emma = (CORPORA / "austen" / "emma.txt").read_text(encoding="utf-8-sig")
    _, report = build_classifier(emma[100_000:400_000], emma[400_000:440_000], "manuscript")
    assert report["left_out_references"] == ["austen"] and report["reference_corpora"] == ["pkd", "shakespeare"]
    assert report["author"] >= 0.9, report
