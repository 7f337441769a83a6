"""GPT-2 generation speed on a CPU: ghostwriter's decoding against Hugging Face `generate`, same run, same model.

GPT-2 small's shape (12 layers x 768, random weights: the speed does not
depend on them) writes 16 tokens greedily after a 64-token prompt. Ours is
what `assistant generate` runs (kinds.gpt2.generate.generate_ids: the fast
KV cache of kinds.gpt2.fast); the baseline is `model.generate(...)`, and the
plain path (Hugging Face's forward, one call per token) is shown beside it,
and the same fast path on the model's int8 copy (kinds.gpt2.quantize, what
`--quantize auto` writes with where its check allows). Each is timed
`--repeats` times, interleaved, and the medians compared; the float32 tokens
must be the same. int8's loss difference is measured as `--quantize` checks
it, on `--corpus`'s tokens; random weights say little about it, so
`--model DIR` runs a trained model directory instead (its own corpus and
split). Goal: >= 3x `generate` on 2 threads.

On a GPU (`--device cuda`) the model writes as `assistant generate` runs it
there: bf16 weights, the static KV cache, one-token steps replayed as a CUDA
graph; against `generate` on the same bf16 model, 64 new tokens by default,
with the same path without graphs beside it. bf16 rounding may let the paths
pick different greedy tokens late in a run, so agreement is counted, not
asserted. Goal: >= 4x `generate`.

    .venv/bin/python benchmarks/gpt2_generate.py [--model DIR]
    .venv/bin/python benchmarks/gpt2_generate.py --device cuda
"""

import argparse
import statistics
import time
from collections.abc import Callable

from _common import add_json_option, emit

FIGURES = {
    "shape": "model, run and threads", "ours_ms": "ours (float32 on a CPU; CUDA graphs on a GPU), ms",
    "int8_ms": "ours in int8, ms", "generate_ms": "transformers' generate, ms", "plain_ms": "plain forward loop, ms",
    "no_graphs_ms": "ours without CUDA graphs (GPU), ms", "speedup_vs_generate": "generate / ours",
    "int8_speedup_vs_generate": "generate / int8", "int8_loss_rise": "int8's validation loss rise, nats/token",
    "int8_check_tokens": "validation tokens of the int8 check", "same_tokens": "greedy tokens the same as generate's (GPU)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--embd", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new", type=int, default=None, help="new tokens (default 16 on a CPU, 64 on a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="a trained GPT-2 model directory instead of random weights")
    parser.add_argument("--corpus", default="pkd", help="whose validation tokens the random model's int8 check reads")
    add_json_option(parser)
    args = parser.parse_args()

    import torch
    from _common import setup

    from kinds.gpt2 import quantize
    from kinds.gpt2.generate import generate_ids

    setup(args.threads)
    if args.device.startswith("cuda"):
        args.new = args.new or 64
        return gpu(args)
    args.new = args.new or 16
    model, check, shape = load(args)
    config = model.config
    int8_model = quantize.to_int8(model)
    prompt = [(i * 7919) % config.vocab_size for i in range(args.prompt)]

    def ours(fast: bool = True, on: torch.nn.Module = model) -> list[int]:
        ids = generate_ids(on, prompt, torch.Generator().manual_seed(0), config.n_positions, 0.0, fast=fast)
        return [next(ids) for _ in range(args.new)]

    def hf() -> list[int]:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=args.new, min_new_tokens=args.new,
                                 do_sample=False, pad_token_id=0, attention_mask=torch.ones(1, args.prompt))
        return out[0, args.prompt :].tolist()

    runs: dict[str, Callable[[], list[int]]] = {"ours": ours, "generate": hf, "plain": lambda: ours(False),
                                                "int8": lambda: ours(on=int8_model)}
    ms, tokens = timed(runs, args.repeats, lambda: None)
    assert tokens["ours"] == tokens["plain"] == tokens["generate"], "the paths chose different greedy tokens"
    shape += f", {args.new} tokens after {args.prompt}, {args.threads} threads"
    same = sum(a == b for a, b in zip(tokens["int8"], tokens["ours"], strict=True))
    print(f"ours, float32:       {ms['ours']:7.1f} ms  ({shape})")
    print(f"ours, int8:          {ms['int8']:7.1f} ms  ({same}/{args.new} greedy tokens as float32's)")
    print(f"HF generate:         {ms['generate']:7.1f} ms")
    print(f"plain HF forward:    {ms['plain']:7.1f} ms")
    print(f"speedup over generate: float32 x{ms['generate'] / ms['ours']:.2f}, int8 x{ms['generate'] / ms['int8']:.2f} "
          "(goal >= 3); float32 gives generate's greedy tokens")
    print(f"int8 check: {check.describe()}: {'passes' if check.passed else 'FAILS'}")
    emit({"shape": shape, **{f"{k}_ms": round(v, 1) for k, v in ms.items()},
          "speedup_vs_generate": round(ms["generate"] / ms["ours"], 2),
          "int8_speedup_vs_generate": round(ms["generate"] / ms["int8"], 2),
          "int8_loss_rise": round(check.rise, 4), "int8_check_tokens": check.tokens}, FIGURES, args)


