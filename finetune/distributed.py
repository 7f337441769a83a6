"""Training on several processes under torchrun: who this process is, what the ranks share, who decides.

PyTorch's launcher, `torchrun`, starts one process per GPU (or several on a CPU), on one node or several, and
puts RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous in their environment; `start()` joins them into a process
group (NCCL on CUDA, gloo on a CPU). The training core stays the single-process one. This module gives it:

- the model wrapped for gradient synchronisation (`Engine`): DDP, or FSDP's `fully_shard` for a GPT-2 whose
  optimizer state does not fit one GPU;
- each rank's share of every batch (`World.rows`): the kinds cut the same seeded global batch whatever the
  world size, so the data order and the checkpoint do not depend on how many processes trained;
- the decisions: every rank computes what the single-process run computes (steps, evaluations, samples), rank 0
  decides what follows from them (stop, best weights, ghostwriting checkpoint) and broadcasts it, so that all
  ranks take the same branches and stop at the same step; only rank 0 writes and prints.

Decisions, losses and barriers go over a gloo group of their own, on the CPU, with a generous timeout: a rank that
waits there for rank 0 (tokenizing a corpus, writing a checkpoint) is not a pending NCCL collective, so NCCL's
watchdog never kills the run (transformers #26814, accelerate #2528).
"""

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from corpora import UserError

from . import device as devices
from .adapter import Adapter

T = TypeVar("T")
WAIT = datetime.timedelta(hours=1)  # how long a rank may wait for another at a barrier or a decision
TRAINING_WAIT = datetime.timedelta(minutes=30)  # the NCCL group's timeout: a step's collectives, a checkpoint's gathers


@dataclass(frozen=True)
class World:
    """This process's place among the ranks; `World()` is a plain single-process run, with nothing to synchronise."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    control: Any = None  # the gloo group of decisions and barriers; None when torchrun did not start this process

    @property
    def main(self) -> bool:
        """Rank 0: the one that decides, writes and prints."""
        return self.rank == 0

    @property
    def launched(self) -> bool:
        """Started by torchrun: gradients go through DDP (or FSDP) even at world size 1."""
        return self.control is not None

    def rows(self, n: int, what: str) -> slice:
        """This rank's contiguous share of the `n` rows of a global batch (rank order is row order)."""
        if n % self.size:
            raise UserError(f"{what} of {n} does not split evenly over {self.size} processes: "
                            f"use a multiple of {self.size}, or another number of processes")
        share = n // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def decide(self, value: T) -> T:
        """Rank 0's `value`, on every rank."""
        if not self.launched or self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def mean_and_any(self, value: float, flag: bool) -> tuple[float, bool]:
        """The mean of `value` over the ranks, and whether `flag` is set on any: one collective per step."""
        if not self.launched or self.size == 1:
            return value, flag
        t = torch.tensor([value, float(flag)], dtype=torch.float64)
        dist.all_reduce(t, group=self.control)
        return float(t[0]) / self.size, bool(t[1] > 0)

    def least(self, value: int) -> int:
        """The smallest of the ranks' `value`s, on every rank: what all of them can do."""
        if not self.launched or self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MIN, group=self.control)
        return int(t[0])

    def gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Every rank's rows of a tensor carried between batches, joined along `dim` in rank order, on the CPU."""
        tensor = tensor.detach().cpu().contiguous()
        if self.size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor, group=self.control)
        return torch.cat(parts, dim)

    def barrier(self) -> None:
        if self.launched and self.size > 1:
            dist.barrier(group=self.control)

    @contextlib.contextmanager
    def node_main_first(self) -> Iterator[None]:
        """The block runs on each node's first rank, then on the others, which find its caches: a corpus is fetched
        and tokenized once per node, while the other ranks wait at a barrier with a generous timeout."""
        first = self.local_rank == 0
        if not first:
            self.barrier()
        yield
        if first:
            self.barrier()

    def seed(self, seed: int, step: int) -> None:
        """Ranks after the first draw their own dropout masks (rank 0 keeps the checkpoint's RNG, so a world of one is
        the single-process run); the same seed, rank and step give the same draws."""
        if self.rank:
            torch.manual_seed((seed * 1_000_003 + self.rank * 7_919 + step) % 2**63)


SINGLE = World()


def start(device_name: str) -> tuple[World, torch.device]:
    """Join torchrun's process group when it started this process; the world and this rank's device."""
    if "RANK" not in os.environ:
        return SINGLE, devices.pick_device(device_name)
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = devices.pick_device(device_name)
    if device.type == "cuda":
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", local + 1))  # checked on every rank: rank 0 says it
        if torch.cuda.device_count() < per_node:
            raise UserError(f"{per_node} processes on a node with {torch.cuda.device_count()} GPU(s): start one per GPU "
                            "(--nproc)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"training on several processes runs on CUDA (NCCL) or the CPU (gloo), not on {device.type}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TRAINING_WAIT, device_id=device if device.type == "cuda" else None)
    control = dist.new_group(backend="gloo", timeout=WAIT) if backend == "nccl" else dist.new_group(timeout=WAIT)
    return World(rank, size, local, control), device


def stop(world: World) -> None:
    """Leave the process group at the end of the run."""
    if world.launched:
        dist.destroy_process_group()


