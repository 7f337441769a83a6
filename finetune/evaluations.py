"""A run's evaluations: its validation loss after a step, the ghostwriting evaluation on its budget, the checkpoints
whose figures are still to come, and the memorization warning either of them can raise.

Apart from the loop because when to measure what is a policy of its own: the
ghostwriting evaluation costs far more than a validation, so it runs when its
budget allows, and a new best validation loss that comes when the budget is
spent waits in memory to be measured at the next chance. The loop only says
when a step is done and when the run ends.
"""

import time

import torch

from contract.sampling import Sampling

from .adapter import Adapter, evaluating
from .distributed import World
from .ghostwriting.choice import choose, interval, share_text
from .ghostwriting.evaluate import Ghostwriting, chain_writer, plain
from .overfit import memorizing
from .plan import Plan, RunState
from .progress import Reporter
from .rundir import RunDir
from .summary import describe_figures

GHOSTWRITING_BUDGET = 0.1  # by default the ghostwriting evaluation takes at most this share of the training time


class Evaluations:
    """What a run measures of its weights and when, and what it keeps because of it (the best-val and the
    ghostwriting checkpoints). The run's state comes with each call: resume replaces it."""

    def __init__(self, adapter: Adapter, run_dir: RunDir, plan: Plan, reporter: Reporter, world: World,
                 ghostwriting: Ghostwriting | None):
        self.adapter = adapter
        self.run_dir = run_dir
        self.plan = plan
        self.reporter = reporter
        self.world = world
        self.ghostwriting = ghostwriting if plan.ghostwriting_every != 0 else None
        # the best-val weights while they wait for their ghostwriting figures (the evaluation's budget was spent when
        # they came): a copy in the CPU's memory, measured at the next chance; (step, validation loss, tensors)
        self.unmeasured: tuple[int, float, dict[str, torch.Tensor]] | None = None

    def start(self, s: RunState, val: float) -> None:
        """A new run's validation loss before its first step: its starting weights are the best so far."""
        s.last_val, s.best_val, s.best_step = val, val, s.step
        self.run_dir.save_best(s.step, val)
        self.run_dir.log_step({"step": 0, "val_loss": val, "elapsed": 0.0})
        s.evaluations = 1
        if self.ghostwriting is not None:
            self._ghostwrite(s, s.step, val)

    def validate(self, s: RunState) -> None:
        """Evaluate after a step: log the loss, keep the weights when they are the best yet, watch for memorization,
        and measure what the model writes when the ghostwriting evaluation is due.

        A new best validation loss is a candidate for ghostwriting that must not go unmeasured: when the budget has
        no room for it now, its weights wait in memory and are measured first at the next chance.
        """
        val = self.world.decide(self.adapter.evaluate("val", self.plan.eval_units))
        self.run_dir.log_val(val)
        best = s.record_val(val)
        if best:
            self.run_dir.save_best(s.step, val)
        self._check_overfit(s)
        if self.ghostwriting is None:
            return
        if self._ghostwriting_due(s):
            if self.unmeasured is not None and not best:
                self._measure_waiting_best(s)
            else:
                self._ghostwrite(s, s.step, val)
        if best:
            self.unmeasured = None if self._measured(s, s.step) else (s.step, val, self._weights_now())

    def measure_candidates(self, s: RunState) -> None:
        """At the end of a run: the best-val weights and the last ones, measured if they have no figures yet."""
        if self.ghostwriting is None:
            return
        if self.unmeasured is not None:
            self._measure_waiting_best(s)
        if not self._measured(s, s.step) and s.last_val is not None:
            self._ghostwrite(s, s.step, s.last_val)

    def _measured(self, s: RunState, step: int) -> bool:
        return any(r["step"] == step for r in s.measured)

    def _weights_now(self) -> dict[str, torch.Tensor]:
        """A copy of the trained weights (this rank's shard under FSDP) in the CPU's memory."""
        return {n: p.detach().to("cpu", copy=True) for n, p in self.adapter.model.named_parameters() if p.requires_grad}

    def _put_weights(self, weights: dict[str, torch.Tensor]) -> None:
        params = dict(self.adapter.model.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)

    def _measure_waiting_best(self, s: RunState) -> None:
        """The ghostwriting evaluation of the best-val weights kept in memory: swapped in, measured (and saved as the
        ghostwriting checkpoint if chosen), swapped out; the run goes on from the weights it had."""
        assert self.unmeasured is not None
        step, val, weights = self.unmeasured
        self.unmeasured = None
        now = self._weights_now()
        self._put_weights(weights)
        try:
            self._ghostwrite(s, step, val)
        finally:
            self._put_weights(now)

    def _ghostwriting_due(self, s: RunState) -> bool:
        """Every --ghostwriting-every evaluations; by default whenever the last one took at most a tenth of the time since.

        The default keeps the evaluation cheap whatever the model and the
        evaluation schedule: at the presets' schedule it runs at every
        evaluation (benchmarks/ghostwriting_eval.py), while a tiny model
        evaluated every few steps is measured less often.
        """
        every = self.plan.ghostwriting_every
        if self.ghostwriting is None:
            return False
        if every is not None:
            return s.evaluations % every == 0
        return self.world.decide(s.elapsed - s.ghostwritten_at >= s.ghostwriting_cost / GHOSTWRITING_BUDGET)

    def _ghostwrite(self, s: RunState, step: int, val: float) -> None:
        """The ghostwriting evaluation of the weights in the model, those of `step` (now, or the best-val ones swapped
        in): logged, said, and kept as the ghostwriting checkpoint when the rule (ghostwriting.choice) picks them.

        The rule sets its bars by every checkpoint measured, and chooses among those whose weights the run still
        has: these and the ghostwriting checkpoint's own.
        """
        assert self.ghostwriting is not None
        p = self.plan
        units = max(1, round(self.ghostwriting.options.chars / self.adapter.chars_per_unit))

        def write(prompts: list[str], chars: int, seed: int, sampling: Sampling) -> list[str]:
            if plain(sampling):
                return self.adapter.write(prompts, units, seed, sampling)
            with evaluating(self.adapter.model):
                return chain_writer(self.adapter.decoder(), self.ghostwriting.index, units)(prompts, chars, seed, sampling)

        started = time.monotonic()
        figures = self.ghostwriting.evaluate(write, seed=p.seed + step)  # the seed of its step, however late
        s.ghostwriting_cost, s.ghostwritten_at = time.monotonic() - started, s.elapsed
        row = {"step": step, "val_loss": val, **figures}
        if step == s.step:
            self.run_dir.log_figures(figures)
            self._check_copying(s, step, figures)
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

    def _check_overfit(self, s: RunState) -> None:
        """Validation loss past its best while training loss falls: the model memorizes."""
        patience = self.plan.overfit_patience
        if s.overfit_warned or s.best_step is None or s.best_val is None:
            return
        evidence = memorizing(s.evals, s.best_step, s.best_val, patience)
        if evidence is None:
            return
        reference, last = evidence
        self._warn_memorizing(s, (
            f"validation loss has not improved for {sum(e[0] > s.best_step for e in s.evals)} evaluations (best "
            f"{s.best_val:.3f} at step {s.best_step}, now {last[2]:.3f}) while training loss fell ({reference[1]:.3f} -> "
            f"{last[1]:.3f}). The best weights are the ones kept in the model directory"))

    def _check_copying(self, s: RunState, step: int, figures: dict) -> None:
        """Copying credibly over --max-copying (its whole interval above it) in the samples of the weights now: the
        model memorizes, whatever validation loss says yet. A char model copies passages evaluations before its
        validation loss turns: on a short text, 55% at step 1000 and 100% at 1500, the loss only at step 2000."""
        p = self.plan
        copying = interval(figures, "copying")
        if s.overfit_warned or step == 0 or copying is None or copying[0] <= p.max_copying:
            return
        self._warn_memorizing(s, (
            f"at step {step} {share_text(figures, 'copying')} of its samples copy a passage of the corpus, over the "
            f"--max-copying {p.max_copying:.0%} limit. The ghostwriting checkpoint is one that does not copy"))

    def _warn_memorizing(self, s: RunState, evidence: str) -> None:
        """The memorization warning, said once a run whatever raised it, and a stop with --stop-on-overfit."""
        s.overfit_warned = True
        self.reporter.message(
            f"Warning: the model has started to memorize its corpus: {evidence}"
            + ("; stopping (--stop-on-overfit)." if self.plan.stop_on_overfit else "; pass --stop-on-overfit to stop here."),
            style="bold yellow",
        )
