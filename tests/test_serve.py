"""`assistant serve`: a real server on a 127.0.0.1 port drawn by the system, spoken to as writers' tools speak to it.

The official `openai` client for the OpenAI-compatible routes, httpx for the
KoboldAI ones, with the tiny trained char model (the server's default) and
the tiny GPT-2 (named `tiny-gpt2` in each test's data directory). The
generations stopped half-way are the char model's, which never ends a text
by itself. Shutdown on a signal is tested on the real command in a subprocess.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from assistant.api.options import Options
from assistant.api.server import Server, config
from assistant.api.service import Service
from assistant.generation import load_model
from assistant.samples.store import Store

from .conftest import ROOT, ctrl_c_as_in_a_terminal, run_cli

PROSE = "The robot looked at the man for a long time. Then it said that the door was open, and"
GPT2 = "tiny-gpt2"
LONG = {"max_tokens": 8192, "n": 8}  # the most a request may ask: tens of seconds of the char model's writing


@contextlib.contextmanager
def serving(model: str, **options) -> Iterator[tuple[str, Service]]:
    """The server in a thread of this process, on a free port; its URL and its service."""
    service = Service(Options(model=model, port=0, device="cpu", quantize="none", **options))
    service.load()
    server = Server(service, config(service))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while server.port is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.port is not None
    try:
        yield f"http://127.0.0.1:{server.port}", service
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def api(trained_model: Path) -> Iterator[tuple[str, Service]]:
    with serving(str(trained_model)) as found:
        yield found


@pytest.fixture
def url(api: tuple[str, Service]) -> str:
    return api[0]


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def tiny_gpt2(isolated_home: Path, gpt2_base: Path) -> Path:
    """The tiny GPT-2 as a trained model of this test's data directory, so that a request can name it."""
    (isolated_home / "models").mkdir(parents=True, exist_ok=True)
    (isolated_home / "models" / GPT2).symlink_to(gpt2_base)
    return gpt2_base


def samples() -> list:
    with Store() as store:
        return store.find(oldest_first=True)


