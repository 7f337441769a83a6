"""How a run ended, and how it is told: the Summary kept as config.json's `result`, the closing lines a writer
reads, and the one-line account of a ghostwriting evaluation that the run says as it goes.

Apart from the loop because the command line (`assistant finetune`) and the
tests read a summary without training, and because what is said is a matter of
wording, not of when things happen.
"""

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corpora.home import models_dir

from .amount import after_training
from .ghostwriting.choice import choose, explain, share_text
from .plan import Plan, RunState
from .progress import format_duration

if TYPE_CHECKING:  # reading or telling a summary needs no torch: only Summary.of takes an adapter
    from .adapter import Adapter


@dataclass
class Summary:
    """How a run ended: returned to the caller, kept as config.json's `result`, told by describe_summary."""

    path: Path
    unit: str
    chars_per_unit: float
    steps: int
    elapsed: float
    train_loss: float | None
    val_loss: float | None
    best_val: float | None
    best_step: int | None
    target_loss: float | None
    target_on: str
    target_met: bool
    stop_reason: str
    overfit_warned: bool
    ghostwriting_step: int | None = None
    ghostwriting: dict | None = None  # the ghostwriting checkpoint's figures
    ghostwriting_reason: str | None = None  # why that checkpoint, in one line with numbers
    baseline: dict | None = None  # the n-gram baseline on the validation text: {"order", "val_per_char"}

    @classmethod
    def of(cls, reason: str, s: RunState, p: Plan, path: Path, adapter: "Adapter", baseline: dict | None) -> "Summary":
        """The summary of a run that stopped for `reason` in state `s` under plan `p`."""
        current = s.smoothed if p.target_on == "train" else s.last_val
        met = p.target_loss is not None and current is not None and current <= p.target_loss
        return cls(
            path=path, unit=adapter.unit, chars_per_unit=adapter.chars_per_unit, steps=s.step,
            elapsed=s.elapsed, train_loss=s.smoothed,
            val_loss=s.last_val, best_val=s.best_val, best_step=s.best_step, target_loss=p.target_loss,
            target_on=p.target_on, target_met=met, stop_reason=reason, overfit_warned=s.overfit_warned,
            ghostwriting_step=s.ghostwriting["step"] if s.ghostwriting else None, ghostwriting=s.ghostwriting,
            ghostwriting_reason=explain(choose(s.measured, p.max_copying), s.ghostwriting["step"] if s.ghostwriting else None,
                                        s.best_step) if any(r["step"] > 0 for r in s.measured) else None,
            baseline=baseline,
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


STOP_REASONS = {
    "target": "reached the target loss",
    "max_steps": "reached --max-steps",
    "max_time": "reached --max-time (training time, resumes included)",
    "overfit": "stopped on overfitting (--stop-on-overfit)",
    "interrupted": "interrupted; continue with --resume",
    "diverged": "diverged (loss is not finite)",
    "out_of_memory": "ran out of device memory",
    "copying": "stopped on copying (--stop-on-copying)",
}


def describe_figures(step: int, figures: dict) -> str:
    """One line of a ghostwriting evaluation, as the run says it."""
    return (f"step {step}: copying {share_text(figures, 'copying')}, style {share_text(figures, 'style')}, "
            f"prompt-following {share_text(figures, 'prompt_following')}, "
            f"distinct-3 {figures['distinct_3'] if figures.get('distinct_3') is not None else '-'}")


def describe_summary(summary: Summary) -> list[str]:
    """The closing lines a user reads."""
    u = summary.unit

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f} nats/{u} ({x / math.log(2) / summary.chars_per_unit:.2f} bits/char)"

    lines = [
        f"Stopped after {summary.steps} steps in {format_duration(summary.elapsed)}: {STOP_REASONS[summary.stop_reason]}.",
        f"  train loss (smoothed) {fmt(summary.train_loss)}",
        f"  validation loss       {fmt(summary.val_loss)}",
        f"  best validation loss  {fmt(summary.best_val)} at step {summary.best_step}",
    ]
    if summary.target_loss is not None:
        verdict = "met" if summary.target_met else "not met"
        lines.append(f"  target {summary.target_loss} on {summary.target_on} loss: {verdict}")
    if summary.ghostwriting is not None:
        lines.append(f"  ghostwriting checkpoint (what the model writes by default): "
                     f"{describe_figures(summary.ghostwriting['step'], summary.ghostwriting)}")
    if summary.ghostwriting_reason:
        lines.append(f"  {summary.ghostwriting_reason}")
    if summary.baseline is not None:
        lines.append(f"  n-gram baseline ({summary.baseline['order']}-gram Kneser-Ney) on the same validation text: "
                     f"{summary.baseline['val_per_char']:.3f} nats/char")
    lines.append(f"  model: {summary.path}")
    name = summary.path.name if summary.path.parent == models_dir() else str(summary.path)
    return lines + behind_counting(summary) + after_training(summary.steps, summary.best_step, name)


def behind_counting(summary: Summary) -> list[str]:
    """A warning when the model a writer gets by default does not beat the n-gram baseline: it has learnt less
    than counting the corpus's characters does, so it writes worse than it could."""
    default = summary.ghostwriting or ({"step": summary.best_step, "val_loss": summary.best_val}
                                       if summary.best_val is not None else None)
    if summary.baseline is None or default is None or summary.steps == 0:
        return []
    per_char = default["val_loss"] / summary.chars_per_unit
    if per_char < summary.baseline["val_per_char"]:
        return []
    return [f"Warning: the model that loads by default (step {default['step']}, {per_char:.3f} nats/char) does not beat "
            f"counting: a {summary.baseline['order']}-gram model gives {summary.baseline['val_per_char']:.3f} on the same "
            "validation text. Train longer (--resume with a higher --max-time or --max-steps), use a bigger --size, or "
            "add text."]
