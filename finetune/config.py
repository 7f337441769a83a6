"""What a `finetune` run is asked to do: one dataclass the CLI fills from flags.

The training loop options (bounds, target loss, evaluation, checkpoints) are
shared by every model kind; each kind adds its own options dataclass
(`CharOptions` here) for its architecture.
"""

import math
from dataclasses import asdict, dataclass, field
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
class FinetuneConfig:
    corpus: str
    model: str = "char"
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

    def validate(self) -> None:
        if self.model != "char":
            raise UserError(f"unknown model kind {self.model!r}: this version trains 'char'")
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