def wait_for(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


# ---- the OpenAI-compatible routes ---------------------------------------------------------------------------------
def test_models_lists_the_default_and_the_trained_models(client: openai.OpenAI, trained_model: Path, tiny_gpt2: Path):
    assert [m.id for m in client.models.list()] == [str(trained_model), GPT2]
    assert client.models.retrieve(GPT2).owned_by == "ghostwriter"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_completion_is_what_assistant_generate_writes_with_the_seed_and_is_stored(client: openai.OpenAI,
                                                                                    trained_model: Path):
    answer = client.completions.create(model=str(trained_model), prompt=PROSE, max_tokens=40, seed=11, temperature=0.8)
    cli = run_cli("generate", str(trained_model), "-p", PROSE, "--tokens", "40", "--seed", "11", "-t", "0.8",
                  "--no-echo", "--no-log")
    [choice] = answer.choices
    assert cli.returncode == 0 and cli.stdout == choice.text + "\n" and len(choice.text) == 40
    assert choice.finish_reason == "length"
    assert answer.usage.completion_tokens == 40 and answer.usage.prompt_tokens == len(PROSE)
    [sample] = samples()
    extension = answer.model_extra["ghostwriter"]
    assert extension["sample_id"] == sample.id and extension["not_applied"] == [] and not extension["cancelled"]
    assert (sample.source, sample.prompt, sample.text, sample.params["seed"]) == ("api", PROSE, choice.text, 11)
    assert sample.client.startswith("OpenAI/Python") and sample.copied_chars is not None  # checked against its corpus


def test_streaming_writes_what_a_whole_completion_writes(client: openai.OpenAI):
    whole = client.completions.create(model="", prompt=PROSE, max_tokens=30, seed=3).choices[0].text
    chunks = list(client.completions.create(model="", prompt=PROSE, max_tokens=30, seed=3, stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole
    last = [c for c in chunks if c.choices][-1].choices[0]
    assert last.finish_reason == "length" and last.model_extra["ghostwriter"]["sample_id"] is not None
    assert chunks[-1].usage.completion_tokens == 30  # the usage chunk, asked for with stream_options


def test_stop_n_and_echo(client: openai.OpenAI, trained_model: Path):
    model = load_model(trained_model, "cpu")
    answer = client.completions.create(model="", prompt=PROSE, max_tokens=60, seed=5, n=3, stop=["e", "\n"], echo=True)
    texts = [c.text for c in answer.choices]
    assert texts == [PROSE + model.generate(PROSE, max_new_tokens=60, seed=5 + i, stop=["e", "\n"]) for i in range(3)]
    assert all("e" not in t[len(PROSE):] for t in texts) and {c.finish_reason for c in answer.choices} <= {"stop", "length"}
    assert [c.model_extra["ghostwriter"]["sample_id"] for c in answer.choices] == [s.id for s in samples()]


def test_the_gpt2_model_by_name_writes_what_the_generation_api_writes(client: openai.OpenAI, tiny_gpt2: Path):
    answer = client.completions.create(model=GPT2, prompt=PROSE, max_tokens=20, seed=9, temperature=0.7, top_p=0.9)
    expected = load_model(tiny_gpt2, "cpu", "none").generate(PROSE, max_new_tokens=20, seed=9, temperature=0.7, top_p=0.9)
    assert answer.choices[0].text == expected and answer.model == GPT2


def test_a_chat_is_flattened_into_one_prompt(client: openai.OpenAI, trained_model: Path):
    messages = [{"role": "system", "content": "A story."}, {"role": "user", "content": [{"type": "text", "text": PROSE}]}]
    answer = client.chat.completions.create(model=str(trained_model), messages=messages, max_tokens=25, seed=2)
    prompt = "A story.\n\n" + PROSE + "\n\n"
    expected = load_model(trained_model, "cpu").generate(prompt, max_new_tokens=25, seed=2)
    assert answer.choices[0].message.content == expected and answer.choices[0].message.role == "assistant"
    streamed = client.chat.completions.create(model=str(trained_model), messages=messages, max_tokens=25, seed=2,
                                              stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected


def test_fields_other_backends_take_are_accepted_named_and_out_of_range_is_a_400(client: openai.OpenAI, url: str):
    raw = client.completions.with_raw_response.create(
        model="", prompt=PROSE, max_tokens=100_000, stop="e", logprobs=2, presence_penalty=0.0,
        extra_body={"repetition_penalty": 1.1, "min_p": 0.0, "mirostat": 0, "penalize_nl": True, "top_k": 40,
                    "made_up_sampler": 3}, timeout=60)
    assert raw.headers["x-ghostwriter-not-applied"] == "made_up_sampler"  # mirostat 0 asks nothing; the others apply
    assert raw.headers["x-ghostwriter-clamped"] == "max_tokens=8192"
    extension = raw.parse().model_extra["ghostwriter"]
    assert extension["not_applied"] == ["made_up_sampler"] and raw.parse().choices[0].logprobs is not None
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="", prompt=PROSE, max_tokens=5, temperature=-1)
    assert caught.value.status_code == 400 and caught.value.body["param"] == "temperature"
    with pytest.raises(openai.NotFoundError, match="no model 'gpt-4'"):
        client.completions.create(model="gpt-4", prompt=PROSE, max_tokens=5)
    for bad, param in (({"n": 99}, "n"), ({"top_p": 1.5}, "top_p"), ({"logprobs": 100}, "logprobs"),
                       ({"repetition_penalty": 0}, "repetition_penalty"), ({"stop": [1, 2]}, "stop"),
                       ({"prompt": [15496, 11]}, "prompt"), ({"max_tokens": "many"}, "max_tokens"),
                       ({"prompt": "x" * 600_000}, "prompt")):
        answer = httpx.post(f"{url}/v1/completions", json={"prompt": PROSE, "max_tokens": 5, **bad}, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, bad
    for body in (b"{not json", b"[1, 2]", b"[" * 100_000, b"x" * (3 * 2**20)):
        answer = httpx.post(f"{url}/v1/completions", content=body, timeout=30)
        assert answer.status_code == 400 and set(answer.json()["error"]) == {"message", "type", "param", "code"}
    assert len(samples()) == 1  # the clamped one: no refused request wrote anything


# ---- the KoboldAI-compatible routes --------------------------------------------------------------------------------
def test_kobold_routes_generate_stream_and_count(url: str, trained_model: Path):
    assert httpx.get(f"{url}/api/v1/info/version").json() == {"result": "1.2.5"}
    assert httpx.get(f"{url}/api/extra/version").json()["result"] == "KoboldCpp"
    assert httpx.get(f"{url}/api/v1/model").json()["result"] == f"ghostwriter/{trained_model}"
    model = load_model(trained_model, "cpu")
    body = {"memory": "A story. ", "prompt": PROSE, "max_length": 30, "sampler_seed": 4, "temperature": 0.7,
            "top_k": 0, "stop_sequence": ["\n\n"], "rep_pen": 1.08, "max_context_length": 2048}
    answer = httpx.post(f"{url}/api/v1/generate", json=body, headers={"User-Agent": "SillyTavern"}, timeout=60)
    expected = model.generate("A story. " + PROSE, max_new_tokens=30, seed=4, temperature=0.7, stop="\n\n",
                              repetition_penalty=1.08)
    assert answer.json()["results"][0]["text"] == expected
    assert answer.headers["x-ghostwriter-not-applied"] == "max_context_length"
    with httpx.stream("POST", f"{url}/api/extra/generate/stream", json=body, timeout=60) as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert "".join(e["token"] for e in events) == expected and events[-1]["finish_reason"] in ("length", "stop")
    count = httpx.post(f"{url}/api/extra/tokencount", json={"prompt": PROSE}).json()
    assert count["value"] == len(PROSE) == len(count["ids"])
    first, streamed = samples()
    assert first.client == "SillyTavern" and first.text == streamed.text == expected and first.source == "api"
    assert events[-1]["ghostwriter"]["sample_id"] == streamed.id


def test_abort_by_genkey_returns_what_it_had_and_records_it_cancelled(url: str):
    answers = []
    body = {"prompt": PROSE, "max_length": LONG["max_tokens"], "genkey": "KCPP1"}
    request = threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/api/v1/generate", json=body,
                                                                        timeout=120)))
    with httpx.Client(base_url=url) as http:  # one connection: each of httpx.get's own takes tens of milliseconds
        request.start()
        wait_for(lambda: http.get("/health").json()["generating"])
        assert http.post("/api/extra/abort", json={"genkey": "KCPP1"}).json() == {"success": True}
    request.join(60)
    [result] = answers[0].json()["results"]
    [sample] = wait_for(samples)
    assert sample.cancelled and sample.text.startswith(result["text"]) and len(sample.text) < LONG["max_tokens"]
    assert httpx.post(f"{url}/api/extra/abort", json={"genkey": "KCPP1"}).json() == {"success": False}


# ---- cancelling, queueing, concurrency ---------------------------------------------------------------------------
def test_closing_the_connection_mid_stream_stops_the_model(client: openai.OpenAI, url: str):
    stream = client.completions.create(model="", prompt=PROSE, stream=True, **LONG)
    chunks = iter(stream)
    pieces = [next(chunks).choices[0].text for _ in range(5)]
    stream.close()
    [sample] = wait_for(samples)  # the first choice, stopped; the other seven never began
    assert sample.cancelled and sample.text.startswith("".join(pieces)) and len(sample.text) < LONG["max_tokens"]
    wait_for(lambda: httpx.get(f"{url}/health").json()["generating"] == 0, 10)


def test_a_full_queue_is_a_503_and_health_never_waits(trained_model: Path):
    with serving(str(trained_model), slots=1, queue=0) as (url, _):
        body = {"prompt": PROSE, "stream": True, **LONG}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as long:
            lines = long.iter_lines()  # kept: a dropped iterator closes the connection, and so the generation
            next(line for line in lines if line.startswith("data: "))  # writing, and holding the one slot
            busy = httpx.post(f"{url}/v1/completions", json={"prompt": PROSE, "max_tokens": 5})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            assert busy.json()["error"]["code"] == "busy"
            start = time.perf_counter()
            assert httpx.get(f"{url}/health").json()["generating"] == 1
            assert httpx.get(f"{url}/v1/models").status_code == 200
            assert time.perf_counter() - start < 1.0  # while the worker is busy writing


def test_sixteen_concurrent_streaming_clients_all_finish_and_are_all_stored(url: str):
    async def one(i: int) -> str:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
            stream = await client.completions.create(model="", prompt=PROSE, max_tokens=48, seed=i, stream=True)
            return "".join([c.choices[0].text async for c in stream if c.choices])

    async def all_of_them() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(16)))

    texts = asyncio.run(all_of_them())
    stored = samples()
    assert len(stored) == 16 and all(len(t) == 48 for t in texts)
    assert sorted(s.text for s in stored) == sorted(texts) and not any(s.cancelled for s in stored)


