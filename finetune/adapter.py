"""What the training core needs from a model kind.

The core (`trainer.py` and the modules beside it) owns everything that is the
same for every kind: optimizer and schedule, the loss threshold, validation,
the overfit warning, checkpoints, resume, progress and the summary. A kind
only says how to get the next training loss, evaluate a split, sample text and
carry its data position across a resume.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from contract.sampling import Sampling

from .amount import TextAmounts

if TYPE_CHECKING:
    from contract.sampling import Decoder

    from .distributed import World
    from .memory import Smaller


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for an evaluation or a sample in the middle of training, then back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class Schedule(Protocol):
    """The numbers a kind's presets give the plan when the user gives none."""

    lr: float
    max_steps: int
    warmup_steps: int
    eval_every: int
    sample_every: int
    checkpoint_every: int | None  # None: at every evaluation
    eval_units: int | None  # a kind's cap on the validation units per evaluation
    weight_decay: float  # AdamW's on the matrices, unless FinetuneConfig gives one
    min_lr_ratio: float  # where the cosine ends, a share of lr, unless FinetuneConfig gives one


class Adapter(Protocol):
    """A kind's `train.make_adapter(corpus, options, seed, device)` returns one."""

    schedule: Schedule
    unit: str  # what a loss is per: "char" or "token"
    model: nn.Module  # only parameters with requires_grad are trained and checkpointed
    grad_accum: int  # train_loss() calls (micro-batches) per optimizer step
    units_per_step: int
    chars_per_unit: float  # characters of text per unit, to report bits per character
    cuda_dtype: torch.dtype  # autocast dtype on CUDA; float16 turns on loss scaling in the core
    # K, the ghostwriting evaluation's prompted samples (and as many unconditional) unless --eval-samples says: a
    # kind that writes them side by side in one batch affords more, and so narrower intervals on its figures
    ghostwriting_samples: int

    def headline(self) -> str:
        """The run's first line: what is trained, how big, on how much."""
        ...

    def fit_memory(self, world: "World") -> None:
        """Called on every rank once all have made their adapter: a kind whose micro-batch the device's memory
        bounds measures it here, and the ranks agree on it (every rank takes part in the same collectives)."""
        ...

    def less_memory(self) -> "Smaller":
        """The flags that make this run need less device memory, for the one line said after it ran out (in a step,
        an evaluation or a sample): memory.advice words it."""
        ...

    def check_start(self, val_loss: float) -> None:
        """Raise a UserError when the loss before the first step says the run is not what was asked."""
        ...

    def train_loss(self) -> torch.Tensor:
        """Mean cross-entropy (nats per unit) on the next micro-batch, graph attached."""
        ...

    def evaluate(self, split: str, max_units: int) -> float:
        """Mean cross-entropy on (the first max_units of) a split, in eval mode."""
        ...

    def sample(self, n_units: int, seed: int) -> str:
        """An unconditional sample, without touching the global RNG."""
        ...

    def text(self, split: str, max_units: int | None = None) -> str:
        """The text of a split ("train" or "val"; of its first max_units units, as `evaluate` reads them): the
        n-gram baseline is fitted and scored on the very text the model is."""
        ...

    def write(self, prompts: list[str], n_units: int, seed: int, sampling: Sampling) -> list[str]:
        """A continuation of `n_units` after each prompt (an empty prompt: an unconditional sample), for the
        ghostwriting evaluation; without touching the global RNG."""
        ...

    def decoder(self) -> "Decoder":
        """The model being trained as the generation API writes with it (contract.sampling.Decoder), for an evaluation
        with settings of the chain `write` lacks (the copy guard, DRY...); its weights as they are, never cast."""
        ...

    def data_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Where the data stream is (JSON) and any tensors carried between batches."""
        ...

    def load_data_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None: ...

    def amounts(self) -> TextAmounts:
        """How much text it learns from and is judged on, and how many parameters: the size warnings read it."""
        ...

    def describe(self) -> dict:
        """Architecture, vocabulary, split and hyperparameters for config.json."""
        ...

    def save_weights(self, directory: Path) -> None:
        """Write the weights a user loads (the best checkpoint) into directory."""
        ...

    def finish(self, directory: Path) -> None:
        """Anything written once after training (a merged LoRA model)."""
        ...
