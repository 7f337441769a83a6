"""`assistant serve` with the writers' controls: the sampler chain's fields of both APIs, and token probabilities.

The parrot (a char model that writes one sentence over and over, "coffee" in
it) shows that the chain's fields reach the sampler: the same seed and
settings write over HTTP what `TextModel.generate` and `assistant generate`
write, and a banned phrase is never written. The tiny GPT-2 shows logprobs
on BPE tokens, cut by a stop string mid-token.
"""

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from assistant.api.logprobs import Handed, held
from assistant.api.service import Service
from assistant.generation import load_model
from contract.loop import Token

from . import test_serve
from .conftest import run_cli
from .test_serve import serving

PROMPT = "The robot"
SEEDS = range(4)
# OpenAI's names and ghostwriter's own, as a client sends them; and what `TextModel.stream` takes for them
OPENAI_CHAIN = {"presence_penalty": 0.3, "frequency_penalty": 0.1, "min_p": 0.05, "repetition_penalty": 1.1,
                "repeat_last_n": 64, "dry_multiplier": 0.8, "banned_strings": ["coffee"], "logit_bias": {"laughed": -3}}
STREAM_CHAIN = {"presence_penalty": 0.3, "frequency_penalty": 0.1, "min_p": 0.05, "repetition_penalty": 1.1,
                "repetition_range": 64, "dry_multiplier": 0.8, "ban": ("coffee",), "logit_bias": (("laughed", -3.0),)}


@pytest.fixture(scope="module")
def api(parrot: Path) -> Iterator[tuple[str, Service]]:
    """The server, on the parrot: test_serve's `url` and `client` fixtures speak to it."""
    with serving(str(parrot)) as found:
        yield found


url, client = test_serve.url, test_serve.client


def test_openai_chain_fields_write_what_generate_writes(client: openai.OpenAI, parrot: Path):
    model = load_model(parrot, "cpu")
    plain = [model.generate(PROMPT, max_new_tokens=100, seed=s, temperature=0.8) for s in SEEDS]
    assert sum("coffee" in t.lower() for t in plain) >= 2  # the parrot writes it without the ban
    for seed in SEEDS:
        raw = client.completions.with_raw_response.create(model="", prompt=PROMPT, max_tokens=100, seed=seed,
                                                          temperature=0.8, extra_body=OPENAI_CHAIN)
        text = raw.parse().choices[0].text
        assert text == model.generate(PROMPT, max_new_tokens=100, seed=seed, temperature=0.8, **STREAM_CHAIN)
        assert "coffee" not in text.lower() and "x-ghostwriter-not-applied" not in raw.headers
    cli = run_cli("generate", str(parrot), "-p", PROMPT, "--tokens", "100", "--seed", "0", "-t", "0.8",
                  "--presence-penalty", "0.3", "--frequency-penalty", "0.1", "--min-p", "0.05",
                  "--repetition-penalty", "1.1", "--repetition-range", "64", "--dry-multiplier", "0.8", "--ban", "coffee",
                  "--bias", "laughed=-3", "--no-echo", "--no-log")
    first = client.completions.create(model="", prompt=PROMPT, max_tokens=100, seed=0, temperature=0.8,
                                      extra_body=OPENAI_CHAIN)
    assert cli.returncode == 0 and cli.stdout == first.choices[0].text + "\n", cli.stderr


