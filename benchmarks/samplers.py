"""What the sampler chain and the copy guard cost per token, against temperature sampling alone, same run.

Both shapes the issue names write through the one loop (contract.loop) with
random weights (the cost does not depend on them): the char `small` shape
(2x256 char-LSTM, fused step) on PKD's characters, and GPT-2 small (124M) with
the real tokenizer. Each writes `--tokens` tokens after a prompt three ways,
token by token in turn, `--repeats` times, medians compared. A token's cost
is the CPU time of the thread that writes it (torch runs on it with
--threads 1), so other processes on a shared machine do not count as the
chain's, and the turns put a busy spell on all three ways alike:

- temperature 0.8 alone (the baseline: what `generate` did before the chain);
- the full chain: logit bias, repetition penalty over 256 tokens, presence and
  frequency penalties, DRY, temperature, top-k, top-p, min-p, typical-p;
- the copy guard alone (--max-copy 50) over a suffix array of the PKD corpus.

Goals (issue 37): the chain <= 5% per token, the guard <= 10% (char) and
<= 15% (GPT-2). The copying-rate half of the issue's benchmark (a char model
trained on PKD until it copies) is benchmarks/copying.py.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/samplers.py [--shapes char,gpt2]
"""

import argparse
import statistics
import time

from _common import SHARED, SHARED_CORPORA, add_json_option, emit, setup

FIGURES = {f"{shape}.{key}": f"{shape}: {what}" for shape in ("char", "gpt2") for key, what in (
    ("base_ms", "temperature alone, ms per token"), ("chain_ms", "full chain, ms per token"),
    ("guard_ms", "copy guard, ms per token"), ("chain_cost", "full chain / temperature alone - 1"),
    ("guard_cost", "copy guard / temperature alone - 1"))}

CHAIN = {"temperature": 0.8, "logit_bias": (("rain", 1.0), ("suddenly", -3.0)), "repetition_penalty": 1.1,
         "repetition_range": 256, "presence_penalty": 0.1, "frequency_penalty": 0.1, "dry_multiplier": 0.8,
         "top_k": 40, "top_p": 0.95, "min_p": 0.05, "typical_p": 0.95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="char,gpt2")
    parser.add_argument("--tokens", type=int, default=0, help="tokens per run (default: 400 char, 60 GPT-2)")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    setup(args.threads)

    import torch

    from contract.copyguard import CopyGuard
    from contract.loop import tokens
    from contract.sampling import Sampling
    from corpora.index import CorpusIndex
    from corpora.load import load_corpus

    corpus = load_corpus(str(SHARED_CORPORA / "pkd"))
    index = CorpusIndex.build(corpus)
    chars = "".join(sorted(set(index.text) - {"\0"}))
    prompt = corpus.documents[0].text[1000:1400]
    result: dict = {}
    for shape in args.shapes.split(","):
        torch.manual_seed(0)
        if shape == "char":
            from kinds.charlstm.infer import CharDecoder
            from kinds.charlstm.model import CharLSTM, CharLSTMConfig, Vocab

            lstm = CharLSTM(CharLSTMConfig(vocab_size=len(chars), layers=2, hidden=256, dropout=0.0)).eval()
            decoder, n = CharDecoder(Vocab(chars), "\n\n", lstm), args.tokens or 400
        else:
            from transformers import GPT2Config, GPT2LMHeadModel

            from kinds.gpt2.infer import GPT2Decoder

            decoder = GPT2Decoder(GPT2LMHeadModel(GPT2Config()), str(SHARED / "models" / "gpt2-tokenizer"),
                                  torch.device("cpu"))
            n = args.tokens or 60
        runs = {"base": (Sampling(temperature=0.8), False), "chain": (Sampling(**CHAIN), False),
                "guard": (Sampling(temperature=0.8, max_copy=50), True)}

        def run(decoder=decoder, n: int = n, runs: dict = runs) -> dict[str, float]:
            """Each way's CPU time per token, the three written token by token in turn (so a busy spell on a shared
            machine falls on all three alike)."""
            streams = {name: tokens(decoder, prompt, sampling, torch.Generator().manual_seed(0),
                                    guard=CopyGuard(index, 50, decoder.token_texts()) if guarded else None)
                       for name, (sampling, guarded) in runs.items()}
            spent = dict.fromkeys(runs, 0.0)
            for stream in streams.values():
                next(stream)  # the prompt's pass is not a token's cost
            for _ in range(n - 1):
                for name, stream in streams.items():
                    start = time.thread_time()
                    next(stream)
                    spent[name] += time.thread_time() - start
            return {name: t / (n - 1) for name, t in spent.items()}

        run(n=20)  # warm up
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, t in run().items():
                times[name].append(t)
        ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        result[shape] = {"base_ms": round(ms["base"], 3), "chain_ms": round(ms["chain"], 3),
                         "guard_ms": round(ms["guard"], 3), "chain_cost": round(ms["chain"] / ms["base"] - 1, 3),
                         "guard_cost": round(ms["guard"] / ms["base"] - 1, 3)}
        print(f"{shape}: temperature alone {ms['base']:.3f} ms/token, full chain {ms['chain']:.3f} "
              f"({ms['chain'] / ms['base'] - 1:+.1%}), copy guard {ms['guard']:.3f} ({ms['guard'] / ms['base'] - 1:+.1%})")
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
