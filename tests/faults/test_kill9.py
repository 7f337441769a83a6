"""Training killed with SIGKILL at random moments, one of them in the middle of a checkpoint write, then resumed.

After every kill the checkpoint on disk must load, and `--resume` must carry
on from it; after the last one the run must end with the same loss at every
step, the same samples and the same weights as a run never interrupted.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from finetune.checkpoint import load_checkpoint, read_jsonl

from ..conftest import ROOT, TINY
from .conftest import figure, size

STEPS_PER_KILL = 12


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "assistant", "finetune", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ.copy())


def _checkpoint_step(out: Path) -> int | None:
    """The step of the checkpoint on disk; None before the first. Loading it is the test that it is readable."""
    path = out / "last" / "checkpoint.safetensors"
    return load_checkpoint(path)[1]["run"]["step"] if path.exists() else None


def _polled_step(out: Path) -> int:
    """The checkpoint's step while the run may be replacing it: safetensors reads the header through one handle and
    torch maps the path again, so a read that straddles the atomic rename sees two files (a size mismatch, a
    RuntimeError). Such a read is taken again at the next poll; the step read once the run is dead must load."""
    try:
        return _checkpoint_step(out) or 0
    except RuntimeError as e:
        if "mapping size" not in str(e):
            raise
        return 0


def _in_a_checkpoint_write(out: Path) -> bool:
    """Whether a checkpoint is being written now: corpora.files writes it under a temporary name beside its own."""
    try:
        return any(name.startswith(".checkpoint.safetensors.") for name in os.listdir(out / "last"))
    except FileNotFoundError:
        return False


def _kill_at(proc: subprocess.Popen, out: Path, step: int, extra_s: float, in_write: bool, deadline: float) -> None:
    """SIGKILL once the run has checkpointed `step`, then `extra_s` later, or at its next checkpoint write."""
    while (_polled_step(out) < step and proc.poll() is None) and time.monotonic() < deadline:
        time.sleep(0.01)
    if in_write:
        while not _in_a_checkpoint_write(out) and proc.poll() is None and time.monotonic() < deadline:
            pass  # polled without a pause: a tiny model's write takes a millisecond or less
    else:
        time.sleep(extra_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(pkd_slice: Path, tmp_path: Path):
    kills = size(ci=3, long=10)
    steps = STEPS_PER_KILL * (kills + 1)
    args = [str(pkd_slice), *TINY, "--max-steps", str(steps), "--checkpoint-every", "2", "--ghostwriting-every", "0"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    rng = random.Random(16)
    uninterrupted = _start([*args, "--out", str(straight)])  # side by side: the kills do not wait for it
    proc = _start([*args, "--out", str(killed)])
    survived, moments = 0, []
    for k in range(kills):
        step = rng.randrange(k * STEPS_PER_KILL + 2, (k + 1) * STEPS_PER_KILL)
        in_write = k == 0  # the first kill lands inside a checkpoint write; the others anywhere
        _kill_at(proc, killed, step, rng.uniform(0, 0.5), in_write, time.monotonic() + 300)
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        at = _checkpoint_step(killed)  # raises if the kill left it unreadable
        moments.append(f"{'in a checkpoint write' if in_write else 'mid-run'} at checkpoint {at}")
        proc = _start([*args, "--out", str(killed), "--resume"])
        survived += 1
    assert proc.wait(timeout=900) == 0 and uninterrupted.wait(timeout=900) == 0
    a, b = read_jsonl(straight / "history.jsonl"), read_jsonl(killed / "history.jsonl")
    difference = max(abs((x.get(key) or 0) - (y.get(key) or 0)) for x, y in zip(a, b, strict=True)
                     for key in ("train_loss", "val_loss"))
    figure(f"training: {survived}/{kills} SIGKILLs survived ({', '.join(moments)}); loss trajectory difference "
           f"{difference} over {len(b) - 1} steps")
    assert [r["step"] for r in b] == list(range(steps + 1))
    assert [(r.get("train_loss"), r.get("val_loss")) for r in a] == [(r.get("train_loss"), r.get("val_loss")) for r in b]
    assert read_jsonl(straight / "samples.jsonl") == read_jsonl(killed / "samples.jsonl")
    assert (straight / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()
    assert not list(killed.rglob("*.tmp")), "a killed write's temporary is left behind"
