"""The sampler chain, banned phrases, the copy guard and rewinding, on hand-computed logits and tiny real models."""

import math
import re
from pathlib import Path

import pytest
import torch

from assistant.generation import load_model
from contract import processors as p
from contract.processors import ORDER, Context, chain
from contract.sampling import Sampling
from corpora import UserError

NEG = float("-inf")


def close(a: torch.Tensor, b: list[float]) -> bool:
    return torch.allclose(a, torch.tensor(b, dtype=torch.float32), atol=1e-5)


def test_each_processor_matches_a_hand_computed_vector():
    x = torch.tensor([2.0, -1.0, 0.5, 3.0])
    assert close(p.repetition_penalty(x, [0, 1, 1], 2.0), [1.0, -2.0, 0.5, 3.0])
    # presence 0.5 once, frequency 0.25 per time: token 0 once (-0.75), token 1 twice (-1.0)
    assert close(p.presence_frequency(x, [0, 1, 1], 0.5, 0.25), [1.25, -2.0, 0.5, 3.0])
    # ... 1 2 | 3 1 2: the last two ids were followed by 3 before; a repeat of 2 at allowed length 2 costs 1 * 2**0
    assert close(p.dry_penalty(torch.zeros(5), [1, 2, 3, 1, 2], 1.0, 2.0, 2, frozenset()), [0, 0, 0, -1, 0])
    assert close(p.dry_penalty(torch.zeros(5), [1, 2, 3, 1, 2], 1.0, 2.0, 1, frozenset()), [0, 0, 0, -2, 0])
    # a breaker inside the repeat cuts it to one token, under the allowed length
    assert close(p.dry_penalty(torch.zeros(5), [1, 2, 3, 1, 2], 1.0, 2.0, 2, frozenset({1})), [0] * 5)
    assert p.top_k_filter(torch.tensor([1.0, 3.0, 2.0, 0.0]), 2).tolist() == [NEG, 3.0, 2.0, NEG]
    probs = torch.tensor([0.5, 0.3, 0.2]).log()
    # top-p 0.7: 0.5 does not cover it, 0.5 + 0.3 does; the third goes
    assert torch.isinf(p.top_p_filter(probs, 0.7)).tolist() == [False, False, True]
    # min-p 0.2 of the likeliest 0.5: under 0.1 goes
    assert torch.isinf(p.min_p_filter(torch.tensor([0.5, 0.3, 0.15, 0.05]).log(), 0.2)).tolist() == [False] * 3 + [True]
    # typical: entropy 1.0297 nats; surprises 0.693, 1.204, 1.609 are 0.337, 0.174, 0.580 away: 0.3 first, then 0.5
    assert torch.isinf(p.typical_filter(probs, 0.5)).tolist() == [False, False, True]
    assert torch.isinf(p.typical_filter(probs, 0.25)).tolist() == [True, False, True]


def test_the_chain_runs_in_its_documented_order(trained_model: Path):
    model = load_model(trained_model, "cpu")
    every = Sampling(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05, typical_p=0.9, repetition_penalty=1.2,
                     presence_penalty=0.1, dry_multiplier=0.8, logit_bias=(("rain", 2.0),))
    names = [name for name, _ in chain(every, model.decoder, guard=lambda x, c: x)]
    assert names == list(ORDER)
    assert [name for name, _ in chain(Sampling(), model.decoder)] == []  # all off: nothing runs


def test_a_logit_bias_given_as_text_reaches_the_tokens(trained_model: Path):
    decoder = load_model(trained_model, "cpu").decoder
    bias = p.LogitBias((("rain", 5.0),), decoder)
    r, a = decoder.encode("r")[0], decoder.encode("a")[0]
    after_space = bias(torch.zeros(len(decoder.token_texts())), Context(decoder.encode("the r"), "the r"[:-1]))
    assert after_space[r] == 5.0  # a word can start here
    mid_word = bias(torch.zeros(len(decoder.token_texts())), Context(decoder.encode("the r"), "the r"))
    assert mid_word[a] == 5.0 and mid_word[r] == 0.0  # "r" written: its "a" next; no word starts mid-word


@pytest.mark.parametrize("setting", [{"min_p": 1.5}, {"typical_p": 0}, {"repetition_penalty": 0}, {"dry_base": 0.5},
                                     {"presence_penalty": 3}, {"max_copy": 0}, {"ban": ("  ",)},
                                     {"logit_bias": ((10**6, 1.0),)}])
def test_an_out_of_range_setting_is_one_line(trained_model: Path, setting: dict):
    model = load_model(trained_model, "cpu")
    with pytest.raises(UserError) as e:
        model.stream("The", **setting)
    assert "\n" not in str(e.value)


