"""The GPU paths, as far as a CPU can check them: device choice, precision, and GPU checkpoints resuming here."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from contract.modeldir import CHECKPOINT, LAST
from corpora import UserError
from finetune.checkpoint import read_jsonl
from finetune.config import FinetuneConfig
from finetune.device import autocast, cpu_has_native_bf16, pick_device
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_cuda_precision_is_bf16_autocast_and_cpu_is_float32():
    ctx = autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    assert not isinstance(autocast(torch.device("cpu")), torch.autocast)


@pytest.mark.parametrize(("avx512_bf16", "amx", "native"), [(False, False, False), (True, False, True), (False, True, True)])
def test_a_cpu_has_native_bf16_with_avx512_bf16_or_amx(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool,
                                                        native: bool):
    """What GPT-2's default --cpu-bf16 follows: bf16 products only where the CPU does not emulate them."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_has_native_bf16() is native


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without CUDA gives")
def test_asking_for_cuda_without_a_gpu_is_a_user_error():
    with pytest.raises(UserError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(UserError, match="unknown --device"):
        pick_device("gpu0")
    assert pick_device("auto").type == "cpu"


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(pkd_slice: Path, tmp_path: Path):
    """A CUDA run's checkpoint has fused AdamW groups and a CUDA RNG state; the CPU must take it as it is."""
    out = tmp_path / "m"
    config = FinetuneConfig(corpus=str(pkd_slice), model="char", out=out, max_steps=10, eval_every=5,
                            ghostwriting_every=0, options=CharOptions(size="tiny"))  # the evaluation: not the point
    finetune(config, Reporter())
    path = out / LAST / CHECKPOINT
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["state"])
    for group in meta["optimizer"]["groups"]:
        group["fused"] = True
    tensors = load_file(str(path))
    tensors["rng.cuda"] = torch.zeros(16, dtype=torch.uint8)
    save_file(tensors, str(path), metadata={"state": json.dumps(meta)})
    config = FinetuneConfig(corpus=str(pkd_slice), model="char", out=out, max_steps=15, resume=True, device="cpu",
                            ghostwriting_every=0)
    summary = finetune(config, Reporter())
    assert summary.steps == 15 and len(read_jsonl(out / "history.jsonl")) == 16


def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch: pytest.MonkeyPatch):
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert pick_device("auto").type == expected
