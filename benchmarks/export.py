"""`assistant export` on GPT-2 small's shape: export time and file size per type, and llama.cpp's speed against ours.

A GPT-2 of GPT-2 small's shape (12 x 768, 124M parameters, random weights:
neither time depends on them) with the real tokenizer is saved as a base
directory and exported with `assistant export`'s own function, once per type;
the baseline is `save_pretrained` of the same weights (safetensors, float32)
in the same run. Goal: <= 30 s per export.

Where llama-cpp-python is installed, the q8_0 and f16 files then write 16 and
64 new tokens greedily after a 64-token prompt on `--threads` threads, the
way `--backend llama.cpp` runs them (kinds.gpt2.llamacpp: llama.cpp's forward
pass, ghostwriter's sampler), against ghostwriter's own CPU paths in the same
run: float32 and int8 (what `--quantize auto` writes with), medians of
`--repeats` interleaved runs. Each path's greedy tokens are compared with
float32's.

    .venv/bin/python benchmarks/export.py [--quants f16,q8_0,q4_0] [--threads 2]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quants", default="f32,f16,bf16,q8_0,q5_1,q5_0,q4_1,q4_0")
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new", default="16,64", help="new tokens per timed run, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from _common import SHARED, setup
    from transformers import GPT2Config, GPT2LMHeadModel

    from assistant.export import export
    from kinds.gpt2 import base

    setup(args.threads)
    work = Path(tempfile.mkdtemp(prefix="ghostwriter-export-"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    params = sum(p.numel() for p in model.parameters())
    with base.quiet_transformers():
        start = time.perf_counter()
        model.save_pretrained(work / "small")
        saved = time.perf_counter() - start
    base.load_tokenizer(str(SHARED / "models" / "gpt2-tokenizer")).save_pretrained(work / "small")
    print(f"GPT-2 small shape, {params / 1e6:.1f}M parameters, random weights; {args.threads} threads")
    print(f"baseline save_pretrained (float32 safetensors): {saved:5.1f} s")
    export(str(work / "small"), quant="f16", out=work / "warm.gguf")  # imports and the tokenizer, once
    results, files = {}, {}
    for quant in args.quants.split(","):
        done = export(str(work / "small"), quant=quant, out=work / f"small-{quant}.gguf")
        files[quant] = done.path
        results[quant] = {"seconds": round(done.seconds, 2), "mb": round(done.bytes / 1e6, 1)}
        print(f"export {quant:5}: {done.seconds:5.1f} s (x{done.seconds / saved:.1f} save_pretrained), "
              f"{done.bytes / 1e6:6.1f} MB")
    speeds = through_llama_cpp(args, model, files) if {"q8_0", "f16"} <= set(files) else None
    print(json.dumps({"params": params, "save_pretrained_s": round(saved, 2), "exports": results, "speed": speeds}))


def through_llama_cpp(args: argparse.Namespace, model, files: dict[str, Path]) -> dict | None:
    """ms per run of each path, for each count of new tokens, and how many greedy tokens match float32's."""
    import importlib.util

    import torch
    from gpt2_generate import timed

    from kinds.gpt2 import quantize
    from kinds.gpt2.generate import generate_ids
    from kinds.gpt2.llamacpp import Engine, EngineCache

    if importlib.util.find_spec("llama_cpp") is None:
        print("llama-cpp-python is not installed: no speed comparison (pip install 'ghostwriter[llamacpp]')")
        return None
    n_ctx = model.config.n_positions
    prompt = [(i * 7919) % model.config.vocab_size for i in range(args.prompt)]
    int8 = quantize.to_int8(model)
    engines = {quant: Engine(files[quant], n_ctx, args.threads) for quant in ("q8_0", "f16")}
    out = {}
    for new in map(int, args.new.split(",")):
        def run(on=None, engine=None, new=new) -> list[int]:
            cache = EngineCache(engine) if engine is not None else None
            ids = generate_ids(on, prompt, torch.Generator().manual_seed(0), n_ctx, 0.0, cache=cache)
            return [next(ids) for _ in range(new)]

        runs = {"ours float32": lambda run=run: run(on=model), "ours int8": lambda run=run: run(on=int8),
                **{f"llama.cpp {q}": (lambda run=run, e=e: run(engine=e)) for q, e in engines.items()}}
        ms, tokens = timed(runs, args.repeats, lambda: None)
        print(f"{new} new tokens after {args.prompt}:")
        for name in runs:
            same = sum(a == b for a, b in zip(tokens[name], tokens["ours float32"], strict=True))
            print(f"  {name + ':':18} {ms[name]:7.1f} ms ({ms[name] / new:5.1f} ms/token overall), "
                  f"{same}/{new} greedy tokens as float32's")
        print(f"  llama.cpp q8_0 against ours int8: x{ms['ours int8'] / ms['llama.cpp q8_0']:.2f} faster")
        out[new] = {name.replace(" ", "_"): round(v, 1) for name, v in ms.items()}
    return out


if __name__ == "__main__":
    main()