def test_a_banned_phrase_is_never_written_and_never_shown(parrot: Path):
    model = load_model(parrot, "cpu")
    free = [model.generate("The robot", max_new_chars=120, seed=s, temperature=0.8) for s in range(20)]
    assert sum("coffee" in t.lower() for t in free) >= 10  # the parrot writes it often
    for seed in range(200):
        with model.stream("The robot", max_new_chars=120, seed=seed, temperature=0.8, ban=("coffee", "kitchen")) as s:
            shown = "".join(s)
        assert shown == s.result.text
        assert not re.search(r"(?<!\w)(coffee|kitchen)(?!\w)", shown, re.IGNORECASE), shown


def test_the_copy_guard_keeps_every_span_under_its_limit(parrot: Path):
    from corpora.index import corpus_index

    model = load_model(parrot, "cpu")
    card = model.card
    index = corpus_index(card.corpus.name, card.corpus.source, card.corpus.checksum)
    free = [model.generate("", max_new_chars=200, seed=s, temperature=0.8) for s in range(20)]
    assert sum(index.longest_span(t).length > 50 for t in free) >= 15  # it copies without the guard
    for seed in range(200):
        text = model.generate("", max_new_chars=120, seed=seed, temperature=0.8, max_copy=50)
        assert index.longest_span(text).length <= 50, text


def test_with_the_copy_guard_on_the_rest_of_the_chain_still_applies(parrot: Path):
    """The guard runs between the logit bias and the rest of the compiled chain: both parts still act."""
    from corpora.index import corpus_index

    model = load_model(parrot, "cpu")
    card = model.card
    index = corpus_index(card.corpus.name, card.corpus.source, card.corpus.checksum)
    for seed in range(20):
        text = model.generate("", max_new_chars=120, seed=seed, temperature=0.8, max_copy=50, top_k=5,
                              logit_bias=(("coffee", -100.0),))
        assert "coffee" not in text.lower() and index.longest_span(text).length <= 50, text


def test_the_copy_guard_without_the_corpus_says_so_in_one_line(parrot: Path, tmp_path: Path):
    import shutil

    moved = tmp_path / "parrot"
    shutil.copytree(parrot, moved)
    (parrot.parent / "parrot.txt").rename(tmp_path / "away.txt")
    try:
        with pytest.raises(UserError, match="not on this machine") as e:
            load_model(moved, "cpu").stream("", max_copy=50)
        assert "\n" not in str(e.value)
    finally:
        (tmp_path / "away.txt").rename(parrot.parent / "parrot.txt")


def test_the_chain_decodes_gpt2s_token_texts_only_for_what_needs_them(gpt2_base: Path):
    """Decoding 50,257 token texts takes a second: a first suggestion should not wait for it unless a bias or DRY
    asks for the texts."""
    model = load_model(gpt2_base, "cpu", "none")
    model.generate("The robot", max_new_tokens=3, seed=0, temperature=0.8, top_k=40, min_p=0.05,
                   repetition_penalty=1.2, frequency_penalty=0.1)
    assert model.decoder._texts is None
    model.generate("The robot", max_new_tokens=3, seed=0, dry_multiplier=0.8)
    assert len(model.decoder._texts) == 50257


def test_after_a_rewind_the_logits_are_a_fresh_runs(trained_model: Path, gpt2_base: Path):
    for model in (load_model(trained_model, "cpu"), load_model(gpt2_base, "cpu")):
        decoder = model.decoder
        ids = decoder.encode(" and the robot said")
        cursor = decoder.start("Once", keep=8)
        for token in ids:
            cursor.feed(token)
        back = cursor.rewind(3)
        fresh = decoder.start("Once")
        for token in ids[:-3]:
            last = fresh.feed(token)
        assert torch.allclose(back, last, atol=1e-4)
        again = cursor.feed(ids[-3])  # and it goes on from there as a fresh run would
        assert torch.allclose(again, fresh.feed(ids[-3]), atol=1e-4)


def test_tokens_carry_their_probabilities_and_alternatives(gpt2_base: Path):
    model = load_model(gpt2_base, "cpu")
    with model.stream("The", max_new_tokens=5, seed=1, alternatives=3) as s:
        text = "".join(s)
    tokens = s.result.tokens
    assert "".join(t.text for t in tokens) == text and len(tokens) == 5
    for t in tokens:
        assert len(t.alternatives) == 3 and 0 < t.probability <= 1
        assert math.isclose(t.alternatives[0][1], max(a for _, a in t.alternatives))


def test_every_setting_is_kept_with_the_result(trained_model: Path):
    model = load_model(trained_model, "cpu")
    settings = {"min_p": 0.05, "repetition_penalty": 1.1, "repetition_range": 64, "dry_multiplier": 0.8,
                "ban": ("robot",), "logit_bias": (("rain", 1.5),)}
    first = model.stream("The", max_new_chars=80, seed=4, **settings)
    text = "".join(first)
    params = first.result.params
    assert all(getattr(params, k) == v for k, v in settings.items())
    import json
    from dataclasses import asdict

    again = json.loads(json.dumps(asdict(params)))  # as the store keeps it
    assert model.generate("The", **again) == text


