"""The training core: one loop for every model kind.

It owns the optimizer and learning-rate schedule, the loss threshold
(`--target-loss`), validation on a schedule, the best and last checkpoints,
the memorization warning, exact resume, progress and the closing summary.
Model kinds plug in through `adapter.Adapter`.
"""

import contextlib
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from corpora import UserError
from kinds import modeldir
from kinds.modeldir import Card

from . import checkpoint as ckpt
from .adapter import Adapter
from .device import autocast
from .plot import loss_curve_svg
from .progress import Reporter, format_duration, format_rate

EMA_BETA = 0.98  # the smoothed training loss averages roughly the last 50 steps
PROGRESS_TICKS = 1000
OVERFIT_MARGIN = 0.01  # validation loss this much (relative) above its best is no longer noise


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
    history_lines: int = 0
    sample_lines: int = 0

    @property
    def smoothed(self) -> float | None:
        return self.ema / (1 - EMA_BETA**self.ema_steps) if self.ema_steps else None


@dataclass
class Summary:
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
}


class Trainer:
    def __init__(
        self, adapter: Adapter, card: Card, plan: Plan, device: torch.device, reporter: Reporter
    ):
        self.adapter = adapter
        self.card = card
        self.dir = card.file("")
        self.plan = plan
        self.device = device
        self.reporter = reporter
        self.state = RunState()
        self.optimizer = self._make_optimizer()
        self.history: list[dict] = []
        self.samples: list[dict] = []
        self.step_time: float | None = None
        self.interrupted = False
        # float16 autocast needs loss scaling so that small gradients do not underflow; bf16 and fp32 do not
        fp16 = device.type == "cuda" and adapter.cuda_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for p in self.adapter.model.parameters():
            if p.requires_grad:
                (decay if p.dim() >= 2 else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.plan.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.plan.lr, betas=(0.9, 0.99), fused=fused)

    # ---- checkpoints -------------------------------------------------
    def _checkpoint(self) -> None:
        """Flush the logs, then write last/ in one atomic rename."""
        ckpt.append_jsonl(self.dir / ckpt.HISTORY, self.history)
        ckpt.append_jsonl(self.dir / ckpt.SAMPLES, self.samples)
        self.state.history_lines += len(self.history)
        self.state.sample_lines += len(self.samples)
        self.history, self.samples = [], []
        tensors = {f"model.{k}": v for k, v in trainable_state(self.adapter.model).items()}
        opt_tensors, opt_meta = ckpt.flatten_optimizer(self.optimizer.state_dict())
        tensors.update(opt_tensors)
        data_tensors, data_meta = self.adapter.data_state()
        tensors.update({f"data.{k}": v for k, v in data_tensors.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"run": asdict(self.state), "optimizer": opt_meta, "data": data_meta, "scaler": self.scaler.state_dict()}
        ckpt.save_checkpoint(self.dir, tensors, meta)
        self._draw()

    def _draw(self) -> None:
        history = ckpt.read_jsonl(self.dir / ckpt.HISTORY)
        title = f"{self.card.name}: {self.card.kind} on {self.card.corpus.name if self.card.corpus else '-'}"
        ckpt.write_text(self.dir / ckpt.LOSS_CURVE, loss_curve_svg(history, self.adapter.unit, title, self.plan.target_loss))

    def resume(self) -> None:
        tensors, meta = ckpt.load_checkpoint(self.dir)
        model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        if set(model_sd) != set(trainable_state(self.adapter.model)):
            raise UserError(f"the checkpoint in {self.dir / ckpt.LAST} does not fit this model; start over with --force")
        self.adapter.model.load_state_dict(model_sd, strict=False)
        optimizer_state = ckpt.unflatten_optimizer(tensors, meta["optimizer"])
        for saved, current in zip(optimizer_state["param_groups"], self.optimizer.param_groups, strict=True):
            for key in ("fused", "foreach", "capturable"):  # device-specific: keep this machine's choice
                if key in current:
                    saved[key] = current[key]
        self.optimizer.load_state_dict(optimizer_state)
        data = {k[len("data.") :]: v for k, v in tensors.items() if k.startswith("data.")}
        self.adapter.load_data_state(data, meta["data"])
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.scaler.is_enabled() and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.state = RunState(**meta["run"])
        ckpt.truncate_jsonl(self.dir / ckpt.HISTORY, self.state.history_lines)
        ckpt.truncate_jsonl(self.dir / ckpt.SAMPLES, self.state.sample_lines)

    def _write_config(self, summary: Summary | None = None) -> None:
        result = summary.to_json() if summary else {
            "steps": self.state.step,
            "best_val": self.state.best_val,
            "best_step": self.state.best_step,
            "stop_reason": "running",
            "pid": os.getpid(),  # so a listing can tell a live run from one that was killed
            "host": socket.gethostname(),
        }
        self.card.result = result
        modeldir.write(self.card)

    # ---- evaluation ----------------------------------------------------
    def _evaluate(self, val: float | None = None) -> float:
        """Validation loss now (or the one just measured), keeping the best weights."""
        s = self.state
        if val is None:
            val = self.adapter.evaluate("val", self.plan.eval_units)
        s.last_val = val
        if s.best_val is None or val < s.best_val:
            s.best_val, s.best_step = val, s.step
            self.adapter.save_weights(self.dir)
            self._write_config()
        if s.smoothed is not None:
            s.evals.append([s.step, s.smoothed, val])
            self._check_overfit()
        return val

    def _check_overfit(self) -> None:
        """Validation loss past its best while training loss falls: the model memorizes."""
        s, patience = self.state, self.plan.overfit_patience
        if s.overfit_warned or s.best_step is None or s.best_val is None:
            return
        evidence = memorizing(s.evals, s.best_step, s.best_val, patience)
        if evidence is None:
            return
        reference, last = evidence
        s.overfit_warned = True
        self.reporter.message(
            f"Warning: the model has started to memorize its corpus: validation loss has not improved for "
            f"{sum(e[0] > s.best_step for e in s.evals)} evaluations (best {s.best_val:.3f} at step {s.best_step}, "
            f"now {last[2]:.3f}) while training loss fell ({reference[1]:.3f} -> {last[1]:.3f}). The best weights "
            "are the ones kept in the model directory"
            + ("; stopping (--stop-on-overfit)." if self.plan.stop_on_overfit else "; pass --stop-on-overfit to stop here."),
            style="bold yellow",
        )

    # ---- the loop ------------------------------------------------------
    def _stop_reason(self) -> str | None:
        s, p = self.state, self.plan
        if p.target_loss is not None:
            current = s.smoothed if p.target_on == "train" else s.last_val
            if current is not None and current <= p.target_loss and (p.target_on == "val" or s.step > 0):
                return "target"
        if p.stop_on_overfit and s.overfit_warned:
            return "overfit"
        if p.max_steps is not None and s.step >= p.max_steps:
            return "max_steps"
        if p.max_time is not None and s.elapsed >= p.max_time:
            return "max_time"
        return None

    def _eta(self) -> float:
        s, p = self.state, self.plan
        left = []
        if p.max_steps is not None and self.step_time:
            left.append((p.max_steps - s.step) * self.step_time)
        if p.max_time is not None:
            left.append(p.max_time - s.elapsed)
        return min(left) if left else 0.0

    def _rate(self) -> float:
        return self.adapter.units_per_step / self.step_time if self.step_time else 0.0

    def _completed(self) -> int:
        """Progress-bar position: steps, or thousandths of the time budget when only time bounds the run."""
        s, p = self.state, self.plan
        if p.max_steps is not None or not p.max_time:
            return s.step
        return int(PROGRESS_TICKS * min(1.0, s.elapsed / p.max_time))

    def _report(self, force: bool = False) -> None:
        s = self.state
        rate = format_rate(self._rate(), self.adapter.unit)
        self.reporter.update(self._completed(), s.step, s.smoothed, s.last_val, rate, self._eta(), force=force)

    def _train_step(self) -> float:
        s, p = self.state, self.plan
        lr = p.lr_at(s.step, s.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        accum = self.adapter.grad_accum
        total = torch.zeros((), device=self.device)
        for _ in range(accum):
            with autocast(self.device, self.adapter.cuda_dtype):
                loss = self.adapter.train_loss()
            self.scaler.scale(loss / accum).backward()
            total += loss.detach().float()
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.adapter.model.parameters(), p.grad_clip)
        # one host-device sync per step, not one per micro-batch: the GPU keeps its queue full
        value, norm_value = (float(v) for v in torch.stack([total / accum, norm.float()]).tolist())
        if not math.isfinite(value):
            return value
        if not math.isfinite(norm_value) and not self.scaler.is_enabled():
            return float("nan")  # with loss scaling, an overflow only skips this step and lowers the scale
        self.scaler.step(self.optimizer)
        self.scaler.update()
        s.step += 1
        s.units += self.adapter.units_per_step
        s.ema = EMA_BETA * s.ema + (1 - EMA_BETA) * value
        s.ema_steps += 1
        self.history.append(
            {"step": s.step, "train_loss": value, "train_smooth": s.smoothed, "lr": lr,
             "units_per_s": round(self._rate(), 1), "elapsed": round(s.elapsed, 3)}
        )
        return value

    def run(self, start_val: float | None = None) -> Summary:
        """Train; `start_val` is the validation loss before the first step, None when resuming."""
        with self._ctrl_c_stops_at_a_step_boundary():
            s, p = self.state, self.plan
            if start_val is None:
                self.reporter.message(f"Resuming at step {s.step} (best val {s.best_val:.3f} at step {s.best_step}).")
            else:
                self._write_config()
                self._evaluate(start_val)
                self.history.append({"step": 0, "val_loss": start_val, "elapsed": 0.0})
            self.reporter.start(p.max_steps if p.max_steps is not None else PROGRESS_TICKS, self._completed())
            try:
                reason = self._loop(start=time.monotonic() - s.elapsed)
            finally:
                self.reporter.stop()
        return self._finish(reason)

    def _loop(self, start: float) -> str:
        """Train until a stop reason comes up; leave the state evaluated and checkpointed; return the reason."""
        s, p = self.state, self.plan
        reason = "interrupted" if self.interrupted else self._stop_reason()
        if reason is not None and (self.history or not (self.dir / ckpt.LAST / ckpt.CHECKPOINT).exists()):
            self._checkpoint()  # stopped before the first step (Ctrl-C, or a target met at step 0): keep it all
        while reason is None:
            t0 = time.monotonic()
            loss = self._train_step()
            if not math.isfinite(loss):
                return "diverged"
            dt = time.monotonic() - t0
            self.step_time = dt if self.step_time is None else 0.9 * self.step_time + 0.1 * dt
            s.elapsed = time.monotonic() - start
            evaluated = s.step % p.eval_every == 0
            if evaluated:
                self._evaluate()
                self.history[-1]["val_loss"] = s.last_val
            if s.step % p.sample_every == 0:
                text = self.adapter.sample(p.sample_units, p.seed + s.step)
                self.samples.append({"step": s.step, "train_loss": s.smoothed, "val_loss": s.last_val, "text": text})
                self.reporter.sample(s.step, text)
            s.elapsed = time.monotonic() - start
            reason = "interrupted" if self.interrupted else self._stop_reason()
            if reason not in (None, "interrupted") and not evaluated:
                self._evaluate()  # the run ends here: its final validation loss, and maybe its best weights
                self.history[-1]["val_loss"] = s.last_val
                evaluated = True
            if reason is not None or s.step % p.checkpoint_every == 0:
                self._checkpoint()
            self._report(force=evaluated)
        return reason

    @contextlib.contextmanager
    def _ctrl_c_stops_at_a_step_boundary(self) -> Iterator[None]:
        """The first Ctrl-C finishes the current step, so the saved state resumes exactly; a second one aborts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.reporter.message("Stopping after this step (Ctrl-C again to abort without saving)...")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _finish(self, reason: str) -> Summary:
        summary = self._summary(reason)
        self._write_config(summary)
        if reason == "diverged":
            last = self.dir / ckpt.LAST
            then = (
                f"the last good checkpoint is intact in {last}: continue with --resume and a lower --lr"
                if (last / ckpt.CHECKPOINT).exists()
                else "no checkpoint was written yet: start again with --force and a lower --lr"
            )
            raise UserError(f"training diverged at step {self.state.step + 1}: the loss is not finite; {then}")
        return summary

    def _summary(self, reason: str) -> Summary:
        s, p = self.state, self.plan
        current = s.smoothed if p.target_on == "train" else s.last_val
        met = p.target_loss is not None and current is not None and current <= p.target_loss
        return Summary(
            path=self.dir, unit=self.adapter.unit, chars_per_unit=self.adapter.chars_per_unit, steps=s.step,
            elapsed=s.elapsed, train_loss=s.smoothed,
            val_loss=s.last_val, best_val=s.best_val, best_step=s.best_step, target_loss=p.target_loss,
            target_on=p.target_on, target_met=met, stop_reason=reason, overfit_warned=s.overfit_warned,
        )


def memorizing(evals: list[list[float]], best_step: int, best_val: float, patience: int) -> tuple[list, list] | None:
    """The evaluations that show memorization, (the one at or after the best, the latest), or None.

    `evals` holds [step, smoothed training loss, validation loss]. Memorizing: `patience` evaluations since
    the best validation loss, the latest clearly above it (OVERFIT_MARGIN) and still rising, training loss
    lower than at the best. Validation loss need not rise at every evaluation: it jitters on its way up, and
    a rule that waited for `patience` rises in a row warned a GPU run 1,500 steps after its best. It must be
    rising at the latest one: a loss coming back down from a bump (a learning-rate warm-up's, say) is
    learning again.
    """
    reference = next((e for e in evals if e[0] >= best_step), None)
    since = [e for e in evals if e[0] > best_step]
    if reference is None or len(since) < patience or len(evals) < 2:
        return None
    previous, last = evals[-2], evals[-1]
    if last[2] > best_val * (1 + OVERFIT_MARGIN) and last[2] >= previous[2] and last[1] < reference[1]:
        return reference, last
    return None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors training changes: all of a char model, the adapter of a LoRA model.

    named_parameters() lists a tied weight once, so GPT-2's shared embedding
    and output matrix is saved once, as safetensors requires.
    """
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


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
    lines.append(f"  model: {summary.path}")
    return lines
