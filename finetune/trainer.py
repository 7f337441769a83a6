"""The training core: one loop for every model kind.

It owns the optimizer and learning-rate schedule, the loss threshold
(`--target-loss`), validation on a schedule, when to keep the best weights and
when to checkpoint, the memorization warning, exact resume, progress and the
closing summary. What goes into which file of the model directory is
`rundir.RunDir`'s. Model kinds plug in through `adapter.Adapter`.
"""

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from contract.modeldir import Card
from contract.sampling import Sampling
from corpora import UserError
from corpora.home import models_dir

from . import checkpoint as ckpt
from . import memory
from .adapter import Adapter
from .amount import after_training
from .device import autocast
from .distributed import SINGLE, Engine, World, load_whole, plain, whole
from .ghostwriting.choice import choose, explain, interval, share_text
from .ghostwriting.evaluate import Ghostwriting
from .overfit import memorizing
from .progress import Reporter, format_duration, format_rate
from .rundir import RunDir

EMA_BETA = 0.98  # the smoothed training loss averages roughly the last 50 steps
PROGRESS_TICKS = 1000
GHOSTWRITING_BUDGET = 0.1  # by default the ghostwriting evaluation takes at most this share of the training time
# Devices whose AdamW step is one fused kernel: on a CPU it is 7-10x faster than PyTorch's per-tensor loop there, to
# within float rounding of it (tests/test_training.py): 2.2 -> 0.2 ms a step for the char `small` preset (4% of its
# step), 0.41 -> 0.06 s for GPT-2 small's weights (all-weights fine-tuning x1.23, benchmarks/gpt2_cpu_training.py)
FUSED_ADAM = ("cuda", "cpu")


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


