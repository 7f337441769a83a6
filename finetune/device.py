"""Choosing the device and the precision that goes with it.

CUDA gets cuDNN autotuning, TF32 and autocast in the model kind's dtype
(weights stay float32, so a checkpoint loads anywhere); the CPU trains in float32,
or with bf16 products where it multiplies bf16 in hardware (--cpu-bf16).
"""

import contextlib

import torch

from corpora import UserError


def pick_device(name: str = "auto") -> torch.device:
    """The device `--device NAME` means; `auto` is the fastest there is: CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but this machine has no CUDA GPU that torch can use")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps asked for, but MPS is not available here")
    return device


def prepare(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): there bf16 products train GPT-2 about 1.6x
    faster than float32 ones (benchmarks/gpt2_cpu_training.py); elsewhere they are emulated, and slower."""
    cpu = torch.cpu
    checks = (getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def cpu_bf16(device: torch.device, asked: bool | None) -> bool:
    """Whether a run on `device` multiplies in bf16 on a CPU (--cpu-bf16/--no-cpu-bf16; None: where it has bf16 in
    hardware). Weights, gradients and the optimizer stay float32, so a checkpoint is the same either way."""
    return device.type == "cpu" and (asked if asked is not None else cpu_has_native_bf16())


def cpu_autocast(on: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the CPU where `cpu_bf16` said so; nothing otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def describe_cpu_bf16(on: bool) -> str:
    """What a run's first line adds when the CPU multiplies in bf16."""
    return ", bf16 products (--no-cpu-bf16: float32)" if on else ""


def autocast(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()
