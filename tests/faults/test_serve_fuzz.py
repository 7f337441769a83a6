"""The HTTP API under fuzzing: bodies hypothesis makes up, sent to every route of a real server on a loopback port.

Bodies are JSON objects mixing the fields the routes know with made-up ones,
each holding any JSON value (huge numbers, NaN, nesting, wrong types), or
bytes that are no JSON at all. Nothing may be a 500, every refusal is
OpenAI's error shape, and the server answers /health after each one. Lengths
are kept to 64 tokens so that a run is bounded in time as well as in count.
"""

import json
import math
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from ..test_serve import serving
from .conftest import figure, size

ROUTES = ["/v1/completions", "/v1/chat/completions", "/api/v1/generate", "/api/extra/generate/stream",
          "/api/extra/tokencount", "/api/extra/abort", "/v1/models", "/health", "/api/v1/model", "/nowhere"]
FIELDS = ["model", "prompt", "messages", "max_tokens", "max_length", "n_predict", "temperature", "top_p", "top_k", "n",
          "stop", "stop_sequence", "seed", "sampler_seed", "stream", "echo", "stream_options", "memory", "genkey",
          "logprobs", "repetition_penalty", "rep_pen", "min_p", "mirostat", "penalize_nl", "logit_bias", "suffix",
          "max_context_length", "sampler_order", "typical", "tfs", "best_of", "top_logprobs", "presence_penalty",
          "rep_pen_range", "repeat_last_n", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n",
          "dry_sequence_breakers", "banned_tokens", "max_copy"]
LENGTHS = {"max_tokens", "max_length", "n_predict"}
EXAMPLES = size(60, 1000)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", 3]),
                                           "content": st.text(max_size=30) | json_values}), max_size=3)
fields = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=20), json_values | messages, max_size=8)


def bounded(body: dict) -> dict:
    """The body with any length above 64 tokens brought down to 64: a made-up length costs no minutes."""
    return {k: (64 if k in LENGTHS and isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)
                and v > 64 else v) for k, v in body.items()}


def test_fuzzed_requests_are_never_a_500_and_the_server_stays_up(trained_model: Path):
    statuses: dict[int, int] = {}
    with serving(str(trained_model)) as (url, _), httpx.Client(base_url=url, timeout=60) as http:

        @seed(20261207)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(route=st.sampled_from(ROUTES), body=fields.map(bounded) | st.binary(max_size=200))
        def one(route: str, body: dict | bytes) -> None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            method = "GET" if route in ("/v1/models", "/health", "/api/v1/model") else "POST"
            with http.stream(method, route, content=content) as answer:
                text = answer.read().decode("utf-8", "replace")
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (route, body, text)
            if answer.status_code >= 400:
                assert set(json.loads(text)["error"]) == {"message", "type", "param", "code"}, text
            assert http.get("/health").json()["status"] == "ok"

        one()
    figure(f"serve fuzz: {EXAMPLES} requests, statuses {dict(sorted(statuses.items()))}, no 500")
