"""Shared set-up for the benchmarks: corpora location, threads, a scratch data directory."""

import argparse
import os
import tempfile
from pathlib import Path

# ../shared beside the project, or where GHOSTWRITER_SHARED says (the GPU machine, which gets a copy: gpu_checks.sh)
SHARED = Path(os.environ.get("GHOSTWRITER_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
SHARED_CORPORA = SHARED / "corpora"


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
