"""Shared set-up for the benchmarks: corpora location, threads, a scratch data directory."""

import argparse
import contextlib
import datetime
import json
import os
import sys
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


# ---- figures for the documentation site --------------------------------------------------------------------------
# A benchmark declares the figures it can report (FIGURES: key -> what it is; a nested result's keys joined with dots)
# and passes its result to `emit`; `--json docs/figures/NAME.json` also writes them there, where the site's pages show
# them (docs/_hooks/figures.py). tests/test_docs.py checks that each file's keys are among its benchmark's FIGURES.
FIGURES_DIR = Path(__file__).resolve().parent.parent / "docs" / "figures"


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the figures, the command, the machine and the date here "
                             f"(the site reads {FIGURES_DIR.parent.name}/{FIGURES_DIR.name}/NAME.json)")


def flatten(result: dict, prefix: str = "") -> dict:
    """{"lora": {"speedup": 1.6}} -> {"lora.speedup": 1.6}."""
    flat = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def machine() -> str:
    """The CPU (or GPU), its cores and torch's version: what a figure was measured on."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = f"{torch.cuda.get_device_name()}, " if torch.cuda.is_available() else ""
    return f"{gpu}{cpu}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}"


def emit(result: dict, figures: dict[str, str], args: argparse.Namespace) -> None:
    """Print the result as one JSON line; with --json, also write it for the site. Every figure must be declared."""
    flat = flatten(result)
    if undeclared := set(flat) - set(figures):
        raise SystemExit(f"figures not in the benchmark's FIGURES: {', '.join(sorted(undeclared))}")
    print(json.dumps(result))
    if getattr(args, "json", None) is None:
        return
    record = {"benchmark": Path(sys.argv[0]).stem,
              "command": " ".join([".venv/bin/python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
              "date": datetime.date.today().isoformat(), "machine": machine(), "figures": flat,
              "what": {key: figures[key] for key in flat}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)


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
