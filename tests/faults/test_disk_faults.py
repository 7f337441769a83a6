"""Training when the disk fills up, or the model directory becomes read-only, in the middle of a run.

The fault is injected at the write layer: every file of a run is renamed into
place by `corpora.files.replacing` (os.replace), and from the chosen write on,
each rename into the model directory fails as the system would (ENOSPC,
EROFS). No root tricks, so it runs anywhere. The run must stop with one line
that says what to do, leave the last good checkpoint readable, and, once the
disk is back, resume to the very run it would have been.
"""

import errno
import os
import random
from pathlib import Path

import pytest

from corpora import UserError
from finetune.checkpoint import load_checkpoint, read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions

from .conftest import figure, size

STEPS = 40


def _train(corpus: Path, out: Path, resume: bool = False, force: bool = False) -> None:
    finetune(FinetuneConfig(corpus=str(corpus), model="char", out=out, max_steps=STEPS, eval_every=10, sample_every=20,
                            checkpoint_every=4, seed=7, ghostwriting_every=0, resume=resume, force=force,
                            options=CharOptions(size="tiny")), Reporter())


@pytest.fixture(scope="module")
def uninterrupted(pkd_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "m"
    _train(pkd_slice, out)
    return out


def _faults() -> list[tuple[int, int]]:
    """(errno, the write that first fails): a full disk at one moment in CI; both faults at four in the long form."""
    rng = random.Random(16)
    moments = [rng.randrange(3, 25) for _ in range(size(ci=1, long=4))]
    return [(code, at) for at in moments for code in (errno.ENOSPC, errno.EROFS)[: size(ci=1, long=2)]]


@pytest.mark.parametrize(("code", "at"), _faults(), ids=lambda v: errno.errorcode.get(v, str(v)))
def test_a_disk_that_fills_up_or_turns_read_only_stops_the_run_and_it_resumes(
        code: int, at: int, pkd_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: Path):
    out = tmp_path / "m"
    real_replace = os.replace
    writes = 0

    def failing_replace(src, dst, *args, **kwargs):
        nonlocal writes
        if Path(dst).is_relative_to(out):
            writes += 1
            if writes >= at:
                raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(UserError) as stopped:
        _train(pkd_slice, out)
    message = str(stopped.value)
    assert "\n" not in message and os.strerror(code) in message
    checkpoint = out / "last" / "checkpoint.safetensors"
    if checkpoint.exists():
        step = load_checkpoint(checkpoint)[1]["run"]["step"]  # readable, and before the failed write
        assert step < STEPS
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], "a temporary file was left behind"

    monkeypatch.setattr(os, "replace", real_replace)  # the disk is back
    _train(pkd_slice, out, resume=checkpoint.exists(), force=not checkpoint.exists())
    figure(f"training: {errno.errorcode[code]} at write {at}: one-line error, "
           f"{'resumed' if checkpoint.exists() else 'run again'} to the uninterrupted run's losses")
    a, b = read_jsonl(uninterrupted / "history.jsonl"), read_jsonl(out / "history.jsonl")
    assert [(r.get("train_loss"), r.get("val_loss")) for r in a] == [(r.get("train_loss"), r.get("val_loss")) for r in b]