class LossModule(nn.Module):
    """The adapter's next training loss as a module's forward: DDP and FSDP synchronise gradients through the
    forward they wrap, and a kind computes its loss from its model's parts (GPT-2's body and padded head)."""

    def __init__(self, model: nn.Module, loss: Callable[[], torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self) -> torch.Tensor:
        return self.loss()


class Engine:
    """What the training core calls for a micro-batch's loss, and when gradients are synchronised.

    A single process calls the adapter directly. Under torchrun the loss goes through DDP, whose gradients are
    averaged over the ranks at the step's last micro-batch only (`no_sync` before it), or through FSDP; the core
    then talks to the adapter through `Shared`.
    """

    def __init__(self, world: World, adapter: Adapter, device: torch.device, fsdp: bool = False):
        self.world = world
        self.fsdp = fsdp
        self.module: nn.Module | None = None
        self.loss = adapter.train_loss
        self.adapter: Adapter = adapter
        if fsdp:
            self.module = shard(LossModule(adapter.model, adapter.train_loss), world)
        elif world.launched:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.module = DDP(LossModule(adapter.model, adapter.train_loss), gradient_as_bucket_view=True,
                              device_ids=[device.index] if device.type == "cuda" else None)
        if world.launched:
            self.adapter = Shared(adapter, world, self.module if fsdp else None)  # type: ignore[assignment]

    def __call__(self) -> torch.Tensor:
        return self.loss() if self.module is None else self.module()

    @contextlib.contextmanager
    def accumulating(self, last: bool) -> Iterator[None]:
        """A micro-batch's forward and backward; gradients are averaged over the ranks only after the `last` one."""
        if self.module is None:
            yield
        elif self.fsdp:
            self.module.set_requires_gradient_sync(last)  # type: ignore[operator]
            yield
        else:
            with contextlib.nullcontext() if last else self.module.no_sync():  # type: ignore[operator]
                yield


class Shared:
    """The adapter as the ranks share it: every rank calls it, rank 0 alone writes its weights.

    Under FSDP its evaluations and samples run through the sharded model's forward on every rank (each
    transformer block gathers its weights as it runs), and its weights are gathered whole before rank 0 writes
    them: never one rank's shard, and for LoRA the adapter alone (transformers PR #28297, accelerate PR #4206).
    """

    def __init__(self, adapter: Adapter, world: World, sharded: nn.Module | None):
        self._adapter = adapter
        self._world = world
        self._sharded = sharded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def _run(self, work: Callable[[], T]) -> T:
        """`work` with the whole model on every rank: a kind's fast decoding reads the weights of a block without
        calling it, so every FSDP unit is gathered first (the weights fit; their optimizer state is what FSDP is for)."""
        if self._sharded is None:
            return work()
        from torch.distributed.fsdp import FSDPModule

        units = [m for m in self._sharded.modules() if isinstance(m, FSDPModule)]
        for unit in units:
            unit.unshard()
        try:
            return work()
        finally:
            for unit in units:
                unit.reshard()

    def evaluate(self, split: str, max_units: int) -> float:
        return self._run(lambda: self._adapter.evaluate(split, max_units))

    def sample(self, n_units: int, seed: int) -> str:
        return self._run(lambda: self._adapter.sample(n_units, seed))

    def write(self, prompts: list[str], n_units: int, seed: int, sampling: Any) -> list[str]:
        return self._run(lambda: self._adapter.write(prompts, n_units, seed, sampling))

    def save_weights(self, directory: Path) -> None:
        if self._sharded is None:
            if self._world.main:
                self._adapter.save_weights(directory)
            return
        state = whole(self._adapter.model.state_dict(keep_vars=True), self._world)  # tied weights stay tied
        if self._world.main:
            self._adapter.save_weights(directory, state)  # type: ignore[call-arg]


def plain(t: torch.Tensor) -> torch.Tensor:
    """A tensor FSDP holds as a DTensor (a shard of it on each rank), whole: a collective every rank joins."""
    return t.full_tensor() if isinstance(t, DTensor) else t


def whole(tensors: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """Tensors gathered whole, one at a time, onto the CPU of rank 0 (the others join the gathers and keep nothing).

    A tensor listed under two names (GPT-2's tied embedding and output head, in a `state_dict(keep_vars=True)`) is
    gathered once and kept once under both: save_pretrained then sees the tie and writes the weight once, as the
    single-process save does, not an untied copy of the vocabulary matrix. Every rank lists the same objects, so
    all skip the same gathers.
    """
    gathered: dict[str, torch.Tensor] = {}
    first: dict[int, str] = {}  # a tensor's id: the name it was gathered under
    for name, t in tensors.items():
        if id(t) in first:
            if world.main:
                gathered[name] = gathered[first[id(t)]]
            continue
        first[id(t)] = name
        full = plain(t)
        if world.main:
            gathered[name] = full.detach().cpu()
    return gathered


def load_whole(target: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A whole tensor read from a checkpoint, as the shard of it that `target` (a parameter or its state) holds here."""
    if not isinstance(target, DTensor):
        return value
    return distribute_tensor(value.to(target.device_mesh.device_type), target.device_mesh, target.placements)


def shard(module: LossModule, world: World) -> nn.Module:
    """FSDP (`fully_shard`): each transformer block its own unit, the rest (embeddings, final norm) the root's."""
    from torch.distributed.fsdp import fully_shard

    if not world.launched:
        raise UserError("--fsdp shards the model over the processes torchrun starts: run it with --nproc N "
                        "(or torchrun --nproc-per-node N -m finetune ...)")
    blocks = [m for m in module.modules() if type(m).__name__ == "GPT2Block"]
    if not blocks:
        raise UserError("--fsdp is for GPT-2 models (their transformer blocks are what it shards)")
    for block in blocks:
        fully_shard(block)
    return fully_shard(module)
