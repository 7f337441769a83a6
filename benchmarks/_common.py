"""Shared set-up for the benchmarks: corpora location, threads, a scratch data directory."""

import argparse
import os
import tempfile
from pathlib import Path

# ../shared beside the project, or where GHOSTWRITER_SHARED says (the GPU machine, which gets a copy: gpu_checks.sh)
SHARED = Path(os.environ.get("GHOSTWRITER_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
SHARED_CORPORA = SHARED / "corpora"
TOKENIZER = SHARED / "models" / "gpt2-tokenizer"


def setup(threads: int | None) -> Path:
    """Point the run at local corpora and a throwaway data directory; fix the thread count."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    if "ASSISTANT_CORPORA" not in os.environ and SHARED_CORPORA.is_dir():
        os.environ["ASSISTANT_CORPORA"] = str(SHARED_CORPORA)
    home = Path(tempfile.mkdtemp(prefix="ghostwriter-bench-"))
    os.environ["ASSISTANT_HOME"] = str(home)
    return home


def fill_shape(args: argparse.Namespace, gpu_shape: dict[str, int], cpu_shape: dict[str, int]) -> bool:
    """Shape flags left unset take the device's default shape; True on a GPU."""
    gpu = args.device.startswith("cuda")
    for key, value in (gpu_shape if gpu else cpu_shape).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return gpu


def gpt2_small() -> str:
    """A model directory of GPT-2 small's shape, trained one step from random weights on tiny-shakespeare (the
    speed does not depend on the weights): a model of the writer's own, with a corpus to check int8 on."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    options = GPT2Options(base=str(TOKENIZER), from_scratch=True, block_size=64, micro_batch=1, batch_tokens=64)
    finetune(FinetuneConfig(corpus="shakespeare", name="bench-gpt2-small", max_steps=1, eval_every=1, eval_chars=4000,
                            sample_every=100_000, seed=1, options=options, ghostwriting_every=0), Reporter())
    return "bench-gpt2-small"