def test_a_resent_story_takes_the_session_that_holds_it(tiny_gpt2: Path):
    from assistant.serving.models import Sessions

    model = load_model(tiny_gpt2, "cpu", "none")
    sessions = Sessions(keep=2)
    story = PROSE * 4
    first = sessions.closest(model, story)
    model.generate(story, max_new_tokens=1, session=first)
    assert sessions.closest(model, story + " and then it left.") is first  # the same story, a few more words
    other = sessions.closest(model, "Quite another story.")
    assert other is not first and sessions.closest(model, story + " and") is first
    first.borrow(story)  # busy: a second client writing the same story at once gets another session
    assert sessions.closest(model, story) not in (first, None)


def test_a_long_prompts_window_moves_in_steps_so_a_resent_story_keeps_its_start():
    from kinds.gpt2.generate import window

    ids = list(range(3000))
    assert window(ids[:500], 1024) == ids[:500]
    windows = [window(ids[:n], 1024) for n in range(1500, 1700)]
    assert all(w[0] == windows[0][0] for w in windows[:20]) and all(768 <= len(w) <= 1023 for w in windows)
    assert all(w[-1] == n - 1 for w, n in zip(windows, range(1500, 1700), strict=True))


# ---- security ----------------------------------------------------------------------------------------------------
def test_a_foreign_host_and_a_foreign_origin_are_refused(url: str):
    assert httpx.get(f"{url}/health", headers={"Host": "attacker.example"}).status_code == 403
    assert httpx.get(f"{url}/health", headers={"Host": "localhost:5001"}).status_code == 200
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    foreign = httpx.options(f"{url}/v1/completions", headers={"Origin": "https://attacker.example", **preflight})
    assert "access-control-allow-origin" not in foreign.headers
    local = httpx.options(f"{url}/v1/completions", headers={"Origin": "http://localhost:8000", **preflight})
    assert local.headers["access-control-allow-origin"] == "http://localhost:8000"


