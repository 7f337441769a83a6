"""The training loop: one for every model kind.

It owns the optimizer and learning-rate schedule, the steps, when to evaluate,
sample and checkpoint, exact resume, Ctrl-C, progress and the run's end. What a
run follows and where it stands is `plan`'s; what an evaluation measures and
keeps is `evaluations.Evaluations`'; how the run ended, `summary.Summary`; what
goes into which file of the model directory, `rundir.RunDir`'s. Model kinds
plug in through `adapter.Adapter`.
"""

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict

import torch

from contract.modeldir import Card
from corpora import UserError

from . import checkpoint as ckpt
from . import memory
from .adapter import Adapter
from .device import autocast
from .distributed import SINGLE, Engine, World, load_whole, plain, whole
from .evaluations import Evaluations
from .ghostwriting.evaluate import Ghostwriting
from .plan import Plan, RunState, stop_reason
from .progress import Reporter, format_rate
from .rundir import RunDir
from .summary import Summary

PROGRESS_TICKS = 1000
# Devices whose AdamW step is one fused kernel: on a CPU it is 7-10x faster than PyTorch's per-tensor loop there, to
# within float rounding of it (tests/test_training.py): 2.2 -> 0.2 ms a step for the char `small` preset (4% of its
# step), 0.41 -> 0.06 s for GPT-2 small's weights (all-weights fine-tuning x1.23, benchmarks/gpt2_cpu_training.py)
FUSED_ADAM = ("cuda", "cpu")


class Trainer:
    """Decides what a run does and when: steps, evaluations, samples, checkpoints, stopping.

    What is written where is the `RunDir`'s business, what an evaluation
    measures and keeps the `Evaluations`'; the trainer keeps the optimizer, the
    loss scaler, the run state and the progress display. Under
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
        self.run_dir = RunDir(card, self.adapter, plan.target_loss, writer=world.main)
        self.plan = plan
        self.device = device
        self.reporter = reporter
        self.state = RunState()
        self.optimizer = self._make_optimizer()
        self.step_time: float | None = None
        self.interrupted = False
        self.baseline: dict | None = None  # the n-gram baseline's validation figure, for the summary (run.py sets it)
        self.evaluations = Evaluations(self.adapter, self.run_dir, plan, reporter, world, ghostwriting)
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
        self.evaluations.start(s, val)

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
                self.evaluations.validate(s)
            if s.step % p.sample_every == 0:
                self._sample()
            s.elapsed = time.monotonic() - start
            reason = self.world.decide(self._stop_reason())
            if reason is not None and not evaluated:
                # the run ends here, however it stops (a Ctrl-C too): its final validation loss, and maybe its best
                # weights; a run stopped before its first scheduled evaluation would otherwise keep the untrained ones
                self.evaluations.validate(s)
                evaluated = True
            if reason is not None:
                self.evaluations.measure_candidates(s)  # the best-val and the last weights get figures before the choice is final
            if reason is not None or s.step % p.checkpoint_every == 0:
                self._checkpoint(final=reason is not None)
            self._report(force=evaluated)
        return reason

    def _finish(self, reason: str) -> Summary:
        """Write the result into config.json; a diverged run then fails, saying how to rescue it."""
        summary = Summary.of(reason, self.state, self.plan, self.run_dir.path, self.adapter, self.baseline)
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
