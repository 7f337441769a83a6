"""Signals: Ctrl-C in a REPL that was started with SIGINT ignored, and SIGTERM during training.

A background job (`assistant repl &` from a script, a CI runner) inherits an
ignored SIGINT; the REPL installs its own handler, so a writer's Ctrl-C still
stops a generation. SIGTERM (a shutdown, a scheduler's time limit) stops
training at a step boundary with a last checkpoint, as a first Ctrl-C does.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect

from finetune.checkpoint import load_checkpoint

from ..conftest import ROOT, TINY


def _sigint_ignored() -> None:
    """preexec_fn: the child starts as a background job does, SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_a_generation_in_a_repl_started_with_sigint_ignored(trained_model: Path):
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "assistant", "repl", str(trained_model)], cwd=str(ROOT), env=env,
                          dimensions=(40, 160), encoding="utf-8", timeout=60, codec_errors="replace",
                          preexec_fn=_sigint_ignored)
    try:
        child.expect("is ready")
        child.sendline("/length 200000")
        child.expect("> ")
        child.sendline("The door opened and")
        time.sleep(2)  # well into a generation that would take minutes
        child.sendintr()
        child.expect(r"\(stopped\)", timeout=30)
        child.sendline("/quit")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)


def test_sigterm_during_training_writes_a_last_checkpoint(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    args = ["finetune", str(pkd_slice), *TINY, "--max-steps", "100000", "--checkpoint-every", "100000",
            "--ghostwriting-every", "0", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "assistant", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 300
    while not (out / "model.safetensors").exists() and time.monotonic() < deadline:  # written as training starts
        time.sleep(0.05)
    time.sleep(2)
    assert not (out / "last" / "checkpoint.safetensors").exists(), "no periodic checkpoint before the signal"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted; continue with --resume" in stderr
    assert load_checkpoint(out / "last" / "checkpoint.safetensors")[1]["run"]["step"] > 0