def test_a_key_is_needed_when_given_and_health_stays_public(trained_model: Path):
    with serving(str(trained_model), api_key="s3cret", cors_origins=("https://lite.koboldai.net",)) as (url, _):
        assert httpx.get(f"{url}/health").status_code == 200
        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        assert httpx.get(f"{url}/api/v1/model").status_code == 401
        right = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in right.models.list()] == [str(trained_model)]
        preflight = httpx.options(f"{url}/v1/models", headers={"Origin": "https://lite.koboldai.net",
                                                                "Access-Control-Request-Method": "GET"})
        assert preflight.headers["access-control-allow-origin"] == "https://lite.koboldai.net"


def test_a_bind_beyond_this_machine_without_a_key_is_refused_in_one_line(trained_model: Path):
    result = run_cli("serve", "--model", str(trained_model), "--host", "0.0.0.0", env={"ASSISTANT_API_KEY": None})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--api-key" in lines[0], result.stderr


# ---- stopping ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_the_server_cleanly_cancelling_what_is_in_flight(sig: int, trained_model: Path):
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--model", str(trained_model), "--port", "0",
                             "--device", "cpu"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy(), preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        banner = proc.stdout.readline()
        assert f"ghostwriter is serving {trained_model} at http://127.0.0.1:" in banner, proc.stderr.read()
        url = banner.split(" at ")[1].split()[0]
        body = {"prompt": PROSE, "stream": True, **LONG}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            proc.send_signal(sig)
            rest = list(lines)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr and stderr.strip().endswith("stopped"), stderr
    ends = [json.loads(line[6:])["choices"][0] for line in rest if line.startswith('data: {"id"')]
    ends = [choice for choice in ends if choice["finish_reason"]]
    assert "data: [DONE]" in rest and len(ends) == LONG["n"] and all(c["ghostwriter"]["cancelled"] for c in ends)
    [sample] = samples()
    assert sample.cancelled and len(sample.text) < LONG["max_tokens"]