def test_kobold_chain_fields_write_what_generate_writes_with_logprobs(url: str, parrot: Path):
    model = load_model(parrot, "cpu")
    [k] = model.tokens("k")  # KoboldAI's logit_bias is by token id: a char model's are its characters'
    body = {"prompt": PROMPT, "max_length": 100, "sampler_seed": 2, "temperature": 0.8, "rep_pen": 1.1,
            "rep_pen_range": 64, "min_p": 0.05, "typical": 0.95, "dry_multiplier": 0.8, "dry_base": 1.75,
            "dry_allowed_length": 2, "dry_penalty_last_n": -1, "dry_sequence_breakers": ["\n", "."],
            "banned_tokens": ["coffee", ""], "logit_bias": {str(k): -2}, "logprobs": True, "rep_pen_slope": 1}
    expected = model.generate(PROMPT, max_new_tokens=100, seed=2, temperature=0.8, repetition_penalty=1.1,
                              repetition_range=64, min_p=0.05, typical_p=0.95, dry_multiplier=0.8,
                              dry_breakers=("\n", "."), ban=("coffee",), logit_bias=((k, -2.0),))
    answer = httpx.post(f"{url}/api/v1/generate", json=body, timeout=60)
    [result] = answer.json()["results"]
    assert result["text"] == expected and "coffee" not in expected and "x-ghostwriter-not-applied" not in answer.headers
    logprobs = result["logprobs"]
    assert "".join(t["token"] for t in logprobs["content"]) == "".join(logprobs["tokens"]) == expected
    for entry in logprobs["content"]:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 5
        assert entry["bytes"] == list(entry["token"].encode())
        if entry["logprob"] >= min(t["logprob"] for t in entry["top_logprobs"]):  # among the top: listed there
            assert entry["token"] in [t["token"] for t in entry["top_logprobs"]]
    with httpx.stream("POST", f"{url}/api/extra/generate/stream", json=body, timeout=60) as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert "".join(e["token"] for e in events) == expected
    assert [t for e in events for t in e.get("logprobs", {}).get("content", [])] == logprobs["content"]


def test_a_logit_bias_by_token_id_is_on_that_id_alone_at_every_step(client: openai.OpenAI, parrot: Path):
    [k] = load_model(parrot, "cpu").tokens("k")
    by_id = [client.completions.create(model="", prompt=PROMPT, max_tokens=100, seed=s, temperature=0.8,
                                       logit_bias={str(k): -100}).choices[0].text for s in SEEDS]
    assert not any("k" in text for text in by_id), by_id
    # a text is biased as a phrase, wherever a word can start: the k of "walked" is still written
    by_text = [client.completions.create(model="", prompt=PROMPT, max_tokens=100, seed=s, temperature=0.8,
                                         extra_body={"logit_bias": {"k": -100}}).choices[0].text for s in SEEDS]
    assert any("walked" in text for text in by_text) and not any(" k" in text for text in by_text), by_text


