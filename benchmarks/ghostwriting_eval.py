"""What the ghostwriting evaluation costs a training run on a CPU, at the default schedule.

For each model the run measures the time of a training step and of one
ghostwriting evaluation (K=16 prompted and 16 unconditional samples of 300
characters, copying, style, prompt-following, diversity), and reports the
evaluation's share of the training time between two evaluations (the
preset's --eval-every steps). Goal: at most 10%.

- char: the `small` preset (the CPU default) on PKD; baseline in the same run:
  the same evaluation with each sample written on its own instead of in one batch.
- gpt2: a GPT-2 small-shaped model (12 x 768, random weights, the real
  tokenizer) at finetune's CPU defaults (8k tokens per step, evaluations every
  50 steps); its samples are written one after another through the KV cache.

    .venv/bin/python benchmarks/ghostwriting_eval.py            # both
    .venv/bin/python benchmarks/ghostwriting_eval.py --only char
"""

import argparse
import time

from _common import SHARED_CORPORA, add_json_option, emit, setup

FIGURES = {f"{model}.{key}": f"{what} ({model})" for model in ("char", "gpt2") for key, what in (
    ("model", "model"), ("step_ms", "one training step, ms"), ("eval_every", "steps between evaluations"),
    ("between_s", "training between two evaluations, s"), ("eval_s", "one evaluation, s"),
    ("share", "the evaluation's share of the training time"), ("setup_s", "setting the evaluation up once, s"),
    ("naive_eval_s", "baseline: each sample written on its own, s per evaluation"),
    ("batched_speedup", "baseline / batched"))}

TOKENIZER = SHARED_CORPORA.parent / "models" / "gpt2-tokenizer"


def step_time(adapter, steps: int) -> float:
    """Seconds per optimizer step of the real training core's work: forward, backward, AdamW."""
    import torch

    optimizer = torch.optim.AdamW([p for p in adapter.model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        optimizer.zero_grad()
        for _ in range(adapter.grad_accum):
            (adapter.train_loss() / adapter.grad_accum).backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps


def evaluation_time(adapter, corpus, batched: bool = True) -> tuple[float, float, dict]:
    """(seconds to set the evaluation up once, seconds per evaluation, its figures)."""
    from contract.modeldir import CorpusRecord, from_json
    from finetune.ghostwriting.evaluate import Ghostwriting, GhostwritingOptions

    t0 = time.perf_counter()
    card = from_json({"kind": "char", "name": "bench", "corpus": CorpusRecord(corpus.name, corpus.source,
                                                                              corpus.checksum).__dict__}, None)
    evaluation = Ghostwriting(corpus, card.corpus_index(), GhostwritingOptions(), seed=0)
    setup_s = time.perf_counter() - t0
    units = max(1, round(evaluation.options.chars / adapter.chars_per_unit))

    def write(prompts, chars, seed, sampling):
        if batched:
            return adapter.write(prompts, units, seed, sampling)
        return [adapter.write([p], units, seed + i, sampling)[0] for i, p in enumerate(prompts)]

    t0 = time.perf_counter()
    figures = evaluation.evaluate(write)
    return setup_s, time.perf_counter() - t0, figures


def report(name: str, step_s: float, eval_every: int, setup_s: float, eval_s: float, figures: dict) -> dict:
    between = step_s * eval_every
    print(f"{name}: step {step_s * 1000:.0f} ms, {eval_every} steps between evaluations = {between:.1f} s; "
          f"evaluation {eval_s:.2f} s = {eval_s / between:.1%} of training time (goal <= 10%); set-up once {setup_s:.1f} s")
    print(f"  figures of the untrained model: {figures}")
    return {"model": name, "step_ms": round(step_s * 1000, 1), "eval_every": eval_every, "between_s": round(between, 1),
            "eval_s": round(eval_s, 2), "share": round(eval_s / between, 4), "setup_s": round(setup_s, 1)}


def char(args: argparse.Namespace) -> dict:
    import torch

    from corpora import load_corpus
    from kinds.charlstm.options import CharOptions
    from kinds.charlstm.train import make_adapter

    corpus = load_corpus("pkd")
    adapter = make_adapter(corpus, CharOptions(size="small"), 1, torch.device("cpu"))
    step_s = step_time(adapter, args.steps)
    setup_s, eval_s, figures = evaluation_time(adapter, corpus)
    hp = adapter.hp
    result = report(f"char small ({hp.layers}x{hp.hidden}) on pkd", step_s, adapter.schedule.eval_every, setup_s, eval_s,
                    figures)
    _, naive_s, _ = evaluation_time(adapter, corpus, batched=False)
    print(f"  baseline, each sample written on its own: {naive_s:.2f} s per evaluation (batched x{naive_s / eval_s:.1f})")
    return {**result, "naive_eval_s": round(naive_s, 2), "batched_speedup": round(naive_s / eval_s, 1)}


def gpt2(args: argparse.Namespace) -> dict:
    import torch

    from corpora import load_corpus
    from kinds.gpt2.options import GPT2Options
    from kinds.gpt2.train import make_adapter

    corpus = load_corpus("pkd")
    options = GPT2Options(base=str(TOKENIZER), from_scratch=True, n_layer=12, n_embd=768, n_head=12)
    adapter = make_adapter(corpus, options, 1, torch.device("cpu"))
    step_s = step_time(adapter, 1)
    setup_s, eval_s, figures = evaluation_time(adapter, corpus)
    return report(f"gpt2 small-shaped (12x768), {adapter.units_per_step:,} tokens per step", step_s, adapter.schedule.eval_every,
           setup_s, eval_s, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("char", "gpt2"))
    parser.add_argument("--steps", type=int, default=20, help="Steps timed for the char model.")
    parser.add_argument("--threads", type=int, default=2)
    add_json_option(parser)
    args = parser.parse_args()
    setup(args.threads)
    result = {}
    if args.only in (None, "char"):
        result["char"] = char(args)
    if args.only in (None, "gpt2"):
        result["gpt2"] = gpt2(args)
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
