"""The generation API on a tiny real model."""

import warnings
from pathlib import Path

import pytest

from assistant import load_model
from assistant.generation import SENTENCE_END, STOP_AT, _until_end, _until_stop
from contract.sampling import PromptWarning
from corpora import UserError


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


def first_end(text: str, stop_at: str) -> str:
    """Where a writer would say the continuation's first sentence, line or paragraph ends, found the long way round."""
    begin = len(text) - len(text.lstrip())  # a continuation that starts with a line break goes on to the next line
    line = text.find("\n", begin)
    paragraph = next((i for i in range(begin, len(text)) if text[i] == "\n" and "\n" in text[i + 1 :]
                      and not text[i + 1 : text.index("\n", i + 1)].strip()), -1)
    sentence = next((m.end() for m in SENTENCE_END.finditer(text, begin)), -1)
    cut = {"line": line, "paragraph": paragraph,
           "sentence": min((c for c in (sentence, paragraph) if c >= 0), default=-1)}[stop_at]
    return text if cut < 0 else text[:cut]


def test_stop_at_ends_the_text_at_the_first_sentence_line_or_paragraph(trained_model: Path):
    model = load_model(trained_model, "cpu")
    cut = dict.fromkeys(STOP_AT, 0)
    for seed in range(3):
        full = model.generate("The robot said", max_new_chars=600, seed=seed, temperature=0.7)
        for stop_at in STOP_AT:
            with model.stream("The robot said", max_new_chars=600, seed=seed, temperature=0.7, stop_at=stop_at) as stream:
                pieces = list(stream)
            expected = first_end(full, stop_at)
            assert "".join(pieces) == expected and expected.strip(), (seed, stop_at, full)
            assert stream.result is not None and not stream.result.cancelled and stream.result.params.stop_at == stop_at
            cut[stop_at] += len(expected) < len(full)
    assert all(cut.values()), cut
    bounded = model.generate("The", max_new_chars=3, seed=1, stop_at="paragraph")  # the length still bounds it
    assert bounded == model.generate("The", max_new_chars=3, seed=1) and len(bounded) == 3
    with pytest.raises(UserError, match="stop-at must be one of sentence, line, paragraph"):
        model.stream("x", stop_at="word")


def test_a_sentence_ends_where_a_writer_would_say_it_does():
    def cut(text: str, stop_at: str = "sentence") -> str:
        return "".join(_until_end(iter(text), STOP_AT[stop_at]))

    assert cut(' "Yes!" he said to Mr. Jones. Then it rained.') == ' "Yes!" he said to Mr. Jones.'
    assert cut("He said nothing\n\nThen it rained.") == "He said nothing"  # no sentence runs past its paragraph
    assert cut("\n\nA new paragraph.\n\nAnother.", "paragraph") == "\n\nA new paragraph."  # not an empty one
    assert cut("A line\nand the next,\n  \nthen a paragraph", "paragraph") == "A line\nand the next,"
    assert cut("A line\nand the next", "line") == "A line"
    assert cut("no end at all ") == "no end at all "


def test_a_generation_of_empty_pieces_stops_at_its_token_bound(trained_model: Path):
    from assistant.generation import SPARE_TOKENS, TOKENS_PER_CHAR

    model = load_model(trained_model, "cpu")
    taken = []

    real = model.decoder

    class Silent:  # a tokenizer whose tokens all decode to nothing: no piece ever adds a character
        end_id = None

        def start(self, prompt, state=None, keep=0):
            cursor = real.start(prompt, state, keep)
            feed = cursor.feed
            cursor.feed = lambda token: taken.append(1) or feed(token)
            taken.append(1)  # the first token needs no feed
            return cursor

        def decode(self, ids):
            return ""

    model.decoder = Silent()
    assert model.generate("The", max_new_chars=10) == "" and len(taken) == TOKENS_PER_CHAR * 10 + SPARE_TOKENS
    taken.clear()
    assert model.generate("The", max_new_chars=10, max_new_tokens=5, stop_at="sentence") == "" and len(taken) == 5


def test_the_char_lstm_fast_step_writes_what_the_plain_path_writes(trained_model: Path):
    import torch

    from kinds.charlstm.model import CharLSTM, CharLSTMConfig

    torch.manual_seed(0)
    models = [load_model(trained_model, "cpu").decoder.model,  # a trained 2-layer model, and 1 and 3 layers
              *(CharLSTM(CharLSTMConfig(vocab_size=40, layers=n, hidden=32, dropout=0.0)).eval() for n in (1, 3))]
    for model in models:
        for temperature in (0.0, 1.0):
            runs = [model.generate_ids([1, 2, 3, 4, 5], torch.Generator().manual_seed(3), temperature, fast=fast)
                    for fast in (True, False)]
            fast, plain = ([next(ids) for _ in range(300)] for ids in runs)
            assert fast == plain


def writes_what_a_fresh_run_writes(model) -> None:
    """A session's continuations, as a writer types, edits and asks again, are a fresh run's with the same seed."""
    session = model.session()
    text = "The robot looked at the man. Then it said"
    prompts = [text, text + " t", text + " th", text + " th", "A" + text[1:] + " th", text[:20], text + " that"]
    for i, prompt in enumerate(prompts):
        kwargs = {"max_new_chars": 40, "seed": i % 3, "temperature": 0.9}
        assert model.generate(prompt, session=session, **kwargs) == model.generate(prompt, **kwargs), prompt
    # a second stream started while one has the session goes without it, and writes the same
    first = model.stream(text, max_new_chars=30, seed=4, session=session)
    next(first)
    assert model.generate(text, max_new_chars=30, seed=4, session=session) == model.generate(text, max_new_chars=30,
                                                                                             seed=4)
    first.close()


def test_a_char_session_writes_what_a_fresh_run_writes(trained_model: Path):
    model = load_model(trained_model, "cpu")
    writes_what_a_fresh_run_writes(model)
    assert model.session()._state is not None  # the char-LSTM's state is kept


def test_a_gpt2_session_writes_what_a_fresh_run_writes(gpt2_base: Path):
    model = load_model(gpt2_base, "cpu")
    writes_what_a_fresh_run_writes(model)
    session = model.session()
    model.generate("ROMEO: my lord", max_new_tokens=5, seed=1, session=session)
    cache, fed = session._state, []
    feed = cache.feed
    cache.feed = lambda ids: fed.append(len(ids)) or feed(ids)
    model.generate("ROMEO: my lord, the", max_new_tokens=5, seed=1, session=session)
    assert fed == [2, 1, 1, 1, 1]  # the prompt's shared tokens were kept: only "," and " the" were fed
