"""The REPL driven for real in a pseudo-terminal with a tiny trained model."""

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pexpect
import pytest
from prompt_toolkit.document import Document

from assistant.repl import Repl, SlashCompleter
from assistant.samples.store import GHOSTWRITTEN, Store

from .conftest import ROOT


@pytest.fixture
def repl(trained_model: Path, isolated_home: Path):
    """`assistant repl` in a 160-column pseudo-terminal, with a second model named `other` to compare with."""
    shutil.copytree(trained_model, isolated_home / "models" / "other")
    # the test answers no cursor-position requests; without them prompt-toolkit draws no toolbar, all else is the same
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "assistant", "repl", str(trained_model)], cwd=str(ROOT), env=env,
                          dimensions=(40, 160), encoding="utf-8", timeout=60)
    child.expect("is ready")
    yield child
    child.close(force=True)


def test_a_writing_session(repl: pexpect.spawn, isolated_home: Path):
    assert "indexing corpus" not in repl.before  # not at load: at the first memorization check
    repl.send("/length 80\r")
    repl.expect("length: 80")
    repl.send("The robot said\r")
    repl.expect(r"#1 · 80 chars")
    assert re.search(r"\n(\x1b\[[\d;?]*[a-zA-Z])*indexing corpus [^\n]*\(once\)\.\.\.\r?\n", repl.before), repl.before

    repl.send("/length 100000\r")
    repl.expect("length: 100000")
    repl.send("He looked\r")
    time.sleep(1.5)  # well into a generation that would take minutes
    repl.sendintr()
    repl.expect(r"#2 · \d+ chars · [\d.]+ s · cancelled")
    repl.expect(r"\(stopped\)")
    repl.send("/length 60\r")  # and the REPL still answers
    repl.expect("length: 60")

    repl.send("/tag ghostwritten keeper\r")
    repl.expect("#2: ghostwritten, keeper")
    repl.send("/uncond\r")
    repl.expect(r"#3 · 60 chars")
    repl.send("/compare other Once upon\r")
    repl.expect(r"#5 · 60 chars")

    repl.send("Two lines,\x1b\rthen the model:\r")  # Alt-Enter (Esc Enter) adds a line, Enter sends
    repl.expect(r"#6 · 60 chars")

    repl.send("/model no-such-model\r")
    repl.expect("no model 'no-such-model'")
    repl.send("/temperature hot\r")
    repl.expect("temperature: not a number")
    repl.send("/top-p 2\r")
    repl.expect("top-p must be in")
    repl.send("/check\r")
    repl.expect("in the sample at character")
    repl.send("\x12robot")  # Ctrl-R searches the history
    repl.expect("robot")
    repl.send("\r")  # Enter takes the match into the prompt,
    time.sleep(0.5)
    repl.send("\r")  # and Enter sends it
    repl.expect(r"#7 · 60 chars")
    repl.send("\x04")  # Ctrl-D
    repl.expect(pexpect.EOF)
    repl.wait()
    assert repl.exitstatus == 0

    with Store() as store:
        samples = {s.id: s for s in store.find()}
    assert sorted(samples) == [1, 2, 3, 4, 5, 6, 7] and all(s.source == "repl" for s in samples.values())
    assert samples[1].prompt == "The robot said" and len(samples[1].text) == 80 and not samples[1].cancelled
    assert samples[2].cancelled and 0 < samples[2].chars < 100000 and samples[2].tags == [GHOSTWRITTEN, "keeper"]
    assert samples[3].mode == "unconditional"
    assert samples[4].prompt == samples[5].prompt == "Once upon"
    assert samples[4].model_path != samples[5].model_path and samples[5].model_path.endswith("other")
    assert samples[6].prompt == "Two lines,\nthen the model:" and samples[7].prompt == "The robot said"
    assert "The robot said" in (isolated_home / "repl_history").read_text()  # what Ctrl-R searches


def completions(text: str) -> list[str]:
    return [c.text for c in SlashCompleter().get_completions(Document(text), None)]


def test_completion_and_toolbar(trained_model: Path, isolated_home: Path):
    shutil.copytree(trained_model, isolated_home / "models" / "pkd-tiny")
    assert completions("/t") == ["/temperature", "/top-k", "/top-p", "/tag"]
    assert completions("/compare pk") == ["pkd-tiny"]
    assert completions("/tag gh") == [GHOSTWRITTEN]
    assert completions("The robot") == []
    repl = Repl(None, min_span=50)  # the newest model
    repl.handle("/length 120")
    assert repl.model.name == "tiny-pkd" and "temperature 0.8 | length 120" in repl.toolbar()
