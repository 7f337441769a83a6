"""Shared set-up for the benchmarks: corpora location, threads, a scratch data directory."""

import os
import tempfile
from pathlib import Path

SHARED_CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


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