def test_logprobs_are_the_models_own_whole_and_streamed(gpt2_base: Path):
    model = load_model(gpt2_base, "cpu", "none")
    with model.stream(PROMPT, max_new_tokens=24, seed=5, stop="e", alternatives=3) as s:
        text = "".join(s)
    own = s.result.tokens
    with serving(str(gpt2_base)) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        ask = {"model": "", "prompt": PROMPT, "max_tokens": 24, "seed": 5, "stop": "e"}
        whole = client.completions.create(**ask, logprobs=3, echo=True).choices[0]
        chunks = [c.choices[0] for c in client.completions.create(**ask, logprobs=3, stream=True) if c.choices]
        chat_ask = {"model": "", "messages": [{"role": "assistant", "content": PROMPT}], "max_tokens": 24, "seed": 5,
                    "stop": "e", "logprobs": True, "top_logprobs": 3}
        chat = client.chat.completions.create(**chat_ask).choices[0]
        chat_chunks = [c.choices[0] for c in client.chat.completions.create(**chat_ask, stream=True) if c.choices]
        [rain] = model.tokens("rain")  # OpenAI's logit_bias is by id: "rain" and not " rain"
        biased = client.completions.create(model="", prompt=PROMPT, max_tokens=5, seed=1, logit_bias={str(rain): 100},
                                           logprobs=0).choices[0]
    assert biased.text == "rain" * 5 and biased.logprobs.tokens == ["rain"] * 5
    assert whole.text == PROMPT + text and "e" not in text
    lp = whole.logprobs
    assert "".join(lp.tokens) == text and lp.text_offset[0] == len(PROMPT)
    assert lp.text_offset == [len(PROMPT) + len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
    assert [math.exp(p) for p in lp.token_logprobs] == pytest.approx([t.probability for t in own], rel=1e-5)
    for token, top, chosen in zip(lp.tokens, lp.top_logprobs, own, strict=True):
        assert token in top and len(top) <= 4  # the 3 likeliest, and the one written
        assert [math.exp(top[a]) for a, _ in chosen.alternatives] == pytest.approx([p for _, p in chosen.alternatives])
    streamed = [c.logprobs for c in chunks if c.logprobs]
    assert "".join(c.text for c in chunks) == text
    assert [t for c in streamed for t in c.tokens] == lp.tokens
    assert [o for c in streamed for o in c.text_offset] == [o - len(PROMPT) for o in lp.text_offset]
    content = chat.logprobs.content
    assert chat.message.content == text and "".join(t.token for t in content) == text
    assert [t.logprob for t in content] == pytest.approx(lp.token_logprobs)
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3 and entry.bytes == list(entry.token.encode())
        if entry.logprob >= entry.top_logprobs[-1].logprob:
            assert entry.token in [t.token for t in entry.top_logprobs]
    assert [t.token for c in chat_chunks if c.logprobs for t in c.logprobs.content] == [t.token for t in content]


def test_streamed_tokens_go_with_the_piece_that_completes_them_and_the_last_is_cut_with_the_text():
    written = [Token(1, "ab", 0.5), Token(2, "", 0.1), Token(3, "cd", 0.2), Token(4, "ef", 0.3)]  # 2: half a character
    handed = Handed(written)
    assert [handed.piece(p) for p in ("a", "bc", "de")] == [(), tuple(written[:2]), (written[2],)]
    kept = held(written, "abcde")  # a stop string "f" cut the last token
    assert [t.text for t in kept] == ["ab", "", "cd", "e"] and kept[handed.given:] == (Token(4, "e", 0.3),)


@pytest.mark.parametrize("dialect", ["openai", "kobold"])
def test_an_out_of_range_chain_field_is_a_400_naming_it(url: str, dialect: str):
    route, base = {"openai": ("/v1/completions", {"prompt": PROMPT, "max_tokens": 5}),
                   "kobold": ("/api/v1/generate", {"prompt": PROMPT, "max_length": 5})}[dialect]
    for bad, param in (({"min_p": 1.5}, "min_p"), ({"typical": -1}, "typical"), ({"rep_pen": 0}, "rep_pen"),
                       ({"rep_pen_range": -2}, "rep_pen_range"), ({"presence_penalty": 3}, "presence_penalty"),
                       ({"dry_base": 0.5}, "dry_base"), ({"dry_multiplier": "a lot"}, "dry_multiplier"),
                       ({"dry_sequence_breakers": [""]}, "dry_sequence_breakers"), ({"banned_tokens": [3]}, "banned_tokens"),
                       ({"logit_bias": {"5": 500}}, "logit_bias['5']"), ({"logit_bias": [5]}, "logit_bias"),
                       ({"max_copy": 0}, "max_copy"), ({"logprobs": 21 if dialect == "openai" else 1}, "logprobs")):
        answer = httpx.post(f"{url}{route}", json={**base, **bad}, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (bad, answer.text)
    vocabulary = httpx.post(f"{url}{route}", json={**base, "logit_bias": {"99999": 1}}, timeout=30)
    assert vocabulary.status_code == 400 and "99999" in vocabulary.json()["error"]["message"]


@pytest.mark.filterwarnings("ignore::corpora.index.MemorizationWarning")  # the corpus missing, said once more
def test_the_copy_guard_over_http_and_a_one_line_400_without_the_corpus(client: openai.OpenAI, parrot: Path,
                                                                         tmp_path: Path):
    model = load_model(parrot, "cpu")
    guarded = client.completions.create(model="", prompt="", max_tokens=80, seed=1, temperature=0.8,
                                        extra_body={"max_copy": 30}).choices[0].text
    assert guarded == model.generate("", max_new_tokens=80, seed=1, temperature=0.8, max_copy=30)
    elsewhere = tmp_path / "parrot"
    shutil.copytree(parrot, elsewhere)
    card = json.loads((elsewhere / "config.json").read_text())
    card["corpus"].update(source=str(tmp_path / "gone.txt"), checksum="0" * 64)  # trained on a corpus not here
    (elsewhere / "config.json").write_text(json.dumps(card))
    with serving(str(elsewhere)) as (url, _):
        for route, body in (("/v1/completions", {"prompt": PROMPT, "max_tokens": 5, "max_copy": 50}),
                            ("/api/v1/generate", {"prompt": PROMPT, "max_length": 5, "max_copy": 50})):
            answer = httpx.post(f"{url}{route}", json=body, timeout=30)
            message = answer.json()["error"]["message"]
            assert answer.status_code == 400 and "not on this machine" in message and "\n" not in message, answer.text
        assert httpx.post(f"{url}/v1/completions", json={"prompt": PROMPT, "max_tokens": 5}).status_code == 200
