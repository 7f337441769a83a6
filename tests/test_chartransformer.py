"""The char transformer end to end on real (small) text: tiny models, the CPU, no stand-ins."""

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from assistant import load_model
from contract.sampling import PromptWarning
from corpora import UserError
from finetune.checkpoint import read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from finetune.summary import Summary
from kinds.charlstm.options import CharOptions
from kinds.chartransformer import presets
from kinds.chartransformer.model import CharGPT, CharGPTConfig

from .conftest import run_cli

KIND = "char-transformer"


def _train(corpus: Path, out: Path, reporter: Reporter | None = None, **kwargs) -> Summary:
    """A run without the ghostwriting evaluation unless asked: a transformer writes its samples without a KV cache,
    which is most of a tiny run's time (tests/test_ghostwriting.py covers the evaluation)."""
    options = kwargs.pop("options", CharOptions(size="tiny"))
    kwargs.setdefault("ghostwriting_every", 0)
    config = FinetuneConfig(corpus=str(corpus), model=KIND, out=out, seed=7, device="cpu", options=options, **kwargs)
    return finetune(config, reporter or Reporter())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, pkd_slice: Path) -> Path:
    """A tiny char transformer trained for a few seconds on the PKD slice, shared by this module's tests."""
    root = tmp_path_factory.mktemp("chartransformer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        _train(pkd_slice, root / "tiny", max_steps=50, eval_every=25, sample_every=25)
    return root / "tiny"


def test_training_learns_and_writes_a_char_transformer_directory(tiny_model: Path):
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["kind"] == KIND and config["size"] == "tiny"
    vocab = config["vocab"]
    assert config["architecture"] == {"vocab_size": len(vocab), "block_size": 64, "layers": 2, "hidden": 64, "heads": 1,
                                      "dropout": 0.0}
    assert config["prime"] == "\n\n" and config["hparams"]["seq_len"] == 64
    history = read_jsonl(tiny_model / "history.jsonl")
    vals = [r["val_loss"] for r in history if "val_loss" in r]
    assert [r["step"] for r in history] == list(range(51))
    assert abs(vals[0] - math.log(len(vocab))) < 0.3  # untrained: about uniform over the vocabulary
    assert vals[-1] < math.log(len(vocab)) - 1.0 and config["result"]["best_val"] == min(vals)
    weights = load_file(str(tiny_model / "model.safetensors"))
    assert sum(t.numel() for t in weights.values()) == config["parameters"]  # the tied output matrix is stored once
    samples = read_jsonl(tiny_model / "samples.jsonl")
    assert [s["step"] for s in samples] == [25, 50]
    assert all(len(s["text"]) == 200 and set(s["text"]) <= set(vocab) for s in samples)


def test_generation_is_seeded_bounded_and_takes_any_prompt(tiny_model: Path):
    model = load_model(tiny_model, "cpu")
    assert model.kind == KIND
    text = model.generate("The door opened and", max_new_chars=80, seed=1)
    assert len(text) == 80 and text == model.generate("The door opened and", max_new_chars=80, seed=1)
    assert text != model.generate("The door opened and", max_new_chars=80, seed=2)
    greedy = model.generate("The door", max_new_chars=30, temperature=0, seed=1)
    assert greedy == model.generate("The door", max_new_chars=30, temperature=0, seed=5)
    long_prompt = "He looked at the door for a long time. " * 8  # longer than the block: only its end is read
    assert len(model.generate(long_prompt, max_new_chars=20, seed=1, top_k=5, top_p=0.9)) == 20
    with pytest.warns(PromptWarning, match="dropped: '☃'"):
        assert len(model.generate("Snow ☃ fell", max_new_chars=10, seed=1)) == 10


def test_attention_is_causal():
    torch.manual_seed(0)
    model = CharGPT(CharGPTConfig(vocab_size=20, block_size=16, layers=2, hidden=64, heads=2, dropout=0.0)).eval()
    ids = torch.randint(0, 20, (3, 16))
    changed = ids.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 20
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :10], model(changed)[:, :10], atol=1e-6)
        assert not torch.allclose(model(ids)[:, 10:], model(changed)[:, 10:])
    with pytest.raises(ValueError, match="longer than the block size"):
        model(torch.zeros(1, 17, dtype=torch.long))


class CtrlCAt(Reporter):
    """Presses Ctrl-C (a real SIGINT to this process) once the run has done `step` steps."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def update(self, completed: int, step: int, *args: object, **kwargs: object) -> None:
        super().update(completed, step, *args, **kwargs)  # type: ignore[arg-type]
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_run_resumes_exactly(pkd_slice: Path, tmp_path: Path):
    # dropout on, so the resumed run must also restore the random state; 30 steps cross epochs (about 8 steps each)
    run = {"max_steps": 30, "eval_every": 10, "sample_every": 15, "sample_chars": 40,  # a transformer samples without a cache
           "options": CharOptions(size="tiny", dropout=0.1)}
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    _train(pkd_slice, straight, **run)
    interrupted = _train(pkd_slice, broken, CtrlCAt(12), **run)
    assert interrupted.stop_reason == "interrupted" and 12 <= interrupted.steps < 30
    resumed = _train(pkd_slice, broken, resume=True, **run)
    assert resumed.steps == 30
    a, b = read_jsonl(straight / "history.jsonl"), read_jsonl(broken / "history.jsonl")
    assert [r["step"] for r in b] == list(range(31))
    assert [r.get("train_loss") for r in a] == [r.get("train_loss") for r in b]
    # the stop measured the weights it ended with, off the schedule (every stop does): that row's validation is extra
    stop = interrupted.steps
    assert stop % 10 == 0 or b[stop].get("val_loss") is not None
    assert [r.get("val_loss") for r in a] == [None if r["step"] == stop and stop % 10 else r.get("val_loss") for r in b]
    def samples(path: Path) -> list[dict]:  # each with the latest validation loss, which the extra one changes
        return [{k: v for k, v in r.items() if k != "val_loss"} for r in read_jsonl(path / "samples.jsonl")]

    assert samples(straight) == samples(broken)
    assert (straight / "last" / "model.safetensors").read_bytes() == (broken / "last" / "model.safetensors").read_bytes()


def test_presets_resolve_for_the_device_and_check_the_width():
    assert presets.resolve(CharOptions(), "cpu")[0] == "small"
    assert presets.resolve(CharOptions(), "cuda")[0] == "large"
    size, hp = presets.resolve(CharOptions(size="tiny", hidden=192, seq_len=32), "cpu")
    assert (size, hp.hidden, presets.heads(hp.hidden), hp.seq_len, hp.layers) == ("tiny", 192, 3, 32, 2)
    with pytest.raises(UserError, match="--hidden must be a multiple of its 2 attention heads"):
        presets.resolve(CharOptions(size="tiny", hidden=129), "cpu")
    with pytest.raises(UserError, match="unknown --size 'huge'"):
        presets.resolve(CharOptions(size="huge"), "cpu")


def test_the_command_line_trains_one(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "cli"
    result = run_cli("finetune", str(pkd_slice), "--model", KIND, "--size", "tiny", "--max-steps", "20", "--eval-every", "10",
                     "--sample-every", "1000", "--ghostwriting-every", "0", "--seed", "7", "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Training a tiny char transformer (2x64, 1 head(s), context 64" in result.stderr
    assert "Stopped after 20 steps" in result.stderr
    assert json.loads((out / "config.json").read_text())["kind"] == KIND
