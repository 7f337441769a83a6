"""Editor latency: inline completions from a real LSP client to `assistant lsp`, on the CPU, for a GPT-2 small-shaped
model (12 x 768, random weights, the real tokenizer) in float32 and in int8, and a small char model, side by side.

Into a 1,000-character document, automatic inline-completion requests, each
after a typed character (a didChange), the way an editor asks while you
write: p50 and p95 from request to answer (the server reuses the document's
model state, see assistant.generation.Session). Then 20 long invoked requests, each cancelled 100 ms in: the time
from `$/cancelRequest` to the server's RequestCancelled answer. Baselines in
the same run: the bare `generate()` call for the same prompt and settings (the
least a server could take), and for cancelling, how long the long generation
runs to its end (what a server that generates on its event loop keeps the
client waiting). Goal: p50 <= 150 ms, p95 <= 300 ms, cancel <= 50 ms, on 2 threads.

    .venv/bin/python benchmarks/lsp_latency.py                 # trains a `small` char model for 60 s first
    .venv/bin/python benchmarks/lsp_latency.py --model pkd-char --gpt2-requests 0   # the char model alone
"""

import argparse
import asyncio
import os
import sys
import time

from _common import add_json_option, emit, gpt2_small, setup
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

FIGURES = {
    "threads": "threads", "document_chars": "characters in the document",
    **{f"{model}.{key}": f"{what} ({model})" for model in ("char", "gpt2_none", "gpt2_int8") for key, what in (
        ("p50_ms", "inline completion p50, ms"), ("p95_ms", "inline completion p95, ms"),
        ("bare_p50_ms", "the bare generate() call p50, ms"), ("bare_p95_ms", "the bare generate() call p95, ms"),
        ("cancel_p50_ms", "$/cancelRequest to RequestCancelled p50, ms"),
        ("cancel_max_ms", "$/cancelRequest to RequestCancelled at most, ms"))},
}


URI = "file:///bench/story.txt"
SENTENCES = ("The robot looked at the man for a long time. Then it said that the door was open, and that nobody had "
             "come through it since the war. ")
PROSE = (SENTENCES * 10)[:1000]  # a 1,000-character document, typed into at its end
TYPED = "He walked to the window and looked down at the street below, where the cars moved slowly in the rain. "


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def train(seconds: int) -> str:
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    config = FinetuneConfig(corpus="pkd", model="char", name="bench-lsp", max_time=seconds, eval_every=200,
                            sample_every=100_000, seed=1, options=CharOptions(size="small"),
                            ghostwriting_every=0)
    finetune(config, Reporter())
    return "bench-lsp"


