"""What a `finetune` run is asked to do: one dataclass the CLI fills from flags.

The training loop options (bounds, target loss, evaluation, checkpoints) are
shared by every model kind; each kind brings its own options dataclass (its
`options.py`, see contract.registry), which the CLI fills from the flags given. A
flag of one kind given to another is an error, never silently ignored.
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from contract import modeldir, registry
from corpora import UserError

if TYPE_CHECKING:
    from .ghostwriting.evaluate import GhostwritingOptions

TargetOn = Literal["train", "val"]
MAX_SEED = 2**31 - 1


@dataclass
class FinetuneConfig:
    corpus: str
    model: str = "gpt2"
    name: str | None = None
    out: Path | None = None
    encoding: str | None = None
    unwrap: bool | None = None  # join hard-wrapped lines: None where the text is hard-wrapped (corpora.unwrap)
    author_tags: bool = False  # several corpora (A,B), each document after its author's tag (corpora.authors)
    # bounds and the loss threshold
    max_steps: int | None = None
    max_time: float | None = None  # seconds of training, summed over resumes
    target_loss: float | None = None
    target_on: TargetOn | None = None  # None: "train" (or, on resume, what the run had)
    stop_on_overfit: bool = False
    overfit_patience: int = 3
    # optimisation shared by every kind
    weight_decay: float | None = None  # None: the kind's preset's
    grad_clip: float = 1.0
    warmup_steps: int | None = None
    min_lr_ratio: float | None = None  # None: the kind's preset's
    # what is watched and kept
    eval_every: int | None = None
    eval_chars: int = 200_000
    sample_every: int | None = None
    sample_chars: int = 200
    checkpoint_every: int | None = None
    # the ghostwriting evaluation (finetune.ghostwriting) and the checkpoint it chooses
    ghostwriting_every: int | None = None  # evaluations between two; 0: off; None: as often as costs <10% of the time
    eval_samples: int | None = None  # None: the kind's (finetune.adapter.Adapter.ghostwriting_samples)
    copy_span: int = 50
    max_copying: float = 0.05
    stop_on_copying: float | None = None
    temperature: float = 0.8  # how the evaluation's samples (and the samples shown while training) are drawn
    top_k: int | None = None
    top_p: float | None = None
    sampling: dict = field(default_factory=dict)  # the rest of the evaluation's chain (contract.sampling.Sampling)
    seed: int = 1337
    device: str = "auto"
    fsdp: bool = False  # shard a GPT-2 over the processes torchrun started (finetune.distributed)
    resume: bool = False
    force: bool = False
    options: Any = None  # the kind's options dataclass (None: its defaults)

    def __post_init__(self) -> None:
        self.model = registry.get(self.model).name  # an older spelling (char-lstm) as the one name
        if self.options is None:
            self.options = registry.get(self.model).options()

    def validate(self) -> None:
        kind = registry.get(self.model)
        if not isinstance(self.options, kind.options):
            raise TypeError(f"--model {self.model} takes {kind.options.__name__}, not {type(self.options).__name__}")
        self.options.validate()
        if self.name is not None and not modeldir.is_plain_name(self.name):
            raise UserError(f"--name {self.name!r} must be a plain name (no '/' or '..'); use --out for a path")
        if self.fsdp and self.model != "gpt2":
            raise UserError(f"--fsdp shards a GPT-2 over several GPUs; a {self.model} model trains with plain DDP")
        if self.fsdp and getattr(self.options, "merge", False):
            raise UserError("--merge cannot fold an adapter into a base that FSDP shards: train with --fsdp, then "
                            "load base + adapter (peft.PeftModel.from_pretrained) and merge_and_unload")
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
        if self.weight_decay is not None and not (0 <= self.weight_decay < 1):
            raise UserError(f"--weight-decay must be in [0, 1), got {self.weight_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        for flag, rate in (("--max-copying", self.max_copying), ("--stop-on-copying", self.stop_on_copying)):
            if rate is not None and not 0 <= rate <= 1:
                raise UserError(f"{flag} is a share of samples, from 0 to 1, got {rate}")
        if self.ghostwriting_every is not None and self.ghostwriting_every < 0:
            raise UserError(f"--ghostwriting-every must be 0 (off) or more, got {self.ghostwriting_every}")
        self.ghostwriting().check()
        if self.target_on not in (None, "train", "val"):
            raise UserError(f"--target-on must be 'train' or 'val', got {self.target_on!r}")

    def ghostwriting(self, kind_samples: int = 16) -> "GhostwritingOptions":
        """The ghostwriting evaluation's options; `kind_samples`: the kind's K when --eval-samples is not given."""
        from contract.sampling import Sampling

        from .ghostwriting.evaluate import GhostwritingOptions

        return GhostwritingOptions(samples=self.eval_samples or kind_samples, min_span=self.copy_span,
                                   sampling=Sampling.read({**self.sampling, "temperature": self.temperature,
                                                           "top_k": self.top_k, "top_p": self.top_p}))

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
