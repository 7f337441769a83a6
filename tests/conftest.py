"""Shared fixtures: an isolated data directory, the shared corpora, tiny real models.

Nothing here downloads: catalogue corpora come from ../shared/corpora through
ASSISTANT_CORPORA, exactly as a user with a local copy would set it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    monkeypatch.setenv("ASSISTANT_CORPORA", str(CORPORA))
    monkeypatch.delenv("ASSISTANT_GUTENBERG_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def pkd_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two PKD stories, raw from Gutenberg (header, BOM, CRLF and all): about 55k characters of text."""
    folder = tmp_path_factory.mktemp("pkd-slice")
    for name in ("the-eyes-have-it.txt", "beyond-the-door.txt"):
        shutil.copy(CORPORA / "pkd" / name, folder / name)
    return folder


TINY = ["--model", "char", "--size", "tiny", "--eval-every", "20", "--sample-every", "50", "--seed", "7"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real `assistant` command in a subprocess, with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT,
    )


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, pkd_slice: Path) -> Path:
    """A tiny char model trained for a few seconds on the PKD slice, shared by the generation tests."""
    from finetune.config import CharOptions, FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune

    out = tmp_path_factory.mktemp("models") / "tiny-pkd"
    config = FinetuneConfig(corpus=str(pkd_slice), model="char", out=out, max_steps=150, eval_every=50, sample_every=1000,
                            seed=7, char=CharOptions(size="tiny"))
    finetune(config, Reporter())
    return out
