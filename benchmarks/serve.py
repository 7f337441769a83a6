"""`assistant serve` on a CPU: what HTTP costs over writing in-process, prompt reuse, and 16 clients at once.

For the char `small` model (2 x 256) and a GPT-2 small-shaped model (12 x
768, random weights, the real tokenizer; the speed does not depend on the
weights), each served by the real command (`assistant serve`, a subprocess
on a loopback port) and written with in-process in this one (the same
model, quantization and thread count; `ASSISTANT_THREADS`, by default what
the server takes: the cores less one for its event loop):

- overhead: the same 64-token completion (a new prompt each time, so both
  read it whole) through POST /v1/completions against `TextModel.generate`
  in-process, and against `assistant generate`'s in-process work (generate,
  then record the sample), interleaved, medians. Goal: <= 5% or <= 15 ms,
  whichever is larger. Streaming: the time to the first token against the
  first piece of an in-process stream. Goal: within 20 ms.
- prompt reuse: a 1,500-token story (PKD's) sent cold, then again with 10
  more tokens: the time to the first token of the second against the
  first's. Goal: <= 25%.
- 16 clients streaming 64 tokens each at once: throughput and p95 time to
  first token, with the generations taking turns (--parallel 4, the
  default, and 16) and one at a time (--parallel 1), against the same 16
  written one after another in-process.

    .venv/bin/python benchmarks/serve.py
    .venv/bin/python benchmarks/serve.py --models char --repeats 5   # the char model alone
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _common import SHARED_CORPORA, gpt2_small, setup

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "The robot looked at the man for a long time. Then it said that the door was open, and"


def prompt(i: int) -> str:
    """A new prompt for each i (so that no request reuses another's), in letters every model has read."""
    return f"{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i % 26]}{'abcdefghijklmnopqrstuvwxyz'[i // 26 % 26]}. {SENTENCE}"


def char_small() -> str:
    """A model directory of the char `small` preset, trained one step on pkd (the speed does not depend on it)."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    finetune(FinetuneConfig(corpus="pkd", model="char", name="bench-char-small", max_steps=1, eval_every=1,
                            sample_every=100_000, seed=1, options=CharOptions(size="small"), ghostwriting_every=0),
             Reporter())
    return "bench-char-small"


class Served:
    """A running server: a client of it that keeps its connection, as a writer's tool does (a new connection for each
    request, and httpx's set-up of one, would cost more than the server's whole work), and its CPU time."""

    def __init__(self, http: httpx.Client, pid: int):
        self.http, self.pid = http, pid

    def cpu_s(self) -> float:
        """The server's CPU seconds so far (user and system, all its threads): on a busy machine's cores, what it
        did, whatever else ran beside it."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(model: str, parallel: int = 4, quantize: str = "none") -> Iterator[Served]:
    """`assistant serve` in a subprocess on a free loopback port."""
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--model", model, "--port", "0", "--device",
                             "cpu", "--quantize", quantize, "--parallel", str(parallel)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = proc.stdout.readline()  # type: ignore[union-attr]
        if " at http" not in banner:
            raise SystemExit(f"the server did not start: {banner!r}")
        with httpx.Client(base_url=banner.split(" at ")[1].split()[0], timeout=600) as http:
            yield Served(http, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def first_piece_s(http: httpx.Client, body: dict) -> float:
    """Seconds from sending a streaming completion to its first piece of text (the rest is read and dropped)."""
    start, first = time.perf_counter(), None
    with http.stream("POST", "/v1/completions", json={**body, "stream": True}) as answer:
        for line in answer.iter_lines():
            if first is None and line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                first = time.perf_counter() - start
    assert first is not None
    return first


def overhead(served: Served, model, tokens: int, repeats: int) -> dict[str, float]:
    from assistant.samples.recording import record

    http = served.http
    whole, bare, recorded, http_first, bare_first, server_cpu, bare_cpu = [], [], [], [], [], [], []
    for i in range(repeats + 1):  # the first of each is a warm-up
        text = prompt(2 * i)  # a new prompt: both read it whole
        body = {"prompt": text, "max_tokens": tokens, "seed": i, "temperature": 0.8}
        start, cpu = time.perf_counter(), served.cpu_s()
        answer = http.post("/v1/completions", json=body).json()
        whole.append(time.perf_counter() - start)
        server_cpu.append(served.cpu_s() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        written = model.generate(text, max_new_tokens=tokens, seed=i, temperature=0.8)
        bare.append(time.perf_counter() - start)
        bare_cpu.append(time.process_time() - cpu)
        assert written == answer["choices"][0]["text"], "HTTP and in-process wrote different texts"
        start = time.perf_counter()
        with model.stream(text, max_new_tokens=tokens, seed=i, temperature=0.8) as stream:
            for _ in stream:
                pass
        record(stream.result, "cli")
        recorded.append(time.perf_counter() - start)
        http_first.append(first_piece_s(http, {**body, "prompt": prompt(2 * i + 1)}))
        start = time.perf_counter()
        with model.stream(prompt(2 * i + 1), max_new_tokens=tokens, seed=i, temperature=0.8) as stream:
            next(iter(stream))
            bare_first.append(time.perf_counter() - start)
    ms = {name: median_ms(values[1:]) for name, values in
          (("http", whole), ("generate", bare), ("generate_record", recorded), ("http_first", http_first),
           ("generate_first", bare_first))}
    # CPU time is counted in clock ticks (10 ms): the mean over the repeats, not the median
    ms |= {"server_cpu": statistics.fmean(server_cpu[1:]) * 1e3, "generate_cpu": statistics.fmean(bare_cpu[1:]) * 1e3}
    over = ms["http"] - ms["generate"]
    goal = max(0.05 * ms["generate"], 15)
    print(f"  {tokens}-token completion: HTTP {ms['http']:.1f} ms, in-process generate {ms['generate']:.1f} ms "
          f"(overhead {over:+.1f} ms, {over / ms['generate']:+.1%}; goal <= {goal:.1f} ms), generate and record "
          f"(assistant generate's work) {ms['generate_record']:.1f} ms: HTTP x{ms['http'] / ms['generate_record']:.3f}")
    print(f"  CPU time: the server's {ms['server_cpu']:.1f} ms a completion (all its threads), in-process generate's "
          f"{ms['generate_cpu']:.1f} ms: x{ms['server_cpu'] / ms['generate_cpu']:.2f}")
    print(f"  time to first token: HTTP stream {ms['http_first']:.1f} ms, in-process {ms['generate_first']:.1f} ms "
          f"({ms['http_first'] - ms['generate_first']:+.1f} ms; goal within 20 ms)")
    return {k: round(v, 1) for k, v in ms.items()}


def reuse(served: Served, model, story_tokens: int, more: int, repeats: int) -> dict[str, float]:
    """The time to first token of a story sent cold, and sent again with `more` tokens: a writer's next request."""
    from corpora import load_corpus

    text = "\n\n".join(d.text for d in load_corpus("pkd").documents)
    cold, warm = [], []
    for i in range(repeats + 1):
        ids_start = 50_000 * (i + 1)  # a story this server has never read
        story = _tokens_of(model, text[ids_start:], story_tokens)
        longer = _tokens_of(model, text[ids_start:], story_tokens + more)
        body = {"max_tokens": 16, "seed": i}
        cold.append(first_piece_s(served.http, {**body, "prompt": story}))
        warm.append(first_piece_s(served.http, {**body, "prompt": longer}))
    c, w = median_ms(cold[1:]), median_ms(warm[1:])
    print(f"  prompt reuse: a {story_tokens}-token story cold {c:.1f} ms to first token, sent again with {more} more "
          f"tokens {w:.1f} ms: {w / c:.1%} (goal <= 25%)")
    return {"cold_ms": round(c, 1), "warm_ms": round(w, 1), "ratio": round(w / c, 3)}


def _tokens_of(model, text: str, n: int) -> str:
    """The start of `text` that the model reads as `n` tokens (a char model's: characters)."""
    low, high = 0, min(len(text), n * 8)
    while low < high:  # the longest start with at most n tokens
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(model.tokens(text[:middle])) <= n else (low, middle - 1)
    return text[:low]


def concurrent(served: Served, clients: int, tokens: int) -> dict[str, float]:
    async def one(http: httpx.AsyncClient, i: int) -> tuple[float, float]:
        start, first = time.perf_counter(), None
        body = {"prompt": prompt(i), "max_tokens": tokens, "seed": i, "stream": True}
        async with http.stream("POST", "/v1/completions", json=body) as answer:
            async for line in answer.aiter_lines():
                if first is None and line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                    first = time.perf_counter() - start
        return first if first is not None else float("inf"), time.perf_counter() - start

    async def all_of_them() -> list[tuple[float, float]]:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=served.http.base_url, timeout=600, limits=limits) as http:
            return await asyncio.gather(*(one(http, i) for i in range(clients)))

    start, cpu = time.perf_counter(), served.cpu_s()
    results = asyncio.run(all_of_them())
    wall = time.perf_counter() - start
    firsts = [first for first, _ in results]
    return {"tokens_per_s": round(clients * tokens / wall, 1), "wall_s": round(wall, 2),
            "server_cpu_s": round(served.cpu_s() - cpu, 2),
            "ttft_p50_ms": round(percentile(firsts, 50) * 1e3, 1), "ttft_p95_ms": round(percentile(firsts, 95) * 1e3, 1)}


def sequential(model, clients: int, tokens: int) -> dict[str, float]:
    """The same 16 generations one after another in-process: the most a single worker could write."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(clients):
        model.generate(prompt(i), max_new_tokens=tokens, seed=i)
    wall = time.perf_counter() - start
    return {"tokens_per_s": round(clients * tokens / wall, 1), "wall_s": round(wall, 2),
            "cpu_s": round(time.process_time() - cpu, 2)}


def bench(name: str, label: str, args: argparse.Namespace) -> dict:
    from assistant.generation import load_model

    print(f"{label} ({name}), {os.environ['ASSISTANT_THREADS']} thread(s):")
    model = load_model(name, "cpu", "none")
    figures: dict = {}
    with server(name) as served:
        figures["overhead"] = overhead(served, model, args.tokens, args.repeats)
        figures["reuse"] = reuse(served, model, args.story, args.more, max(2, args.repeats // 3))
        figures["concurrent_parallel_4"] = concurrent(served, args.clients, args.tokens)
    figures["sequential_in_process"] = sequential(model, args.clients, args.tokens)
    for parallel in (1, 16):
        with server(name, parallel) as served:
            figures[f"concurrent_parallel_{parallel}"] = concurrent(served, args.clients, args.tokens)
    base = figures["sequential_in_process"]
    print(f"  {args.clients} clients streaming {args.tokens} tokens each at once (in-process, one after another: "
          f"{base['tokens_per_s']} tokens/s, {base['cpu_s']} CPU s):")
    for parallel in (4, 16, 1):
        c = figures[f"concurrent_parallel_{parallel}"]
        print(f"    --parallel {parallel:2d}: {c['tokens_per_s']} tokens/s (x{c['tokens_per_s'] / base['tokens_per_s']:.2f}), "
              f"server CPU {c['server_cpu_s']} s (x{c['server_cpu_s'] / base['cpu_s']:.2f}), "
              f"time to first token p50 {c['ttft_p50_ms']} ms, p95 {c['ttft_p95_ms']} ms")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="char,gpt2", help="which of char, gpt2")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--story", type=int, default=1500, help="tokens of the story resent")
    parser.add_argument("--more", type=int, default=10, help="tokens added to it")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, server and in-process alike "
                                                                  "(default: the server's own, cores less one)")
    args = parser.parse_args()
    setup(None)
    from assistant.generation import cpu_threads

    os.environ["ASSISTANT_THREADS"] = str(args.threads or cpu_threads(reserve=1))
    assert SHARED_CORPORA.is_dir(), f"the corpora are read from {SHARED_CORPORA}"
    figures = {}
    wanted = args.models.split(",")
    if "char" in wanted:
        figures["char_small"] = bench(char_small(), "char small (2 x 256)", args)
    if "gpt2" in wanted:
        figures["gpt2_small"] = bench(gpt2_small(), "GPT-2 small-shaped (12 x 768), float32", args)
    print(json.dumps({"threads": int(os.environ["ASSISTANT_THREADS"]), **figures}))


if __name__ == "__main__":
    main()