def timed(runs: dict[str, Callable[[], list[int]]], repeats: int,
          sync: Callable[[], None]) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Each run once to warm up, then `repeats` times interleaved: median milliseconds and the tokens of each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    tokens: dict[str, list[int]] = {}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            sync()
            start = time.perf_counter()
            tokens[name] = fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}, tokens


def gpu(args: argparse.Namespace) -> None:
    """The GPU form: bf16 weights, ours with and without CUDA graphs against `generate`, medians of --repeats."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from kinds.gpt2.fast import KVCache
    from kinds.gpt2.generate import generate_ids

    torch.manual_seed(0)
    config = GPT2Config(n_layer=args.layers, n_embd=args.embd, n_head=args.heads)
    model = GPT2LMHeadModel(config).eval().to(args.device, torch.bfloat16)
    prompt = [(i * 7919) % config.vocab_size for i in range(args.prompt)]

    def ours(graphs: bool = True) -> list[int]:
        cache = KVCache(model, static_steps=graphs)
        ids = generate_ids(model, prompt, torch.Generator().manual_seed(0), config.n_positions, 0.0, cache=cache)
        return [next(ids) for _ in range(args.new)]

    def hf() -> list[int]:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt], device=args.device), max_new_tokens=args.new,
                                 min_new_tokens=args.new, do_sample=False, pad_token_id=0,
                                 attention_mask=torch.ones(1, args.prompt, device=args.device))
        return out[0, args.prompt :].tolist()

    runs: dict[str, Callable[[], list[int]]] = {"ours": ours, "no graphs": lambda: ours(False), "generate": hf}
    ms, tokens = timed(runs, args.repeats, torch.cuda.synchronize)
    same = sum(a == b for a, b in zip(tokens["ours"], tokens["generate"], strict=True))
    shape = f"{args.layers}x{args.embd}, bf16, {args.new} tokens after {args.prompt}, {torch.cuda.get_device_name()}"
    for name in runs:
        print(f"{name + ':':12} {ms[name]:7.1f} ms  ({ms[name] / args.new:.2f} ms/token)")
    print(f"speedup over generate: x{ms['generate'] / ms['ours']:.2f} with CUDA graphs, "
          f"x{ms['generate'] / ms['no graphs']:.2f} without (goal >= 4); {same}/{args.new} greedy tokens as generate's")
    emit({"shape": shape, **{f"{k.replace(' ', '_')}_ms": round(v, 1) for k, v in ms.items()},
          "speedup_vs_generate": round(ms["generate"] / ms["ours"], 2), "same_tokens": same}, FIGURES, args)


def load(args: argparse.Namespace):
    """The model to time (random GPT-2 of the given shape, or a trained directory's), its int8 check, and its shape."""
    import torch
    from _common import SHARED
    from transformers import GPT2Config, GPT2LMHeadModel

    from assistant.generation import load_model
    from corpora import load_corpus
    from kinds.gpt2 import base, quantize

    if args.model:
        text_model = load_model(args.model, "cpu", "none")
        model = text_model.decoder.model
        card = text_model.card
        corpus = load_corpus(card.corpus.source if card.corpus else args.corpus)
        ids = quantize.validation_ids(corpus, text_model.decoder.tokenizer, card.split)
        what = f"{card.name} ({card.size or 'gpt2'}, trained)"
    else:
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(n_layer=args.layers, n_embd=args.embd, n_head=args.heads)).eval()
        tokenizer = base.load_tokenizer(str(SHARED / "models" / "gpt2-tokenizer"))
        ids = quantize.validation_ids(load_corpus(args.corpus), tokenizer, None)
        what = f"{args.layers}x{args.embd}, random weights"
    return model, quantize.measure(model, ids, ""), what


if __name__ == "__main__":
    main()
