"""`assistant finetune --nproc N`: the same command line, started on N processes by torchrun.

We do not write a launcher: torchrun (`python -m torch.distributed.run`) starts
the processes, gives each its rank and rendezvous, forwards Ctrl-C and SIGTERM
to them and stops them all when one fails. This module only builds its command
line and hands the process over to it (standard library only: the CLI imports it).
The processes it starts run the command line given less the launcher's flags
(torchrun would read them as its own), and know they were launched by the RANK
torchrun puts in their environment.
"""

import os
import sys

from corpora import UserError

SHUTDOWN_GRACE = 600  # seconds
LAUNCHER_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint")  # what torchrun applies, each with a value


def launched() -> bool:
    """Whether torchrun started this process (then --nproc and the other launcher flags are already applied)."""
    return "RANK" in os.environ


def main_process() -> bool:
    """Whether this process speaks for the run: rank 0 under torchrun, and any process it did not start."""
    return os.environ.get("RANK", "0") == "0"


def torchrun_command(argv: list[str], nproc: int, nnodes: int = 1, node_rank: int | None = None,
                     rdzv_endpoint: str | None = None) -> list[str]:
    """torchrun running `python -m assistant ARGV` on `nproc` processes per node, on `nnodes` nodes.

    One node uses torchrun's standalone rendezvous (a free local port); several meet at `rdzv_endpoint`
    (HOST:PORT of the first node) through the c10d rendezvous, as torchrun's documentation has it.
    """
    if nproc < 1 or nnodes < 1:
        raise UserError(f"--nproc and --nnodes must be at least 1, got {nproc} and {nnodes}")
    if nnodes > 1 and rdzv_endpoint is None:
        raise UserError("--nnodes over 1 needs --rdzv-endpoint HOST:PORT, the first node's address, given on every node")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    if nnodes == 1 and rdzv_endpoint is None:
        command.append("--standalone")
    else:
        command += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint or "localhost:29400"]
        if node_rank is not None:
            command += ["--node-rank", str(node_rank)]
    return [*command, "-m", "assistant", *without_launcher_flags(argv)]


def without_launcher_flags(argv: list[str]) -> list[str]:
    """`argv` less --nproc N, --nnodes=M and the like."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCHER_FLAGS:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in LAUNCHER_FLAGS)):
            kept.append(arg)
    return kept


def run_torchrun(argv: list[str], nproc: int, nnodes: int, node_rank: int | None, rdzv_endpoint: str | None) -> None:
    """Replace this process with torchrun, so that Ctrl-C and the exit status are torchrun's own."""
    command = torchrun_command(argv, nproc, nnodes, node_rank, rdzv_endpoint)
    # after a Ctrl-C, the processes end their step and write the checkpoint before torchrun kills them: a large
    # model's takes minutes, where torchrun's default allows 30 seconds
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_GRACE))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