class Trainer:
    """Decides what a run does and when: steps, evaluations, samples, checkpoints, the overfit warning, stopping.

    What is written where is the `RunDir`'s business; the trainer keeps the
    optimizer, the loss scaler, the run state and the progress display. Under
    torchrun every rank runs this loop; rank 0 decides each branch
    (`World.decide`) and alone writes.
    """

    def __init__(
        self, adapter: Adapter, card: Card, plan: Plan, device: torch.device, reporter: Reporter,
        ghostwriting: Ghostwriting | None = None, world: World = SINGLE, fsdp: bool = False,
    ):
        self.world = world
        self.engine = Engine(world, adapter, device, fsdp)
        self.adapter = self.engine.adapter
        self.ghostwriting = ghostwriting if plan.ghostwriting_every != 0 else None
        self.run_dir = RunDir(card, self.adapter, plan.target_loss, writer=world.main)
        self.plan = plan
        self.device = device
        self.reporter = reporter
        self.state = RunState()
        self.optimizer = self._make_optimizer()
        self.step_time: float | None = None
        self.interrupted = False
        self.baseline: dict | None = None  # the n-gram baseline's validation figure, for the summary (run.py sets it)
        # the best-val weights while they wait for their ghostwriting figures (the evaluation's budget was spent when
        # they came): a copy in the CPU's memory, measured at the next chance; (step, validation loss, tensors)
        self.unmeasured: tuple[int, float, dict[str, torch.Tensor]] | None = None
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
        fused = self.device.type in FUSED_ADAM
        return torch.optim.AdamW(groups, lr=self.plan.lr, betas=(0.9, 0.99), fused=fused)

    # ---- the loop ------------------------------------------------------
    def run(self, start_val: float | None = None) -> Summary:
        """Train; `start_val` is the validation loss before the first step, None when resuming."""
        with self._ctrl_c_stops_at_a_step_boundary():
            s, p = self.state, self.plan
            if start_val is None:
                self.reporter.message(f"Resuming at step {s.step} (best val {s.best_val:.3f} at step {s.best_step}).")
            else:
                self._start(start_val)
            self.reporter.start(p.max_steps if p.max_steps is not None else PROGRESS_TICKS, self._completed())
            try:
                reason = self._loop(start=time.monotonic() - s.elapsed)
            finally:
                self.reporter.stop()
        return self._finish(reason)

    def _stop_reason(self) -> str | None:
        """Why the run stops now, or None; a Ctrl-C comes first, whatever else holds."""
        return "interrupted" if self.interrupted else stop_reason(self.plan, self.state)

    def _start(self, val: float) -> None:
        """A new run: config.json says it is running, and the starting weights are the best so far."""
        s = self.state
        self.run_dir.write_running(s.step, s.best_val, s.best_step)
        s.last_val, s.best_val, s.best_step = val, val, s.step
        self.run_dir.save_best(s.step, val)
        self.run_dir.log_step({"step": 0, "val_loss": val, "elapsed": 0.0})
        s.evaluations = 1
        if self.ghostwriting is not None:
            self._ghostwrite(s.step, val)

    def _loop(self, start: float) -> str:
        """Train until a stop reason comes up; leave the state evaluated and checkpointed; return the reason.

        A step, an evaluation or a sample that runs out of the device's memory (PyTorch's, or a library's on it)
        ends the run as "out_of_memory": what it did since the last checkpoint is not saved.
        """
        try:
            return self._steps(start)
        except RuntimeError as error:
            if not memory.ran_out_of_memory(error):
                raise
            self.optimizer.zero_grad(set_to_none=True)  # a step's partial gradients: gone, and their memory with them
            return "out_of_memory"

    def _steps(self, start: float) -> str:
        s, p = self.state, self.plan
        reason = self.world.decide(self._stop_reason())
        if reason is not None and (self.run_dir.pending or not self.run_dir.has_checkpoint):
            self._checkpoint(final=True)  # stopped before the first step (Ctrl-C, or a target met at step 0): keep it all
        while reason is None:
            if not self._timed_step(start):
                return "diverged"
            evaluated = s.step % p.eval_every == 0
            if evaluated:
                self._validate()
            if s.step % p.sample_every == 0:
                self._sample()
            s.elapsed = time.monotonic() - start
            reason = self.world.decide(self._stop_reason())
            if reason is not None and not evaluated:
                # the run ends here, however it stops (a Ctrl-C too): its final validation loss, and maybe its best
                # weights; a run stopped before its first scheduled evaluation would otherwise keep the untrained ones
                self._validate()
                evaluated = True
            if reason is not None:
                self._measure_candidates()  # the best-val and the last weights get figures before the choice is final
            if reason is not None or s.step % p.checkpoint_every == 0:
                self._checkpoint(final=reason is not None)
            self._report(force=evaluated)
        return reason

    def _finish(self, reason: str) -> Summary:
        """Write the result into config.json; a diverged run then fails, saying how to rescue it."""
        summary = self._summary(reason)
        failed = reason in ("diverged", "out_of_memory")
        if not failed:
            self.run_dir.save_last()
        self.run_dir.write_result(summary.to_json())
        if not failed:
            return summary
        kept = self.run_dir.has_checkpoint
        where = (f"the last good checkpoint is intact in {self.run_dir.last}" if kept
                 else "no checkpoint was written yet")
        if reason == "diverged":
            how = "continue with --resume and a lower --lr" if kept else "start again with --force and a lower --lr"
            raise UserError(f"training diverged at step {self.state.step + 1}: the loss is not finite; {where}: {how}")
        raise UserError(f"training ran out of {self.device.type} memory after step {self.state.step}; {where}: "
                        f"{memory.advice(self.adapter.less_memory(), checkpoint=kept, written=True)}")

    # ---- a step ----------------------------------------------------------
    def _timed_step(self, start: float) -> bool:
        """A training step, timed for the rate and the ETA; False when its loss is not finite (nothing changed)."""
        t0 = time.monotonic()
        if not math.isfinite(self._train_step()):
            return False
        dt = time.monotonic() - t0
        self.step_time = dt if self.step_time is None else 0.9 * self.step_time + 0.1 * dt
        self.state.elapsed = time.monotonic() - start
        return True

    def _train_step(self) -> float:
        """One optimizer step at the scheduled learning rate; its mean training loss, logged when the step is taken."""
        s = self.state
        lr = self.plan.lr_at(s.step, s.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        value, norm = self._gradients()
        if not math.isfinite(value):
            return value
        if not math.isfinite(norm) and not self.scaler.is_enabled():
            return float("nan")  # with loss scaling, an overflow only skips this step and lowers the scale
        self.scaler.step(self.optimizer)
        self.scaler.update()
        s.count_step(value, self.adapter.units_per_step)
        self.run_dir.log_step(
            {"step": s.step, "train_loss": value, "train_smooth": s.smoothed, "lr": lr,
             "units_per_s": round(self._rate(), 1), "elapsed": round(s.elapsed, 3)}
        )
        return value

    def _gradients(self) -> tuple[float, float]:
        """The step's gradients, accumulated over micro-batches, unscaled and clipped: (mean loss, gradient norm)."""
        self.optimizer.zero_grad(set_to_none=True)
        accum = self.adapter.grad_accum
        total = torch.zeros((), device=self.device)
        for i in range(accum):
            with self.engine.accumulating(last=i == accum - 1):
                with autocast(self.device, self.adapter.cuda_dtype):
                    loss = self.engine()
                self.scaler.scale(loss / accum).backward()
            total += loss.detach().float()
        self.scaler.unscale_(self.optimizer)
        norm = plain(torch.nn.utils.clip_grad_norm_(self.adapter.model.parameters(), self.plan.grad_clip))
        # one host-device sync per step, not one per micro-batch: the GPU keeps its queue full
        value, norm_value = (float(v) for v in torch.stack([total / accum, norm.float()]).tolist())
        # each rank's loss is its share's: the step's is their mean; a Ctrl-C on any rank reaches rank 0's decision.
        # The flag is only ever raised here: a Ctrl-C whose handler ran while this rank waited in the collective (a
        # waiting rank's usual place) was not in what it sent, and is sent with the next step's loss, not lost
        value, anyone = self.world.mean_and_any(value, self.interrupted)
        if anyone:
            self.interrupted = True
        return value, norm_value

    def _validate(self) -> None:
        """Evaluate after a step: log the loss, keep the weights when they are the best yet, watch for memorization,
        and measure what the model writes when the ghostwriting evaluation is due.

        A new best validation loss is a candidate for ghostwriting that must not go unmeasured: when the budget has
        no room for it now, its weights wait in memory and are measured first at the next chance.
        """
        s = self.state
        val = self.world.decide(self.adapter.evaluate("val", self.plan.eval_units))
        self.run_dir.log_val(val)
        best = s.record_val(val)
        if best:
            self.run_dir.save_best(s.step, val)
        self._check_overfit()
        if self.ghostwriting is None:
            return
        if self._ghostwriting_due():
            if self.unmeasured is not None and not best:
                self._measure_waiting_best()
            else:
                self._ghostwrite(s.step, val)
        if best:
            self.unmeasured = None if self._measured(s.step) else (s.step, val, self._weights_now())

    def _measured(self, step: int) -> bool:
        return any(r["step"] == step for r in self.state.measured)

    def _weights_now(self) -> dict[str, torch.Tensor]:
        """A copy of the trained weights (this rank's shard under FSDP) in the CPU's memory."""
        return {n: p.detach().to("cpu", copy=True) for n, p in self.adapter.model.named_parameters() if p.requires_grad}

    def _put_weights(self, weights: dict[str, torch.Tensor]) -> None:
        params = dict(self.adapter.model.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)

    def _measure_waiting_best(self) -> None:
        """The ghostwriting evaluation of the best-val weights kept in memory: swapped in, measured (and saved as the
        ghostwriting checkpoint if chosen), swapped out; the run goes on from the weights it had."""
        assert self.unmeasured is not None
        step, val, weights = self.unmeasured
        self.unmeasured = None
        now = self._weights_now()
        self._put_weights(weights)
        try:
            self._ghostwrite(step, val)
        finally:
            self._put_weights(now)

    def _measure_candidates(self) -> None:
        """At the end of a run: the best-val weights and the last ones, measured if they have no figures yet."""
        if self.ghostwriting is None:
            return
        if self.unmeasured is not None:
            self._measure_waiting_best()
        s = self.state
        if not self._measured(s.step) and s.last_val is not None:
            self._ghostwrite(s.step, s.last_val)

    def _ghostwriting_due(self) -> bool:
        """Every --ghostwriting-every evaluations; by default whenever the last one took at most a tenth of the time since.

        The default keeps the evaluation cheap whatever the model and the
        evaluation schedule: at the presets' schedule it runs at every
        evaluation (benchmarks/ghostwriting_eval.py), while a tiny model
        evaluated every few steps is measured less often.
        """
        s, every = self.state, self.plan.ghostwriting_every
        if self.ghostwriting is None:
            return False
        if every is not None:
            return s.evaluations % every == 0
        return self.world.decide(s.elapsed - s.ghostwritten_at >= s.ghostwriting_cost / GHOSTWRITING_BUDGET)

    def _ghostwrite(self, step: int, val: float) -> None:
        """The ghostwriting evaluation of the weights in the model, those of `step` (now, or the best-val ones swapped
        in): logged, said, and kept as the ghostwriting checkpoint when the rule (ghostwriting.choice) picks them.

        The rule sets its bars by every checkpoint measured, and chooses among those whose weights the run still
        has: these and the ghostwriting checkpoint's own.
        """
        assert self.ghostwriting is not None
        s, p = self.state, self.plan
        units = max(1, round(self.ghostwriting.options.chars / self.adapter.chars_per_unit))

        def write(prompts: list[str], chars: int, seed: int, sampling: Sampling) -> list[str]:
            return self.adapter.write(prompts, units, seed, sampling)

        started = time.monotonic()
        figures = self.ghostwriting.evaluate(write, seed=p.seed + step)  # the seed of its step, however late
        s.ghostwriting_cost, s.ghostwritten_at = time.monotonic() - started, s.elapsed
        row = {"step": step, "val_loss": val, **figures}
        if step == s.step:
            self.run_dir.log_figures(figures)
            self._check_copying(step, figures)
            copying = figures["copying"]
            s.copying_over = (s.copying_over + 1 if p.stop_on_copying is not None and (copying or 0) > p.stop_on_copying
                              else 0)
        else:  # measured late: a row of its own, which readers merge with its step's (ghostwriting.choice.evaluated)
            self.run_dir.log_step({**row, "measured_late": True})
        s.measured.append(row)
        held = {step} | ({s.ghostwriting["step"]} if s.ghostwriting else set())
        chosen = self.world.decide(choose(s.measured, p.max_copying, held).step == step)
        if chosen:
            s.ghostwriting = row
            self.run_dir.save_ghostwriting(step)
        self.reporter.message(describe_figures(step, figures) + (" (kept as the ghostwriting checkpoint)" if chosen else ""),
                              style="dim")

    def _check_overfit(self) -> None:
        """Validation loss past its best while training loss falls: the model memorizes."""
        s, patience = self.state, self.plan.overfit_patience
        if s.overfit_warned or s.best_step is None or s.best_val is None:
            return
        evidence = memorizing(s.evals, s.best_step, s.best_val, patience)
        if evidence is None:
            return
        reference, last = evidence
        self._warn_memorizing(
            f"validation loss has not improved for {sum(e[0] > s.best_step for e in s.evals)} evaluations (best "
            f"{s.best_val:.3f} at step {s.best_step}, now {last[2]:.3f}) while training loss fell ({reference[1]:.3f} -> "
            f"{last[1]:.3f}). The best weights are the ones kept in the model directory")

    def _check_copying(self, step: int, figures: dict) -> None:
        """Copying credibly over --max-copying (its whole interval above it) in the samples of the weights now: the
        model memorizes, whatever validation loss says yet. A char model copies passages evaluations before its
        validation loss turns: on a short text, 55% at step 1000 and 100% at 1500, the loss only at step 2000."""
        s, p = self.state, self.plan
        copying = interval(figures, "copying")
        if s.overfit_warned or step == 0 or copying is None or copying[0] <= p.max_copying:
            return
        self._warn_memorizing(
            f"at step {step} {share_text(figures, 'copying')} of its samples copy a passage of the corpus, over the "
            f"--max-copying {p.max_copying:.0%} limit. The ghostwriting checkpoint is one that does not copy")

    def _warn_memorizing(self, evidence: str) -> None:
        """The memorization warning, said once a run whatever raised it, and a stop with --stop-on-overfit."""
        self.state.overfit_warned = True
        self.reporter.message(
            f"Warning: the model has started to memorize its corpus: {evidence}"
            + ("; stopping (--stop-on-overfit)." if self.plan.stop_on_overfit else "; pass --stop-on-overfit to stop here."),
            style="bold yellow",
        )

    def _sample(self) -> None:
        s, p = self.state, self.plan
        text = self.adapter.sample(p.sample_units, p.seed + s.step)
        self.run_dir.log_sample({"step": s.step, "train_loss": s.smoothed, "val_loss": s.last_val, "text": text})
        self.reporter.sample(s.step, text)

    # ---- checkpoint and resume -------------------------------------------
    def _checkpoint(self, final: bool = False) -> None:
        """Flush the logs, then write last/, whose run state counts the rows just flushed (`final`: the run's last)."""
        history_rows, sample_rows = self.run_dir.flush_logs()
        self.state.history_lines += history_rows
        self.state.sample_lines += sample_rows
        self.run_dir.save_checkpoint(*self._snapshot(), final=final)
        self.world.barrier()  # the other ranks wait for the writing here, not in the next step's NCCL collective

    def _snapshot(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything resume restores: weights, optimizer, data position and RNG as tensors, the rest as JSON."""
        tensors = {f"model.{k}": v for k, v in trainable_state(self.adapter.model).items()}
        opt_tensors, opt_meta = ckpt.flatten_optimizer(self.optimizer.state_dict())
        tensors.update(opt_tensors)
        data_tensors, data_meta = self.adapter.data_state()
        tensors.update({f"data.{k}": v for k, v in data_tensors.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"run": asdict(self.state), "optimizer": opt_meta, "data": data_meta, "scaler": self.scaler.state_dict()}
        return whole(tensors, self.world), meta  # FSDP's shards gathered: the checkpoint is the single-process one

    def resume(self) -> None:
        """Pick up last/ exactly: the run continues as if it had never stopped."""
        tensors, meta = self.run_dir.load_checkpoint()
        model_sd = _prefixed(tensors, "model.")
        if set(model_sd) != set(trainable_state(self.adapter.model)):
            raise UserError(f"the checkpoint in {self.run_dir.last} does not fit this model; start over with --force")
        params = dict(self.adapter.model.named_parameters())
        self.adapter.model.load_state_dict({k: load_whole(params[k], v) for k, v in model_sd.items()}, strict=False)
        self._load_optimizer(ckpt.unflatten_optimizer(tensors, meta["optimizer"]))
        self.adapter.load_data_state(_prefixed(tensors, "data."), meta["data"])
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.scaler.is_enabled() and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.state = RunState.of(meta["run"])
        self.run_dir.truncate_logs(self.state.history_lines, self.state.sample_lines)

    def _load_optimizer(self, saved: dict) -> None:
        """The saved optimizer state, with this machine's device-specific settings (a GPU's checkpoint resumes on a CPU)."""
        for group, current in zip(saved["param_groups"], self.optimizer.param_groups, strict=True):
            for key in ("fused", "foreach", "capturable"):
                if key in current:
                    group[key] = current[key]
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for pid, state in saved["state"].items():  # under FSDP, each rank's shard of the moments
            state.update({k: load_whole(params[pid], v) for k, v in state.items() if k != "step"})
        self.optimizer.load_state_dict(saved)

    # ---- progress --------------------------------------------------------
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
        val_step = int(s.evals[-1][0]) if s.evals else 0  # the run's first validation is the one before step 1
        self.reporter.update(self._completed(), s.step, s.smoothed, s.last_val, val_step, rate, self._eta(), force=force)

    @contextlib.contextmanager
    def _ctrl_c_stops_at_a_step_boundary(self) -> Iterator[None]:
        """The first Ctrl-C finishes the current step, so the saved state resumes exactly; a second one aborts.

        SIGTERM (a shutdown, `kill`, a job scheduler's time limit) is taken as a
        first Ctrl-C: the run writes its last checkpoint instead of dying without one.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.reporter.message("Stopping after this step, once the weights it ends with are measured "
                                  "(Ctrl-C again to abort without saving)...")

        previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, action in previous.items():
                signal.signal(signum, action)

    def _summary(self, reason: str) -> Summary:
        s, p = self.state, self.plan
        current = s.smoothed if p.target_on == "train" else s.last_val
        met = p.target_loss is not None and current is not None and current <= p.target_loss
        return Summary(
            path=self.run_dir.path, unit=self.adapter.unit, chars_per_unit=self.adapter.chars_per_unit, steps=s.step,
            elapsed=s.elapsed, train_loss=s.smoothed,
            val_loss=s.last_val, best_val=s.best_val, best_step=s.best_step, target_loss=p.target_loss,
            target_on=p.target_on, target_met=met, stop_reason=reason, overfit_warned=s.overfit_warned,
            ghostwriting_step=s.ghostwriting["step"] if s.ghostwriting else None, ghostwriting=s.ghostwriting,
            ghostwriting_reason=explain(choose(s.measured, p.max_copying), s.ghostwriting["step"] if s.ghostwriting else None,
                                        s.best_step) if any(r["step"] > 0 for r in s.measured) else None,
            baseline=self.baseline,
        )


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `prefix`, by their own names."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors training changes: all of a char model, the adapter of a LoRA model.

    named_parameters() lists a tied weight once, so GPT-2's shared embedding
    and output matrix is saved once, as safetensors requires.
    """
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


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
