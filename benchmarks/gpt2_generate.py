"""GPT-2 generation speed on a CPU: ghostwriter's decoding against Hugging Face `generate`, same run, same model.

GPT-2 small's shape (12 layers x 768, random weights: the speed does not
depend on them) writes 16 tokens greedily after a 64-token prompt. Ours is
what `assistant generate` runs (kinds.gpt2.generate.generate_ids: the fast
KV cache of kinds.gpt2.fast); the baseline is `model.generate(...)`, and the
plain path (Hugging Face's forward, one call per token) is shown beside it.
Each is timed `--repeats` times, interleaved, and the medians compared; the
tokens must be the same. Goal: >= 3x `generate` on 2 threads.

    .venv/bin/python benchmarks/gpt2_generate.py
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--embd", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from kinds.gpt2.generate import generate_ids

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=args.layers, n_embd=args.embd, n_head=args.heads)
    model = GPT2LMHeadModel(config).eval()
    prompt = [(i * 7919) % config.vocab_size for i in range(args.prompt)]

    def ours(fast: bool = True) -> list[int]:
        ids = generate_ids(model, prompt, torch.Generator().manual_seed(0), config.n_positions, 0.0, fast=fast)
        return [next(ids) for _ in range(args.new)]

    def hf() -> list[int]:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=args.new, min_new_tokens=args.new,
                                 do_sample=False, pad_token_id=0, attention_mask=torch.ones(1, args.prompt))
        return out[0, args.prompt :].tolist()

    runs: dict[str, Callable[[], list[int]]] = {"ours": ours, "generate": hf, "plain": lambda: ours(False)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    tokens: dict[str, list[int]] = {}
    for fn in runs.values():
        fn()  # warm up
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            tokens[name] = fn()
            times[name].append(time.perf_counter() - start)
    assert tokens["ours"] == tokens["plain"] == tokens["generate"], "the paths chose different greedy tokens"
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    shape = f"{args.layers}x{args.embd}, {args.new} tokens after {args.prompt}, {args.threads} threads, float32"
    print(f"ours:                {ms['ours']:7.1f} ms  ({shape})")
    print(f"HF generate:         {ms['generate']:7.1f} ms")
    print(f"plain HF forward:    {ms['plain']:7.1f} ms")
    print(f"speedup x{ms['generate'] / ms['ours']:.2f} over generate (goal >= 3), same greedy tokens")
    print(json.dumps({"shape": shape, **{f"{k}_ms": round(v, 1) for k, v in ms.items()},
                      "speedup_vs_generate": round(ms["generate"] / ms["ours"], 2)}))


if __name__ == "__main__":
    main()
