"""int8 GPT-2 on a CPU (kinds.gpt2.quantize): allowed by a recorded loss check, refused with its numbers."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from assistant import load_model
from corpora import UserError
from kinds.gpt2 import quantize as int8
from kinds.gpt2.fast import KVCache
from kinds.gpt2.generate import PlainCache, generate_ids, new_cache
from tests.conftest import run_cli


def greedy(model: torch.nn.Module, prime: list[int], n: int, fast: bool) -> list[int]:
    stream = generate_ids(model, prime, torch.Generator(), model.config.n_positions, 0.0, fast=fast)
    return [next(stream) for _ in range(n)]


def test_int8_is_checked_once_recorded_and_then_used(gpt2_base: Path, tmp_path: Path, capfd: pytest.CaptureFixture):
    path = tmp_path / "model"
    shutil.copytree(gpt2_base, path)
    (path / int8.RECORD).unlink(missing_ok=True)  # another test may have loaded the shared base in int8 already
    model = load_model(path, "cpu", "int8")
    assert model.precision == "int8"
    assert "checking" in capfd.readouterr().err
    check = json.loads((path / int8.RECORD).read_text())
    assert check["tokens"] > 500 and abs(check["int8"] - check["float32"]) <= int8.MAX_RISE
    assert load_model(path, "cpu").precision == "int8"  # auto: the record allows it, and it is not measured again
    assert "checking" not in capfd.readouterr().err
    assert load_model(path, "cpu", "none").precision == "float32"

    # int8 writes through the fast path exactly what Hugging Face's forward writes with the same int8 layers
    q = model.decoder.model
    assert isinstance(new_cache(q), KVCache) and isinstance(new_cache(q, fast=False), PlainCache)
    prime = list(range(300, 340))
    assert greedy(q, prime, 30, fast=True) == greedy(q, prime, 30, fast=False)


def test_int8_is_refused_with_its_numbers_when_the_loss_rises(gpt2_base: Path, tmp_path: Path):
    """One outlier in every row of every matrix (a model int8 rounding ruins: the row's other weights round to 0)."""
    path = tmp_path / "spiky"
    shutil.copytree(gpt2_base, path)
    weights = load_file(path / "model.safetensors")
    for name, w in weights.items():
        if name.endswith(("c_attn.weight", "c_fc.weight", "c_proj.weight")):
            w[0] = w[0].abs().max() * 200  # Conv1D weights are (in, out): one input's row spikes every output's column
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"cannot write in int8: int8 validation loss [\d.]+ against float32 [\d.]+ "
                                        r"\(\+[\d.]+ nats per token"):
        load_model(path, "cpu", "int8")
    assert load_model(path, "cpu").precision == "float32"  # auto writes in float32 instead
    result = run_cli("generate", str(path), "--quantize", "int8", "--prompt", "ROMEO:", "--length", "10")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "nats per token" in result.stderr


def test_int8_is_only_for_what_it_can_check(trained_model: Path, gpt2_base: Path):
    with pytest.raises(UserError, match="--quantize int8 is for GPT-2 models"):
        load_model(trained_model, "cpu", "int8")
    assert load_model(trained_model, "cpu").precision == "float32"
    with pytest.raises(UserError, match="unknown quantization"):
        load_model(gpt2_base, "cpu", "int4")


def test_a_lora_model_is_merged_before_it_is_rounded(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    """int8 of base + adapter is int8 of the adapted weights: the check passes, as it does for the merged model."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.gpt2.options import GPT2Options

    options = GPT2Options(base=str(gpt2_base), lora=True, lr=3e-3, block_size=32, micro_batch=4, batch_tokens=256)
    finetune(FinetuneConfig(corpus=str(pkd_slice), out=tmp_path / "lora", max_steps=20, eval_every=10,
                            sample_every=1000, seed=7, options=options, ghostwriting_every=0), Reporter())
    model = load_model(tmp_path / "lora", "cpu", "int8")
    assert model.precision == "int8"
    check = json.loads((tmp_path / "lora" / int8.RECORD).read_text())
    assert abs(check["int8"] - check["float32"]) <= int8.MAX_RISE
