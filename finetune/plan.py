"""A run's plan and where it stands: the numbers it follows, its state, and when it stops.

They are apart from the loop because more than the loop reads them: run.py
resolves the plan and checks a resumed run's state before any work, the
evaluations and the summary read the state, and a checkpoint saves it as JSON.
"""

import math
from dataclasses import dataclass, field, fields

from corpora import UserError

EMA_BETA = 0.98  # the smoothed training loss averages roughly the last 50 steps


@dataclass(frozen=True)
class Plan:
    """The resolved numbers a run follows (flags, presets and defaults merged)."""

    lr: float
    max_steps: int | None
    max_time: float | None
    warmup_steps: int
    eval_every: int
    eval_units: int
    sample_every: int
    sample_units: int
    checkpoint_every: int
    target_loss: float | None
    target_on: str
    stop_on_overfit: bool
    overfit_patience: int
    grad_clip: float
    weight_decay: float
    min_lr_ratio: float
    seed: int
    ghostwriting_every: int | None = None  # evaluations between two ghostwriting evaluations (0: none; None: budget)
    max_copying: float = 0.05  # the most copying a ghostwriting checkpoint may show
    stop_on_copying: float | None = None  # stop once copying passes this at two evaluations in a row

    def lr_at(self, step: int, elapsed: float) -> float:
        """Linear warm-up, then cosine decay over the budget (steps or time, whichever is nearer)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = 0.0
        if self.max_steps:
            progress = max(progress, (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps))
        if self.max_time:
            progress = max(progress, elapsed / self.max_time)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


@dataclass
class RunState:
    """Everything besides tensors that resume restores."""

    step: int = 0
    elapsed: float = 0.0
    units: int = 0
    ema: float = 0.0
    ema_steps: int = 0
    best_val: float | None = None
    best_step: int | None = None
    last_val: float | None = None
    evals: list[list[float]] = field(default_factory=list)  # [step, smoothed train, val]
    overfit_warned: bool = False
    evaluations: int = 0
    ghostwriting: dict | None = None  # the chosen checkpoint's step, validation loss and figures
    measured: list[dict] = field(default_factory=list)  # every ghostwriting evaluation: step, validation loss, figures
    copying_over: int = 0  # ghostwriting evaluations in a row whose copying passed --stop-on-copying
    ghostwriting_cost: float = 0.0  # seconds the last ghostwriting evaluation took
    ghostwritten_at: float = 0.0  # the training time it ran at
    history_lines: int = 0
    sample_lines: int = 0

    @classmethod
    def of(cls, saved: dict) -> "RunState":
        """The run state a checkpoint saved (one of an older version may hold keys since dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})

    @property
    def smoothed(self) -> float | None:
        return self.ema / (1 - EMA_BETA**self.ema_steps) if self.ema_steps else None

    def count_step(self, loss: float, units: int) -> None:
        """A step taken: count it, and fold its loss into the smoothed training loss."""
        self.step += 1
        self.units += units
        self.ema = EMA_BETA * self.ema + (1 - EMA_BETA) * loss
        self.ema_steps += 1

    def record_val(self, val: float) -> bool:
        """Note a validation loss measured after a step; True when it is the best yet (its weights are worth keeping)."""
        self.last_val = val
        best = self.best_val is None or val < self.best_val
        if best:
            self.best_val, self.best_step = val, self.step
        self.evals.append([self.step, self.smoothed, val])
        self.evaluations += 1
        return best


def stop_reason(p: Plan, s: RunState) -> str | None:
    """Why a run in state `s` stops under plan `p` (a Ctrl-C aside), or None to go on."""
    if p.target_loss is not None:
        current = s.smoothed if p.target_on == "train" else s.last_val
        if current is not None and current <= p.target_loss and (p.target_on == "val" or s.step > 0):
            return "target"
    if p.stop_on_overfit and s.overfit_warned:
        return "overfit"
    if s.copying_over >= 2:
        return "copying"
    if p.max_steps is not None and s.step >= p.max_steps:
        return "max_steps"
    if p.max_time is not None and s.elapsed >= p.max_time:
        return "max_time"
    return None


def check_unfinished(p: Plan, s: RunState) -> None:
    """A resumed run that would stop before its first step says how to go on instead of doing nothing: called with
    the checkpoint's run state before any work (the ghostwriting evaluation's set-up, the baseline)."""
    reason = stop_reason(p, s)
    if reason is None:
        return
    how = {
        "target": lambda: f"it reached --target-loss {p.target_loss}; to go on, --resume with a lower --target-loss",
        "max_steps": lambda: f"it reached --max-steps {p.max_steps}; to go on, --resume with a higher --max-steps",
        "max_time": lambda: f"it reached --max-time {p.max_time:g}s of training; to go on, --resume with a higher "
                            "--max-time (or a --max-steps)",
        "overfit": lambda: "it had started to memorize its corpus (--stop-on-overfit): training on would only "
                           "memorize more; train a new model with more text",
        "copying": lambda: "its samples copied the corpus (--stop-on-copying): training on would only copy more; "
                           "train a new model with more text",
    }[reason]()
    raise UserError(f"nothing to resume: training stopped at step {s.step} because {how}")

