"""The model directory as a run writes it: which file holds what, written whole.

The trainer decides when something is worth writing (a new best validation
loss, a checkpoint, the end of the run); a `RunDir` knows where it goes and
writes it through `corpora.files`, so a kill -9 at any moment leaves every file
either as it was or as it is meant to be. What it writes: the best weights
(through the kind's adapter), the resumable state in last/, the history and
samples logs, the loss curve (drawn at the end of the run and at most once a
minute before it: drawing costs a fraction of a second), and config.json, whose `result` says how the run
went, or that it is still running.
"""

import os
import socket
import time
from pathlib import Path

import torch

from contract import modeldir
from contract.modeldir import Card

from . import checkpoint as ckpt
from .adapter import Adapter
from .plot import Curves, loss_picture

DRAW_EVERY = 60.0  # seconds between two drawings of the loss curve while a run goes on


class RunDir:
    """Everything a run writes to its model directory `card.path`.

    Under torchrun every rank keeps one, and only rank 0's (`writer`) writes: the
    others' calls change nothing on disk.
    """

    def __init__(self, card: Card, adapter: Adapter, target_loss: float | None, writer: bool = True):
        self.card = card
        self.writer = writer
        self.path = card.file("")
        self.adapter = adapter
        self.target_loss = target_loss  # drawn on the loss curve
        # Rows logged since the last checkpoint. They reach the disk with the checkpoint that counts them, so a
        # resume, which cuts the logs back to that count, never finds a step logged twice or missing.
        self.history: list[dict] = []
        self.samples: list[dict] = []
        self.draw_after = time.monotonic() + DRAW_EVERY  # when a checkpoint next redraws the loss curve

    @property
    def last(self) -> Path:
        """The folder of the resumable state."""
        return self.path / modeldir.LAST

    @property
    def has_checkpoint(self) -> bool:
        return (self.last / modeldir.CHECKPOINT).exists()

    @property
    def pending(self) -> bool:
        """Whether rows were logged that no checkpoint has written yet."""
        return bool(self.history or self.samples)

    # ---- the logs --------------------------------------------------------
    def log_step(self, row: dict) -> None:
        self.history.append(row)

    def log_val(self, val: float) -> None:
        """The validation loss measured after the step logged last."""
        self.history[-1]["val_loss"] = val

    def log_figures(self, figures: dict) -> None:
        """The ghostwriting evaluation's figures, beside the validation loss of the step logged last."""
        self.history[-1].update(figures)

    def log_sample(self, row: dict) -> None:
        self.samples.append(row)

    def flush_logs(self) -> tuple[int, int]:
        """Append the pending rows; return how many history and sample rows went out, for the checkpoint to count."""
        if self.writer:
            ckpt.append_jsonl(self.path / modeldir.HISTORY, self.history)
            ckpt.append_jsonl(self.path / modeldir.SAMPLES, self.samples)
        written = len(self.history), len(self.samples)
        self.history, self.samples = [], []
        return written

    def truncate_logs(self, history_lines: int, sample_lines: int) -> None:
        """Back to the rows the checkpoint counted: the resumed run logs the steps after it again."""
        if self.writer:
            ckpt.truncate_jsonl(self.path / modeldir.HISTORY, history_lines)
            ckpt.truncate_jsonl(self.path / modeldir.SAMPLES, sample_lines)

    # ---- weights and resumable state -----------------------------------
    def save_best(self, step: int, val: float) -> None:
        """The weights a user loads (the best so far, validation loss `val`), and a card that says which step they are."""
        self._save_weights(self.path)
        self.write_running(step, val, step)

    def save_ghostwriting(self, step: int) -> None:
        """The weights of the checkpoint that writes best without copying, the ones `load_model` takes by default, and
        a card that says which step they are (a sample written with them while the run goes on names it)."""
        self._save_weights(self.path / modeldir.GHOSTWRITING)
        self.write_result({**self.card.result, "ghostwriting_step": step})

    def save_last(self) -> None:
        """The weights at the end of the run, for NAME@last."""
        self._save_weights(self.last)

    def _save_weights(self, directory: Path) -> None:
        """Every rank calls it: a sharded model's weights are gathered before rank 0 writes them (distributed.Shared)."""
        self.adapter.save_weights(directory)

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict, final: bool = False) -> None:
        """last/ in one atomic rename, then the loss curve of the history it counts: always at the run's end (`final`),
        else when it was last drawn a minute ago or more."""
        if not self.writer:
            return
        ckpt.save_checkpoint(self.last / modeldir.CHECKPOINT, tensors, meta)
        if final or time.monotonic() >= self.draw_after:
            self._draw()

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        return ckpt.load_checkpoint(self.last / modeldir.CHECKPOINT)

    def _draw(self) -> None:
        card = self.card
        curves = Curves.of(card, ckpt.read_jsonl(self.path / modeldir.HISTORY), self.adapter.unit, self.target_loss)
        loss_picture([curves], self.path / modeldir.LOSS_CURVE,
                     f"{card.name}: {card.kind} on {card.corpus.name if card.corpus else '-'}")
        self.draw_after = time.monotonic() + DRAW_EVERY

    # ---- the card --------------------------------------------------------
    def write_running(self, steps: int, best_val: float | None, best_step: int | None) -> None:
        """config.json while training goes on: how far it got, and which process is at it."""
        self.write_result({
            "steps": steps,
            "best_val": best_val,
            "best_step": best_step,
            "ghostwriting_step": self.card.result.get("ghostwriting_step"),
            "stop_reason": "running",
            "pid": os.getpid(),  # so a listing can tell a live run from one that was killed
            "host": socket.gethostname(),
        })

    def write_result(self, result: dict) -> None:
        """config.json with `result`: the progress of a running run, or the summary of one that stopped."""
        self.card.result = result
        if self.writer:
            modeldir.write(self.card)
