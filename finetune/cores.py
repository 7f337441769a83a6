"""One training step's batch, split across the CPU's cores: each core runs its share of the streams on its own.

A small recurrent model on a CPU leaves cores idle: each time step of an LSTM
is a product too small to split between threads, so a second intra-op thread
buys nothing (2x192 in bf16: 16 ms a step on one thread or two). Whole
streams, though, are independent until their gradients are summed. So the
batch is cut into one share per core, and each share's forward and backward
runs in a thread of its own with one intra-op thread (PyTorch releases the GIL
inside its kernels): data-parallel training within one process.

The shares' gradients are summed in a fixed order, so a step gives the same
numbers every time (a resumed run retraces the one it resumes). The split is
an autograd Function whose inputs are the parameters: the core calls its
backward like any loss's, and DDP's hooks on the parameters still fire.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

T = TypeVar("T")
ShareLoss = Callable[[int], torch.Tensor]  # share i -> its mean loss, graph attached
# Fewer rows than this per share and a share takes as long as twice as many would (oneDNN's LSTM in bf16 on one
# thread: batch 16 and 32 both about 14 ms a step for 2x192): more shares than that gain nothing.
MIN_SHARE_ROWS = 16


def shares_for(device: torch.device, rows: int, threads: int | None = None) -> int:
    """How many shares a batch of `rows` streams is cut into: on a CPU one per intra-op thread (`threads`,
    PyTorch's count by default), as many as divide the rows evenly with at least MIN_SHARE_ROWS each; 1 elsewhere
    (a GPU runs the whole batch at once)."""
    if device.type != "cpu":
        return 1
    n = min(threads or torch.get_num_threads(), rows // MIN_SHARE_ROWS)
    while n > 1 and rows % n:
        n -= 1
    return max(1, n)


class Cores:
    """`n` threads, each running one share of a step on one intra-op thread; n == 1 runs it in the caller."""

    def __init__(self, n: int):
        self.n = n
        self.pool: ThreadPoolExecutor | None = None
        if n > 1:
            self.pool = ThreadPoolExecutor(n, thread_name_prefix="share")
            self._start_threads()

    def _start_threads(self) -> None:
        """Start every thread now and give each one intra-op thread, leaving the caller's count as it was.

        PyTorch keeps the intra-op count per thread: a thread takes the process's count when it first runs
        an op, and torch.set_num_threads changes the calling thread's and the one later threads take. So
        each pool thread sets its own to 1 (after its first read, which would otherwise reset it), all of
        them together (a barrier makes the pool start n threads), and then the caller's is set back.
        """
        caller = torch.get_num_threads()
        ready = threading.Barrier(self.n)

        def one_thread(_: int) -> None:
            torch.get_num_threads()
            torch.set_num_threads(1)
            ready.wait()

        self.map(one_thread)
        torch.set_num_threads(caller)

    def loss(self, share_loss: ShareLoss, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The mean of the shares' losses (the shares are equal in size), with a backward that runs the shares
        in parallel and gives `params` the gradient of that mean."""
        if self.pool is None:
            return share_loss(0)
        return _Shares.apply(self, share_loss, *params)

    def map(self, work: Callable[[int], T]) -> list[T]:
        """work(i) for every share i, each on its thread (in the caller when there is one share)."""
        if self.pool is None:
            return [work(0)]
        return list(self.pool.map(work, range(self.n)))


class _Shares(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cores: Cores, share_loss: ShareLoss, *params: torch.Tensor) -> torch.Tensor:
        def forward_share(i: int) -> torch.Tensor:
            with torch.enable_grad():  # a Function's forward runs without grad; the shares build their graphs
                return share_loss(i)

        losses = cores.map(forward_share)
        ctx.cores, ctx.losses, ctx.params = cores, losses, params
        return torch.stack([loss.detach() for loss in losses]).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cores, losses, params = ctx.cores, ctx.losses, ctx.params
        weight = grad / cores.n

        def backward_share(i: int) -> tuple[torch.Tensor | None, ...]:
            return torch.autograd.grad(losses[i], params, weight, allow_unused=True)

        shares = cores.map(backward_share)
        ctx.losses = None  # the shares' graphs are spent: free them now, not when the step's graph goes
        summed: list[torch.Tensor | None] = []
        for grads in zip(*shares, strict=True):
            present = [g for g in grads if g is not None]
            summed.append(sum(present[1:], present[0]) if present else None)
        return (None, None, *summed)
