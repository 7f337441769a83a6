"""How many blocks a GPU holds per forward pass, measured on the card rather than looked up in a table.

A table keyed by card size guesses wrong for everything it was not tuned on:
a 6 GB laptop card, a card another process shares, one capped with
`torch.cuda.set_per_process_memory_fraction`, gpt2-large under LoRA with
gradient checkpointing. So a kind measures instead: it runs one real training
pass (forward and backward, at the run's block size, precision and
checkpointing) of a candidate number of blocks while the optimizer's moments
and some slack are held aside, and the largest candidate that does not run out
of memory wins. Candidates divide a process's share of a step's blocks, so a
step keeps its size exactly and only its accumulation changes. The search
tries the whole share first (on a large card, the only try) and halves the
range after that: a handful of passes, a second or two before training starts.

A CPU is never probed: its memory is not what limits a micro-batch, time is
(see the kinds' own defaults). Tests hand the kind a fake probe instead.
"""

import re
from collections.abc import Callable
from typing import NamedTuple

import torch

Probe = Callable[[int], bool]  # blocks per pass -> whether a training pass of that many fits
SLACK_BYTES = 512 * 2**20  # the allocator's fragmentation, an evaluation's and a sample's buffers
# Running out outside PyTorch's caching allocator is a plain RuntimeError: cuBLAS or cuDNN failing to allocate its
# handle or workspace ("CUBLAS_STATUS_ALLOC_FAILED"), a raw cudaMalloc ("CUDA error: out of memory").
LIBRARY_OUT_OF_MEMORY = re.compile(r"out of memory|STATUS_ALLOC_FAILED", re.IGNORECASE)


class Smaller(NamedTuple):
    """A kind's flags that make a run need less device memory: those a resumed run takes (they change no number of
    the run, only how a step is cut into passes) and those only a new run can take (any of them)."""

    resuming: list[str]
    new_run: list[str]


def largest_fitting(fits: Probe, blocks: int) -> int:
    """The largest divisor of `blocks` that `fits`, or 0 when even one block does not; `fits` must be monotone."""
    candidates = [d for d in range(1, blocks + 1) if blocks % d == 0]
    if fits(candidates[-1]):
        return candidates[-1]
    low, high = -1, len(candidates) - 1  # candidates[high] is known not to fit; low = -1 stands for "none"
    while high - low > 1:
        middle = (low + high) // 2
        if fits(candidates[middle]):
            low = middle
        else:
            high = middle
    return candidates[low] if low >= 0 else 0


def out_of_memory_probe(one_pass: Callable[[int], None], device: torch.device, reserve_bytes: int) -> Probe:
    """A probe that runs `one_pass(n)` with `reserve_bytes` (plus slack) held aside, and answers whether it ran out.

    Whatever the pass allocated is given back to the card before the answer, so the next try starts clean;
    the random state is the same after the search as before it, so a seeded run trains as it would have.
    """

    def fits(blocks: int) -> bool:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            ran = _runs(one_pass, blocks, device, reserve_bytes + SLACK_BYTES)
        if device.type == "cuda":  # after _runs has returned: its frames, and a failed pass's tensors, are gone
            torch.cuda.empty_cache()
        return ran

    return fits


def ran_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is a device running out of memory, in PyTorch's allocator or in a library it calls."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and LIBRARY_OUT_OF_MEMORY.search(str(error)) is not None)


def advice(smaller: Smaller, checkpoint: bool, written: bool) -> str:
    """How to go on after running out of memory, from a kind's ways to need less (Adapter.less_memory): resume in
    smaller passes when there is a checkpoint and the kind has such flags, else a new run with any of its ways
    (`--force` only where a model directory was `written`, to be replaced)."""
    if checkpoint and smaller.resuming:
        return "continue with --resume " + " or --resume ".join(smaller.resuming)
    return ("start again with --force and " if written else "run it again with ") + " or ".join(smaller.new_run)


def _runs(one_pass: Callable[[int], None], blocks: int, device: torch.device, held_bytes: int) -> bool:
    try:
        held = torch.empty(held_bytes, dtype=torch.uint8, device=device)
        one_pass(blocks)
        del held
        return True
    except RuntimeError as error:  # torch.OutOfMemoryError is one
        if ran_out_of_memory(error):
            return False
        raise


def probe(one_pass: Callable[[int], None], device: torch.device, reserve_bytes: int) -> Probe | None:
    """The memory probe for `device`: on CUDA the real one; None where memory does not bound a micro-batch."""
    return out_of_memory_probe(one_pass, device, reserve_bytes) if device.type == "cuda" else None
