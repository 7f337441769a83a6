"""GPT-2's matrix products in int8 on a CPU, allowed only where they cost no measurable quality.

A CPU decode step of GPT-2 small reads all its weights, 500 MB in float32,
for one token: memory, not arithmetic, sets the pace. Stored as int8 with one
scale per output row, the same products read a quarter of that, and torch's
dynamic quantized linear layers (fbgemm on x86, qnnpack on ARM) quantize the
activations row by row as they go. Measured per product on 1 thread here,
3-6x faster than float32; the output layer (768 x 50,257) 6x.

Rounding weights costs some accuracy, and a model is only worth writing with
if it still sounds like itself. So int8 is allowed only when the validation
loss on the model's own corpus rises by at most MAX_RISE nats per token over
float32. The check runs once per checkpoint and is recorded beside its weights
(RECORD), keyed by the weights it measured; a failed check is answered with
its numbers. The embedding stays float32: it is a lookup, not a product, and
untying it from the output layer keeps it exact.
"""

import copy
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from contract.modeldir import CHECKPOINT, MERGED
from corpora.files import write_text

MAX_RISE = 0.02  # nats per token that int8 may add to the validation loss
CHECK_TOKENS = 2048  # validation tokens the check reads: the same ones in both precisions, so the difference is tight
CHECK_BLOCK = 256
RECORD = "int8-check.json"


@dataclass(frozen=True)
class Int8Check:
    """Validation loss of one checkpoint in float32 and in int8, on the same tokens."""

    float32: float
    int8: float
    tokens: int
    weights: str  # which weights were measured (see weights_key): a retrained checkpoint is measured again

    @property
    def rise(self) -> float:
        return self.int8 - self.float32

    @property
    def passed(self) -> bool:
        return math.isfinite(self.rise) and self.rise <= MAX_RISE

    def describe(self) -> str:
        return (f"int8 validation loss {self.int8:.4f} against float32 {self.float32:.4f} "
                f"({self.rise:+.4f} nats per token over {self.tokens:,} tokens; at most +{MAX_RISE} is allowed)")


def available() -> bool:
    """Whether this torch build has a quantized engine for dynamic int8 linear layers (fbgemm, x86, qnnpack)."""
    return any(e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "qnnpack"))


def _dynamic_linear(linear: nn.Linear) -> nn.Module:
    """`linear` as torch's dynamic int8 layer, weights quantized per output row."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    linear.qconfig = per_channel_dynamic_qconfig
    with warnings.catch_warnings():  # torch calls its own eager quantization API deprecated, yet ships no other on a CPU
        warnings.simplefilter("ignore")
        return DynamicLinear.from_float(linear)


def _as_linear(conv: nn.Module) -> nn.Linear:
    """transformers' Conv1D (x @ W + b, W stored in x out) as the nn.Linear it is."""
    n_in, n_out = conv.weight.shape
    linear = nn.Linear(n_in, n_out)
    linear.weight = nn.Parameter(conv.weight.detach().t().contiguous())
    linear.bias = nn.Parameter(conv.bias.detach().clone())
    return linear


def to_int8(model: nn.Module) -> nn.Module:
    """An int8 copy of a GPT-2 (float32, CPU): every block's four products and the output layer.

    A LoRA model (peft) is merged first: its adapted layers are wrappers whose own weight is the base's alone.
    """
    model = copy.deepcopy(model).float().cpu().eval()
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for block in model.transformer.h:
        block.attn.c_attn = _dynamic_linear(_as_linear(block.attn.c_attn))
        block.attn.c_proj = _dynamic_linear(_as_linear(block.attn.c_proj))
        block.mlp.c_fc = _dynamic_linear(_as_linear(block.mlp.c_fc))
        block.mlp.c_proj = _dynamic_linear(_as_linear(block.mlp.c_proj))
    head = nn.Linear(model.config.n_embd, model.config.vocab_size, bias=False)
    head.weight = nn.Parameter(model.lm_head.weight.detach().clone())  # untied: the embedding stays float32
    model.lm_head = _dynamic_linear(head)
    model.config.tie_word_embeddings = False
    return model


@torch.inference_mode()
def mean_loss(model: nn.Module, ids: torch.Tensor) -> float:
    """Mean next-token loss (nats) of `ids` in blocks of CHECK_BLOCK, each block predicted from its own start."""
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, CHECK_BLOCK):
        block = ids[start : start + CHECK_BLOCK + 1]
        if len(block) < 2:
            break
        logits = model(input_ids=block[None, :-1]).logits[0].float()
        total += float(torch.nn.functional.cross_entropy(logits, block[1:], reduction="sum"))
        count += len(block) - 1
    return total / count


def weights_key(folder: Path) -> str:
    """The size and modification time of the weight files a checkpoint loads from: which weights a record is for.

    The folder's own files and merged/; not the training state (checkpoint.safetensors, rewritten at every
    checkpoint) nor the other checkpoints' folders beneath the best-val one.
    """
    files = sorted(p for p in (*folder.glob("*.safetensors"), *(folder / MERGED).glob("*.safetensors"))
                   if p.name != CHECKPOINT)
    return ";".join(f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def read_record(folder: Path) -> Int8Check | None:
    """The recorded check of the weights now in `folder`; None when there is none, or it was for other weights."""
    try:
        check = Int8Check(**json.loads((folder / RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return check if check.weights == weights_key(folder) else None


def measure(model: nn.Module, ids: torch.Tensor, weights: str) -> Int8Check:
    """The check, measured: `model` in float32 and its int8 copy on the same validation tokens."""
    return Int8Check(mean_loss(model, ids), mean_loss(to_int8(model), ids), len(ids) - 1, weights)


def record(folder: Path, check: Int8Check) -> None:
    """Keep the check beside the weights it measured; a read-only model directory just measures again next time."""
    try:
        write_text(folder / RECORD, json.dumps(asdict(check), indent=1) + "\n")
    except OSError as e:
        warnings.warn(f"could not record the int8 check in {folder}: {e.strerror}", stacklevel=2)


def validation_ids(corpus, tokenizer, split: dict | None) -> torch.Tensor:
    """Up to CHECK_TOKENS of the model's validation split, the way training split its corpus."""
    from .data import split_tokens, tokenize

    how = (split or {}).get("how", "contiguous")
    _, val, _ = split_tokens(tokenize(corpus, tokenizer), how, corpus)
    return torch.from_numpy(val[: CHECK_TOKENS + 1].astype("int64"))

