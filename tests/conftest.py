"""Shared fixtures: an isolated data directory, the shared corpora, tiny real models.

Nothing here downloads: catalogue corpora come from ../shared/corpora through
ASSISTANT_CORPORA, exactly as a user with a local copy would set it.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"
GPT2_TOKENIZER = SHARED / "models" / "gpt2-tokenizer"

# Never download: the Hugging Face hub is offline and its cache empty, in this process and in every CLI subprocess.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="hf-home-")


@pytest.fixture(scope="session", autouse=True)
def compiled_chain() -> None:
    """The sampler chain compiled before any test times a suggestion: a clean checkout compiles it once (seconds),
    as `make install` does for a writer."""
    from contract.compiled import warm

    warm()


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


def ctrl_c_as_in_a_terminal() -> None:
    """preexec_fn for a child a test stops with Ctrl-C: a child inherits an ignored SIGINT (a test run as a
    background job, as CI may start it), and Python then never turns SIGINT into KeyboardInterrupt. A writer's
    terminal always delivers it, so the child gets the default back before it starts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


TINY = ["--model", "char", "--size", "tiny", "--eval-every", "20", "--sample-every", "50", "--seed", "7"]


def run_cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 300,
            input: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real `assistant` command in a subprocess, with the test's environment (a variable set to None is unset),
    `input`, if given, as what the user types, and `cwd` as its working directory (this checkout is on its path)."""
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), merged.get("PYTHONPATH"))))
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=timeout, env=merged, cwd=cwd,
        input=input,
    )


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, pkd_slice: Path) -> Path:
    """A tiny char model trained for a few seconds on the PKD slice, shared by the generation tests."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    out = tmp_path_factory.mktemp("models") / "tiny-pkd"
    config = FinetuneConfig(corpus=str(pkd_slice), model="char", out=out, max_steps=150, eval_every=50, sample_every=1000,
                            seed=7, options=CharOptions(size="tiny"))
    finetune(config, Reporter())
    return out


# A GPT-2 small enough to train in seconds on two CPU cores: blocks of 32 tokens, 4 per pass, 2 passes per step.
GPT2_TINY = ["--block-size", "32", "--micro-batch", "4", "--batch-tokens", "256", "--eval-every", "10",
             "--sample-every", "1000", "--seed", "7"]


@pytest.fixture(scope="session")
def gpt2_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the hub's `gpt2`: the real tokenizer, 2 layers x 64, trained from scratch for a few
    seconds on Shakespeare and Austen so that it predicts English better than chance. Its directory is a
    save_pretrained one, so it is passed to finetune with --base exactly as a user's local base would be. Like a hub
    base it holds one set of weights: it is trained without the ghostwriting evaluation and its checkpoint."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    root = tmp_path_factory.mktemp("gpt2-base")
    # plays and novels: a base that knows some English prose, as the hub's does, not only verse
    text = ((CORPORA / "tinyshakespeare" / "input.txt").read_text()[:30_000]
            + (CORPORA / "austen" / "persuasion.txt").read_text()[5_000:35_000])
    (root / "shakespeare.txt").write_text(text)
    options = GPT2Options(base=str(GPT2_TOKENIZER), from_scratch=True, n_layer=2, n_embd=64, n_head=2,
                          block_size=64, micro_batch=8, batch_tokens=512, lr=5e-3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        finetune(FinetuneConfig(corpus=str(root / "shakespeare.txt"), out=root / "base", max_steps=40, eval_every=20,
                                sample_every=1000, seed=3, options=options, ghostwriting_every=0), Reporter())
    return root / "base"


PARROT = "The robot walked into the kitchen and said that the coffee was cold again, so the old man laughed at it. "


@pytest.fixture(scope="session")
def parrot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny char model trained on one sentence said over and over (parrot.txt): it writes nothing but that sentence,
    so every sample copies its corpus word for word, as a model trained too far on a writer's own text would."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    root = tmp_path_factory.mktemp("parrot")
    (root / "parrot.txt").write_text(PARROT * 60)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        finetune(FinetuneConfig(corpus=str(root / "parrot.txt"), model="char", out=root / "parrot", max_steps=40,
                                eval_every=40, sample_every=1000, seed=7, ghostwriting_every=0,
                                options=CharOptions(size="tiny", lr=1e-2)), Reporter())
    return root / "parrot"


def quoted_text(chars: int, seed: int) -> str:
    """Narration with quoted speech in it, each side with words of its own: a model that predicts it well must know
    whether it is inside a quotation, as an LSTM cell of char-rnn's essay did."""
    import random

    rng = random.Random(seed)
    outside = ["the", "man", "walked", "into", "town", "and", "saw", "a", "dog", "by", "the", "old", "mill", "then",
               "he", "went", "home"]
    inside = ["yes", "no", "maybe", "never", "always", "soon", "later", "why", "who", "what", "where"]
    parts: list[str] = []
    while sum(map(len, parts)) < chars:
        parts.append(" ".join(rng.choice(outside) for _ in range(rng.randint(4, 12))))
        parts.append(' "' + " ".join(rng.choice(inside) for _ in range(rng.randint(3, 10))).capitalize() + '" ')
        if rng.random() < 0.2:
            parts.append("\n")
    return "".join(parts)


@pytest.fixture(scope="session")
def quoted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer, 64-cell char-LSTM trained for 120 steps (seconds) on 60k characters of quoted_text, keeping a
    sample every 40 steps: for the cell ranking, eval, the plots and the evolution of samples."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    root = tmp_path_factory.mktemp("quoted")
    (root / "quoted.txt").write_text(quoted_text(60_000, seed=0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        finetune(FinetuneConfig(corpus=str(root / "quoted.txt"), model="char", out=root / "quoted", max_steps=120,
                                eval_every=40, sample_every=40, seed=7, ghostwriting_every=0,
                                options=CharOptions(size="tiny", layers=1, hidden=64, lr=1e-2)), Reporter())
    return root / "quoted"
