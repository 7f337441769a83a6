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

from assistant.repl import HELP, Repl, SlashCompleter
from assistant.samples.store import GHOSTWRITTEN, Store

from .conftest import ROOT, ctrl_c_as_in_a_terminal

ANSI = re.compile(r"\x1b\[[\d;?]*[a-zA-Z]")


def spawn(model: Path, columns: int = 160) -> pexpect.spawn:
    """`assistant repl MODEL` in a pseudo-terminal, ready for a prompt.

    Ctrl-C is a terminal's SIGINT: the REPL gets it the way a writer's
    terminal sends it even when these tests run where SIGINT is ignored (a
    background job), which the child would otherwise inherit.
    """
    # the test answers no cursor-position requests; without them prompt-toolkit draws no toolbar, all else is the same
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "assistant", "repl", str(model)], cwd=str(ROOT), env=env,
                          dimensions=(40, columns), encoding="utf-8", timeout=60,
                          codec_errors="replace",  # the terminal echoes ^C where it comes, even inside a character
                          preexec_fn=ctrl_c_as_in_a_terminal)
    child.expect("is ready")
    return child


@pytest.fixture
def repl(trained_model: Path, isolated_home: Path):
    """`assistant repl` in a 160-column pseudo-terminal, with a second model named `other` to compare with."""
    shutil.copytree(trained_model, isolated_home / "models" / "other")
    child = spawn(trained_model)
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
    repl.expect(r"  #4 [^\n]*  #5 ")  # the columns are headed by the samples' ids

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
    assert completions("/t") == ["/temperature", "/tokens", "/top-k", "/top-p", "/tag"]
    assert completions("/compare pk") == ["pkd-tiny"]
    assert completions("/tag gh") == [GHOSTWRITTEN]
    assert completions("The robot") == []
    repl = Repl(None, min_span=50)  # the newest model
    repl.handle("/length 120")
    assert repl.model.name == "pkd-tiny" and "temperature 0.8 | length 120" in repl.toolbar()  # its folder's name


def test_settings_seed_tokens_stop_at_help_and_quit(repl: pexpect.spawn):
    repl.send("/lenght 40\r")  # a mistyped command is answered with the nearest
    repl.expect(r"unknown command /lenght: did you mean /length\? /help lists them")
    repl.send("/help\r")
    repl.expect("Ctrl-D leaves")
    rows = [ANSI.sub("", line) for line in repl.before.splitlines()]
    rows = {usage: row for usage in HELP for row in rows if row.strip().startswith(usage + "  ")}
    starts = {len(row) - len(row[row.index(usage) + len(usage):].lstrip()) for usage, row in rows.items()}
    assert len(rows) == len(HELP) and len(starts) == 1, rows  # every description starts in the same column

    repl.send("Tom & Jerry met at 5% past noon\r")  # a warning goes on its own line, before the text
    repl.expect(r"#1 · ")
    assert re.search(r"warning:(\x1b\[[\d;?]*[a-zA-Z])* the model has never seen 3 character\(s\) of the prompt; "
                     r"dropped: '%&5'\r\n(\x1b\[[\d;?]*[a-zA-Z])*Tom & Jerry met at 5% past noon", repl.before), repl.before

    repl.send("/seed 5\r")
    repl.expect("seed: 5")
    repl.send("/length 40\r")
    repl.expect("length: 40")
    for expected in ("#2 · 40 chars", "#3 · 40 chars"):  # the same seed writes the same text again
        repl.send("The robot said\r")
        repl.expect(expected)
    repl.send("/seed off\r")
    repl.expect("the last sample's seed: 5")
    repl.send("/tokens 7\r")  # a char model's tokens are characters
    repl.expect("tokens: 7")
    repl.send("The robot said\r")
    repl.expect(r"#4 · 7 chars")
    repl.send("/tokens off\r")  # characters again
    repl.expect("tokens: off")
    repl.send("/stop-at never\r")
    repl.expect("stop-at must be one of sentence, line, paragraph, got 'never'")
    repl.send("/stop-at line\r")
    repl.expect("stop-at: line")
    repl.send("/quantize int8\r")  # a char model has no int8: refused, and the setting stays
    repl.expect("--quantize int8 is for GPT-2 models")
    repl.send("/quantize\r")
    repl.expect(r"quantize: auto \(\S+ writes in float32\)")
    repl.send("/length 2000\r")
    repl.send("The robot said\r")
    repl.expect(r"#5 · \d+ chars")
    repl.send("/quit\r")
    repl.expect(pexpect.EOF)
    repl.wait()
    assert repl.exitstatus == 0

    with Store() as store:
        samples = {s.id: s for s in store.find()}
    assert samples[2].text == samples[3].text and samples[2].params["seed"] == samples[3].params["seed"] == 5
    assert samples[4].params["max_new_tokens"] == 7 and samples[4].params["max_new_chars"] is None  # not 40 at most
    assert samples[5].params["stop_at"] == "line" and "\n" not in samples[5].text.strip() and samples[5].chars < 2000


def test_compare_streams_both_sides_and_ctrl_c_stops_it_not_the_repl(repl: pexpect.spawn):
    repl.send("/length 100000\r")
    repl.expect("length: 100000")
    repl.send("/compare other The robot\r")
    # both columns are drawn while they are written, long before they end
    repl.expect(r"│ (\x1b\[[\d;]*m)*The robot[^\n]*│ (\x1b\[[\d;]*m)*The robot")
    time.sleep(1)
    repl.sendintr()
    repl.expect(r"  #1 [^\n]*  #2 ")
    repl.expect(r"\(stopped\)")
    repl.send("/length 60\r")  # and the REPL still answers
    repl.expect("length: 60")
    with Store() as store:
        samples = store.find()
    assert len(samples) == 2 and all(s.cancelled and 0 < s.chars < 100000 and s.prompt == "The robot" for s in samples)
    assert samples[0].params["seed"] == samples[1].params["seed"]  # the same draw: they differ by model alone


def test_ghostwrite_prints_the_text_as_stored_and_refuses_a_copy_unless_asked(parrot: Path, isolated_home: Path):
    repl = spawn(parrot, columns=50)  # narrower than the text: a terminal wraps it, the REPL must not
    try:
        repl.send("/temperature 0\r")
        repl.expect("temperature: 0")
        repl.send("/length 150\r")
        repl.expect("length: 150")
        repl.send("The robot\r")
        repl.expect(r"#1 · 150 chars")
        repl.expect(r"copies \d+ characters(\s|\x1b\[[\d;]*m)+of(\s|\x1b\[[\d;]*m)+parrot\.txt")  # a wrapped status
        repl.send("/ghostwrite\r")
        repl.expect(r"error:(\x1b\[[\d;]*m)* #1 copies \d+ characters of parrot.txt word for word")
        repl.expect("/ghostwrite anyway to publish it all the same")
        with Store() as store:
            assert store.get(1).tags == []
        repl.send("/ghostwrite anyway\r")
        repl.expect("tagged ghostwritten:")
        with Store() as store:
            sample = store.get(1)
        repl.expect(re.escape((sample.prompt + sample.text).replace("\n", "\r\n") + "\r\n"))
        assert sample.tags == [GHOSTWRITTEN] and len(sample.prompt + sample.text) > 50
        repl.send("/exit\r")
        repl.expect(pexpect.EOF)
    finally:
        repl.close(force=True)
    assert repl.exitstatus == 0
