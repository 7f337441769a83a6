"""What a `finetune` run is asked to do: one dataclass the CLI fills from flags.

The training loop options (bounds, target loss, evaluation, checkpoints) are
shared by every model kind; each kind adds its own options dataclass
(`CharOptions`, `GPT2Options`) for its architecture. A flag of one kind given
to the other is an error, never silently ignored.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from corpora import UserError

TargetOn = Literal["train", "val"]
MAX_SEED = 2**31 - 1


@dataclass
class CharOptions:
    """Char-LSTM architecture and batch shape; None takes the size preset's value."""

    size: str = "auto"
    layers: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    seq_len: int | None = None
    batch_size: int | None = None
    lr: float | None = None


@dataclass
class GPT2Options:
    """GPT-2 base, architecture (from scratch only), batch shape and LoRA; None takes the default for the device."""

    base: str = "gpt2"
    from_scratch: bool = False
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    block_size: int | None = None
    batch_tokens: int | None = None
    micro_batch: int | None = None
    lr: float | None = None
    dropout: float | None = None
    split: str = "contiguous"
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "c_attn,c_proj"
    merge: bool = False
    compile: bool | None = None  # None: on for CUDA
    grad_checkpointing: bool = False

    @property
    def lora_modules(self) -> list[str]:
        """--lora-targets as a list of module names."""
        return [t.strip() for t in self.lora_targets.split(",") if t.strip()]

    def validate(self) -> None:
        if not self.from_scratch and (arch := [f for f in ("n_layer", "n_embd", "n_head") if getattr(self, f) is not None]):
            raise UserError(f"--{arch[0].replace('_', '-')} shapes a new model: it needs --from-scratch (a base keeps its shape)")
        if self.from_scratch and self.lora:
            raise UserError("--lora adapts a trained base; a model trained --from-scratch trains all its weights")
        if self.merge and not self.lora:
            raise UserError("--merge merges a LoRA adapter into its base: it needs --lora")
        defaults = {f.name: f.default for f in fields(self)}
        if not self.lora and (stray := [k for k in LORA_SHAPE if getattr(self, k) != defaults[k]]):
            raise UserError(f"--{stray[0].replace('_', '-')} shapes a LoRA adapter: it needs --lora")
        for flag, value in (("--n-layer", self.n_layer), ("--n-embd", self.n_embd), ("--n-head", self.n_head),
                            ("--block-size", self.block_size), ("--batch-tokens", self.batch_tokens),
                            ("--micro-batch", self.micro_batch), ("--lora-r", self.lora_r)):
            if value is not None and value < 1:
                raise UserError(f"{flag} must be at least 1, got {value}")
        if self.n_embd is not None and self.n_head is not None and self.n_embd % self.n_head:
            raise UserError(f"--n-embd {self.n_embd} must be a multiple of --n-head {self.n_head}")
        if self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise UserError("--lora-alpha must be positive and --lora-dropout in [0, 1)")
        if not self.lora_modules:
            raise UserError("--lora-targets needs at least one module name, e.g. c_attn,c_proj")
        if self.merge and "lm_head" in self.lora_modules:
            raise UserError("--merge cannot fold a LoRA adapter on lm_head into GPT-2: lm_head shares its weights with "
                            "the token embeddings, which would change too; drop --merge or lm_head")
        if self.split not in ("contiguous", "document"):
            raise UserError(f"--split must be 'contiguous' or 'document', got {self.split!r}")
        if self.lr is not None and self.lr <= 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")


LORA_SHAPE = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets")
SHARED_FLAGS = ("lr", "dropout")  # one flag each, meaning the same for every kind


def flags_set(options: CharOptions | GPT2Options) -> list[str]:
    """The command-line flags whose values differ from the defaults, spelled as the user typed them."""
    return [
        "--" + f.name.replace("_", "-")
        for f in fields(options)
        if getattr(options, f.name) != f.default and f.name not in SHARED_FLAGS
    ]


MODEL_KINDS = ("gpt2", "char")


@dataclass
class FinetuneConfig:
    corpus: str
    model: str = "gpt2"
    name: str | None = None
    out: Path | None = None
    encoding: str | None = None
    # bounds and the loss threshold
    max_steps: int | None = None
    max_time: float | None = None  # seconds of training, summed over resumes
    target_loss: float | None = None
    target_on: TargetOn | None = None  # None: "train" (or, on resume, what the run had)
    stop_on_overfit: bool = False
    overfit_patience: int = 3
    # optimisation shared by every kind
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.1
    # what is watched and kept
    eval_every: int | None = None
    eval_chars: int = 200_000
    sample_every: int | None = None
    sample_chars: int = 200
    checkpoint_every: int | None = None
    seed: int = 1337
    device: str = "auto"
    resume: bool = False
    force: bool = False
    char: CharOptions = field(default_factory=CharOptions)
    gpt2: GPT2Options = field(default_factory=GPT2Options)

    def validate(self) -> None:
        if self.model not in MODEL_KINDS:
            raise UserError(f"unknown --model {self.model!r}: choose {' or '.join(MODEL_KINDS)}")
        other = self.gpt2 if self.model == "char" else self.char
        if stray := flags_set(other):
            raise UserError(f"{', '.join(stray)} {'is' if len(stray) == 1 else 'are'} not for --model {self.model} models")
        if self.model == "gpt2":
            self.gpt2.validate()
        if self.name is not None and (Path(self.name).name != self.name or self.name in ("", ".", "..")):
            raise UserError(f"--name {self.name!r} must be a plain name (no '/' or '..'); use --out for a path")
        if self.resume and self.force:
            raise UserError("--resume and --force contradict each other: pick one")
        if self.target_loss is not None and not (self.target_loss > 0 and math.isfinite(self.target_loss)):
            raise UserError(f"--target-loss must be a positive number of nats, got {self.target_loss}")
        for flag, value in (("--max-steps", self.max_steps), ("--max-time", self.max_time)):
            if value is not None and value <= 0:
                raise UserError(f"{flag} must be positive, got {value}")
        for flag, value in (("--eval-every", self.eval_every), ("--sample-every", self.sample_every),
                            ("--checkpoint-every", self.checkpoint_every)):
            if value is not None and value < 1:
                raise UserError(f"{flag} must be at least 1, got {value}")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.target_on not in (None, "train", "val"):
            raise UserError(f"--target-on must be 'train' or 'val', got {self.target_on!r}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out) if self.out else None
        return d


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1.5h' -> seconds; a one-line error otherwise."""
    units = {"s": 1, "m": 60, "h": 3600}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise UserError(f"cannot read {text!r} as a duration: use seconds or 30s, 10m, 2h") from None
    if value <= 0:
        raise UserError(f"duration must be positive, got {text!r}")
    return value
