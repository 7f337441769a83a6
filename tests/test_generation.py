"""The generation API on a tiny real model."""

import warnings
from pathlib import Path

import pytest

from assistant import load_model
from assistant.generation import _until_stop
from corpora import UserError
from kinds.sampling import PromptWarning


def test_seeded_generation_is_deterministic(trained_model: Path):
    model = load_model(trained_model, device="cpu")
    a = model.generate("He looked at the", max_new_chars=120, seed=42, temperature=0.9)
    b = model.generate("He looked at the", max_new_chars=120, seed=42, temperature=0.9)
    c = model.generate("He looked at the", max_new_chars=120, seed=43, temperature=0.9)
    assert a == b and a != c and len(a) == 120
    stream = model.stream("He looked at the", max_new_chars=20)  # no seed given: one is drawn and reported
    text = "".join(stream)
    assert stream.result is not None and stream.result.text == text and not stream.result.cancelled
    assert model.generate("He looked at the", max_new_chars=20, seed=stream.result.seed) == text


def test_two_interleaved_streams_on_one_model_record_their_own_seeds(trained_model: Path):
    """The REPL and the editor server share one model object: a stream's seed and text are its own."""
    from assistant.samples.recording import record
    from assistant.samples.store import Store

    model = load_model(trained_model, device="cpu")
    first, second = model.stream("The", max_new_chars=30, seed=11), model.stream("He", max_new_chars=30, seed=22)
    a, b = [], []
    for _ in range(30):  # one piece each in turn
        a.append(next(first))
        b.append(next(second))
    for stream in (second, first):
        with stream:
            rest = list(stream)
            assert rest == []  # both were at their length
        assert stream.result is not None
        record(stream.result, "api")
    with Store() as store:
        rows = {s.prompt: s for s in store.find()}
    assert rows["The"].params["seed"] == 11 and rows["He"].params["seed"] == 22
    assert rows["The"].text == "".join(a) == model.generate("The", max_new_chars=30, seed=11)
    assert rows["He"].text == "".join(b) == model.generate("He", max_new_chars=30, seed=22)
    assert not hasattr(model, "last_seed") and not hasattr(model, "last_sample_id")


def test_unconditional_sample_and_streaming(trained_model: Path):
    model = load_model(trained_model)
    pieces = list(model.stream(max_new_chars=60, seed=1))
    assert len(pieces) > 1 and len("".join(pieces)) == 60
    assert "".join(pieces) == model.generate("", max_new_chars=60, seed=1)
    assert sum(c.isalpha() for c in "".join(pieces)) > 20  # it writes letters, not noise


def test_greedy_and_top_k_one_agree(trained_model: Path):
    model = load_model(trained_model)
    greedy = model.generate("The", max_new_chars=40, temperature=0)
    assert greedy == model.generate("The", max_new_chars=40, top_k=1, seed=5)
    assert greedy == model.generate("The", max_new_chars=40, top_p=1e-6, seed=6)


def test_stop_strings_end_before_the_stop(trained_model: Path):
    model = load_model(trained_model)
    full = model.generate("The", max_new_chars=300, seed=3)
    stop = full[100:103]
    cut = model.generate("The", max_new_chars=300, seed=3, stop=[stop])
    assert cut == full[: full.index(stop)]


def test_until_stop_never_half_prints_a_stop_string():
    pieces = iter(["Hello", " wor", "ld. The", " end", "!", "!"])
    out = list(_until_stop(pieces, 100, ("world",)))
    assert "".join(out) == "Hello " and out[-1] == " "  # "wor" was held back, never shown
    assert "".join(_until_stop(iter("abcdef"), 3, ())) == "abc"
    assert "".join(_until_stop(iter("abcdef"), 0, ())) == ""


def test_unknown_prompt_characters_warn_and_do_not_crash(trained_model: Path):
    model = load_model(trained_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = model.generate("\u2603 \u201cWell,\u201d said Ren\u00e9e", max_new_chars=20, seed=1)
    assert len(text) == 20
    assert [str(w.message) for w in caught if w.category is PromptWarning] == [
        "the model has never seen 1 character(s) of the prompt; dropped: '\u2603'"
    ]


def test_empty_stop_strings_and_tiny_temperatures_are_harmless(trained_model: Path):
    model = load_model(trained_model)
    assert len(model.generate("The", max_new_chars=30, seed=1, stop="")) == 30
    assert model.generate("The", max_new_chars=30, temperature=1e-39) == model.generate("The", max_new_chars=30, temperature=0)


def test_bad_parameters_and_unknown_models_are_user_errors(trained_model: Path):
    model = load_model(trained_model)
    with pytest.raises(UserError, match="temperature"):
        model.stream("x", temperature=-1)  # checked when called, before any text
    with pytest.raises(UserError, match="top-p"):
        model.generate("x", top_p=1.5)
    for bad in ({"temperature": float("nan")}, {"temperature": float("inf")}, {"top_p": float("nan")}):
        with pytest.raises(UserError):
            model.stream("x", **bad)
    with pytest.raises(UserError, match="no model 'missing'"):
        load_model("missing")