def test_the_repl_sets_any_setting_and_branches_from_an_alternative(trained_model: Path, isolated_home: Path, capsys):
    import shutil

    from assistant.repl import Repl
    from assistant.samples.store import Store

    shutil.copytree(trained_model, isolated_home / "models" / "pkd-tiny")
    repl = Repl(None, min_span=50)
    for line in ("/set min-p 0.05", "/set ban robot|android", "/set dry-multiplier 0.8", "/seed 3", "/length 40", "The"):
        repl.handle(line)
    with pytest.raises(UserError, match="min-p must be in"):
        repl.handle("/set min-p 2")
    with pytest.raises(UserError, match="/set takes one of"):
        repl.handle("/set min_q 2")
    repl.handle("/settings")
    shown = capsys.readouterr().out
    assert "min-p: 0.05" in shown and "ban: ('robot', 'android')" in shown
    parent = repl.last_sample_id
    repl.handle("/probs")
    assert "alternatives" in capsys.readouterr().out
    chosen = repl.last.tokens[2].alternatives[1][0]
    repl.handle("/branch 2 1")
    with Store() as store:
        child = store.get(repl.last_sample_id)
        first = store.get(parent)
    assert child.prompt == "The" + first.text[:2] + chosen
    assert child.params["branch"] == {"parent": parent, "token": 2, "alternative": chosen}
    assert child.params["min_p"] == 0.05 and child.params["ban"] == ["robot", "android"]  # every setting is kept


def test_generate_takes_the_chain_on_the_command_line(parrot: Path):
    from .conftest import run_cli

    args = ["generate", str(parrot), "-p", "The robot", "-l", "100", "--seed", "1", "--no-log"]
    plain = run_cli(*args)
    banned = run_cli(*args, "--ban", "coffee", "--min-p", "0.05", "--dry-multiplier", "0.8", "--probs", "3")
    assert plain.returncode == 0 and banned.returncode == 0, banned.stderr
    assert "coffee" in plain.stdout and "coffee" not in banned.stdout.lower()
    assert "alternatives" in banned.stderr  # the --probs table
    bad = run_cli(*args, "--bias", "rain")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "TEXT=NUMBER" in bad.stderr


def test_the_editor_takes_the_same_settings():
    from assistant.lsp.continuation import params
    from assistant.lsp.settings import Settings

    settings = Settings().updated({"ghostwriter": {"sampling": {"minP": 0.05, "ban": ["suddenly"], "maxCopy": 50,
                                                                "logitBias": [["rain", 2]]}}})
    p = params(settings, 60, "sentence")
    assert (p.min_p, p.ban, p.max_copy, p.logit_bias) == (0.05, ("suddenly",), 50, (("rain", 2),))
    for bad in ({"minQ": 1}, {"minP": 7}):
        with pytest.raises(UserError) as e:
            Settings().updated({"sampling": bad})
        assert "\n" not in str(e.value)


def test_the_copy_guard_checks_gpt2_tokens_text(gpt2_base: Path):
    from corpora.index import corpus_index

    model = load_model(gpt2_base, "cpu")
    card = model.card
    index = corpus_index(card.corpus.name, card.corpus.source, card.corpus.checksum)
    free = [model.generate("The", max_new_tokens=30, seed=s) for s in range(10)]
    assert max(index.longest_span(t).length for t in free) > 12  # common phrases of its corpus, unguarded
    for seed in range(50):
        text = model.generate("The", max_new_tokens=30, seed=seed, max_copy=12)
        assert index.longest_span(text).length <= 12, text


def test_a_model_keeps_a_writers_settings_as_its_defaults(trained_model: Path, isolated_home: Path):
    import shutil

    from assistant.cli.models import models_set

    shutil.copytree(trained_model, isolated_home / "models" / "pkd-tiny")
    models_set("pkd-tiny", min_p=0.05, ban=["robot"])
    models_set("pkd-tiny", dry_multiplier=0.8)  # added to what it keeps
    model = load_model("pkd-tiny", "cpu")
    with model.stream("The", max_new_chars=20, seed=1) as s:
        "".join(s)
    assert (s.result.params.min_p, s.result.params.ban, s.result.params.dry_multiplier) == (0.05, ("robot",), 0.8)
    with model.stream("The", max_new_chars=20, seed=1, min_p=0.2) as s:  # what a front end is told wins
        "".join(s)
    assert s.result.params.min_p == 0.2
    with pytest.raises(UserError):
        models_set("pkd-tiny", min_p=3.0)
    models_set("pkd-tiny", clear=True)
    assert load_model("pkd-tiny", "cpu").card.extra["sampling"] == {}
