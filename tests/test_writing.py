"""Writing from the command line as a writer sees it: `generate`, `compare` and `samples ghostwrite`.

What is on the terminal (a warning on its own line, the prompt echoed or not)
is tested in a real pseudo-terminal; samples that copy their corpus come from
`parrot`, a model that can write nothing but its corpus.
"""

import re
import sys
from pathlib import Path

import pexpect

from assistant import load_model
from assistant.samples.recording import written
from assistant.samples.store import GHOSTWRITTEN, Store

from .conftest import ROOT, run_cli

ANSI = re.compile(r"\x1b\[[\d;?]*[a-zA-Z]")


def test_a_prompt_warning_is_on_its_own_line_before_the_text(trained_model: Path):
    child = pexpect.spawn(sys.executable, ["-m", "assistant", "generate", str(trained_model), "--no-log", "--seed", "1",
                                           "--length", "30", "--prompt", "Tom & Jerry met at 5% past noon"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(24, 200))
    child.expect(pexpect.EOF)
    warning, _, text = ANSI.sub("", child.before).replace("\r\n", "\n").partition("\n")
    assert warning == "warning: the model has never seen 3 character(s) of the prompt; dropped: '%&5'", child.before
    prompt = "Tom & Jerry met at 5% past noon"
    assert text.startswith(prompt) and text[len(prompt) + 30] == "\n", text  # the text whole, then its line ends


def test_no_echo_prints_only_the_continuation_and_stop_at_ends_a_sentence(trained_model: Path, tmp_path: Path):
    (tmp_path / "chapter.txt").write_text("It was a cold night in the city.\n\nThe robot said")
    result = run_cli("generate", str(trained_model), "--prompt-file", str(tmp_path / "chapter.txt"), "--no-echo",
                     "--stop-at", "sentence", "--seed", "3", "--length", "400")
    assert result.returncode == 0, result.stderr
    expected = load_model(trained_model, "cpu").generate("It was a cold night in the city.\n\nThe robot said",
                                                         max_new_chars=400, seed=3, temperature=0.8, stop_at="sentence")
    assert result.stdout == expected + "\n" and "robot said" not in result.stdout
    with Store() as store:
        [sample] = store.find()
    assert sample.text == expected and sample.params["stop_at"] == "sentence"


def test_generate_and_compare_say_when_a_sample_copies_its_corpus(parrot: Path, trained_model: Path):
    copied = run_cli("generate", str(parrot), "-p", "The robot", "-t", "0", "-l", "150", env={"COLUMNS": "300"})
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith("The robot walked into the kitchen")
    assert re.search(r"warning: #1 copies \d+ characters of parrot\.txt word for word \(its character [\d,]+ on\): "
                     r"“walked into the kitchen and said that the coffee was cold a…” \(assistant samples check 1\)",
                     copied.stderr), copied.stderr
    unlogged = run_cli("generate", str(parrot), "-p", "The robot", "-t", "0", "-l", "150", "--no-log",
                       env={"COLUMNS": "300"})
    assert re.search(r"warning: copies \d+ characters of parrot\.txt", unlogged.stderr), unlogged.stderr

    compared = run_cli("compare", str(parrot), str(trained_model), "-p", "The robot", "-t", "0", "-l", "150",
                       "--no-figures", env={"COLUMNS": "200"})
    assert compared.returncode == 0, compared.stderr
    # under the copying side only: the model's own text is not flagged
    assert compared.stdout.count("copies") == 1 and "parrot.txt" in compared.stdout, compared.stdout


def test_ghostwrite_refuses_a_sample_that_copies_unless_anyway(parrot: Path, trained_model: Path):
    _, copying = written(load_model(parrot, "cpu"), "The robot", "api", max_new_chars=150, temperature=0)
    _, own = written(load_model(trained_model, "cpu"), "The robot", "api", max_new_chars=150, seed=1)

    refused = run_cli("samples", "ghostwrite", str(copying))
    assert refused.returncode == 2 and refused.stdout == "", refused.stdout
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: #{copying} copies ") and "of parrot.txt word for word" in line
    assert "“walked into the kitchen" in line and line.endswith("Pass --anyway to publish it all the same")
    with Store() as store:
        assert store.get(copying).tags == []

    published = run_cli("samples", "ghostwrite", str(copying), "--anyway")
    with Store() as store:
        sample = store.get(copying)
    assert published.returncode == 0 and published.stdout == sample.prompt + sample.text + "\n"
    assert published.stderr.startswith(f"warning: #{copying} copies ") and sample.tags == [GHOSTWRITTEN]

    mine = run_cli("samples", "ghostwrite", str(own))
    assert mine.returncode == 0 and mine.stderr == "" and mine.stdout.startswith("The robot")