async def bench(model: str, requests: int, cancels: int, settings: dict) -> dict[str, list[float]]:
    client = LanguageClient("bench", "1")
    await client.start_io(sys.executable, "-m", "assistant", "lsp", "--device", "cpu")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), initialization_options={"model": model, **settings}))
    client.initialized(types.InitializedParams())
    text = PROSE
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "plaintext", 1, text)))

    def at_end() -> types.Position:
        return types.Position(0, len(text))

    def inline(trigger: types.InlineCompletionTriggerKind) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(types.InlineCompletionContext(trigger), types.TextDocumentIdentifier(URI),
                                            at_end())

    automatic = types.InlineCompletionTriggerKind.Automatic
    for _ in range(5):  # the model loads and warms up
        await client.text_document_inline_completion_async(inline(automatic))
    latencies, empty = [], 0
    for i in range(requests):
        char = TYPED[i % len(TYPED)]
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(version=i + 2, uri=URI),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at_end(), at_end()), text=char)]))
        text += char
        start = time.perf_counter()
        result = await client.text_document_inline_completion_async(inline(automatic))
        latencies.append(time.perf_counter() - start)
        empty += not result.items
    # long generations to cancel: to the length, not the end of a sentence
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams({"stopAt": "length"}))
    cancel_times = []
    for i in range(cancels):
        request = asyncio.ensure_future(client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline(types.InlineCompletionTriggerKind.Invoked), msg_id=f"c{i}"))
        await asyncio.sleep(0.1)
        start = time.perf_counter()
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"c{i}"))
        try:
            await request
            raise SystemExit("a cancelled request was answered with a result")
        except JsonRpcException as e:
            assert e.code == -32800, e
        cancel_times.append(time.perf_counter() - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    print(f"server: {requests} requests, {empty} answered with no suggestion")
    return {"latency": latencies, "cancel": cancel_times, "final_text": [len(text)]}


def baseline(model_name: str, settings: dict, requests: int, long_chars: int) -> tuple[list[float], float]:
    """The bare generate() call for each request's prompt, and the time of one long (cancel-test) generation."""
    import threading

    from assistant.generation import load_model
    from assistant.lsp.continuation import context, continue_text, params
    from assistant.lsp.settings import Settings

    s = Settings().updated(settings)
    model = load_model(model_name, "cpu", s.quantize)
    text, times = PROSE, []
    for _ in range(5):
        continue_text(model, text, params(s, s.auto_chars, s.stop_at), threading.Event())
    for i in range(requests):
        text += TYPED[i % len(TYPED)]
        start = time.perf_counter()
        continue_text(model, context(text, s), params(s, s.auto_chars, s.stop_at), threading.Event())
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    continue_text(model, text, params(s, long_chars, "length"), threading.Event())
    return times, time.perf_counter() - start


def report(label: str, model: str, requests: int, cancels: int, long_chars: int,
           quantize: str = "auto") -> dict[str, float]:
    settings = {"maxChars": long_chars, "alternatives": 1, "quantize": quantize}
    measured = asyncio.run(bench(model, requests, cancels, settings))
    raw, long_s = baseline(model, settings, requests, long_chars)
    p50, p95 = percentile(measured["latency"], 50) * 1e3, percentile(measured["latency"], 95) * 1e3
    raw50, raw95 = percentile(raw, 50) * 1e3, percentile(raw, 95) * 1e3
    print(f"{label}: inline completion, {requests} automatic requests: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
          f"(goal <= 150 / <= 300)")
    print(f"  baseline, the bare generate() call (no reuse): p50 {raw50:.1f} ms, p95 {raw95:.1f} ms; "
          f"x{raw50 / p50:.2f} at p50")
    figures = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "bare_p50_ms": round(raw50, 1),
               "bare_p95_ms": round(raw95, 1)}
    if cancels:
        cancel50, cancel_max = percentile(measured["cancel"], 50) * 1e3, max(measured["cancel"]) * 1e3
        print(f"  cancel, {cancels} requests: answered in p50 {cancel50:.1f} ms, at most {cancel_max:.1f} ms "
              f"(goal <= 50); a server generating on its event loop would answer after {long_s * 1e3:.0f} ms")
        figures |= {"cancel_p50_ms": round(cancel50, 1), "cancel_max_ms": round(cancel_max, 1)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained char model (default: train a `small` char model on pkd first)")
    parser.add_argument("--train-seconds", type=int, default=60)
    parser.add_argument("--requests", type=int, default=200, help="requests to the char model (0: leave it out)")
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--gpt2-requests", type=int, default=40, help="requests to GPT-2 small (0: leave it out)")
    parser.add_argument("--threads", type=int, default=2)
    add_json_option(parser)
    args = parser.parse_args()
    setup(args.threads)
    os.environ["ASSISTANT_THREADS"] = str(args.threads)  # the server and the baseline alike
    figures = {}
    if args.gpt2_requests:
        gpt2 = gpt2_small()
        for quantize in ("none", "int8"):
            figures[f"gpt2_{quantize}"] = report(f"GPT-2 small (12x768), quantize {quantize}", gpt2,
                                                 args.gpt2_requests, 3, 400, quantize)
    if args.requests:
        model = args.model or train(args.train_seconds)
        figures["char"] = report(f"char model {model}", model, args.requests, args.cancels, 5000)
    emit({"threads": args.threads, "document_chars": len(PROSE), **figures}, FIGURES, args)


if __name__ == "__main__":
    main()
