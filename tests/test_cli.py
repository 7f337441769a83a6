"""The `assistant` command as a user runs it: real subprocesses, real files."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CORPORA, GPT2_TOKENIZER, ROOT, TINY, ctrl_c_as_in_a_terminal, run_cli
from .documents import document


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, time; t = time.perf_counter(); sys.argv = ['assistant', '--help']\n"
        "from assistant.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', time.perf_counter() - t, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    verdict, seconds = result.stderr.split()[-2:]
    assert verdict == "NO-TORCH"
    assert float(seconds) < 1.0
    assert "finetune" in result.stdout and "generate" in result.stdout


def test_corpus_list_and_show():
    listing = run_cli("corpus", "list")
    assert listing.returncode == 0 and all(n in listing.stdout for n in ("pkd", "austen", "shakespeare"))
    show = run_cli("corpus", "show", "pkd", env={"COLUMNS": "100"})
    assert show.returncode == 0
    assert "13" in show.stdout and "592,034" in show.stdout and "vocabulary" in show.stdout
    # each document by its title, with its size: 15,063 characters and 2,677 words
    assert re.search(r"Beyond Lies the Wub +15,063 +2,677", show.stdout) and "The Hanging Stranger" in show.stdout
    assert run_cli("corpus", "prepare", "shakespeare").stdout.strip().endswith("ready")
    listed = [json.loads(line) for line in run_cli("corpus", "list", "--json").stdout.splitlines()]
    assert {row["name"] for row in listed} >= {"pkd", "austen", "shakespeare"}
    figures, *documents = [json.loads(line) for line in run_cli("corpus", "show", "pkd", "--json").stdout.splitlines()]
    assert figures["corpus"] == "pkd" and figures["characters"] == 592_034 and figures["documents"] == len(documents) == 13
    assert {"document": "Beyond Lies the Wub", "characters": 15_063, "words": 2_677} in documents


def _commands(group=None, path: tuple[str, ...] = ()):
    """Every command of the app, by its path (`samples export`), with its click command."""
    import typer

    from assistant.cli import app

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group: `models` is a listing itself, `samples` only holds commands
            if command.callback is not None and command.invoke_without_command:
                yield (*path, name), command
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


# The commands whose output is a listing (each takes --json), and those that write a file they are told (-o/--out).
LISTINGS = {"corpus list", "corpus show", "models", "samples list"}
WRITE_A_FILE = {"finetune", "cells", "plot", "report", "evolution", "samples export"}
READ_A_MODEL = {"generate", "cells", "memorization", "compare", "repl", "lsp", "serve", "eval", "report"}


def test_one_convention_per_flag_across_commands():
    """-o/--out for a file written, the same --device and --quantize wherever a model's weights are read, --json for
    a listing: each declared once (assistant/cli/options.py), so its name, help and default are the same everywhere.
    A command that calls load_model reads a model, whether or not it is listed above."""
    import inspect

    commands = {" ".join(path): command for path, command in _commands()}
    assert set(commands) >= LISTINGS | WRITE_A_FILE | READ_A_MODEL
    seen: dict[str, tuple] = {}
    for name, command in commands.items():
        options = {decl: p for p in command.params for decl in p.opts if decl.startswith("-")}
        for flag in ("--device", "--quantize", "--json", "--out"):
            if flag in options:  # one help and one default for a flag, whichever command declares it
                p = options[flag]
                described = (tuple(sorted(p.opts)), p.default if flag != "--out" else None,
                             p.help if flag != "--out" else None)
                assert seen.setdefault(flag, described) == described, (name, flag)
        assert not {"--output", "--html", "--file"} & set(options), name
        if name in WRITE_A_FILE:
            assert {"-o", "--out"} <= set(options), name
        reads = name in READ_A_MODEL or "load_model(" in inspect.getsource(command.callback)
        if reads:
            assert {"--device", "--quantize"} <= set(options), name
        if name in LISTINGS:
            assert "--json" in options, name
    assert set(seen) == {"--device", "--quantize", "--json", "--out"}


@pytest.mark.parametrize(
    ("make", "args", "fragments"),
    [
        (None, ["corpus", "show", "austin"], ["unknown corpus 'austin'", "did you mean 'austen'"]),
        (None, ["corpus", "show", "nowhere/novel.txt"], ["no such file or directory"]),
        ({"empty.txt": b"\n \n"}, ["corpus", "show", "{dir}/empty.txt"], ["is empty"]),
        ({"bin.txt": b"ab\x00cd"}, ["corpus", "show", "{dir}/bin.txt"], ["bin.txt", "NUL byte at offset 2"]),
        ({"l1.txt": "na\u00efve".encode("latin-1")}, ["corpus", "show", "{dir}/l1.txt"], ["offset 2", "--encoding"]),
        ({"novel.docx": document(".docx")}, ["corpus", "show", "{dir}/novel.docx", "--encoding", "latin-1"],
         ["novel.docx is a Word document (.docx), not plain text", "save it as plain text (.txt)"]),
        ({"novel.pdf": document(".pdf")}, ["finetune", "{dir}/novel.pdf", "--model", "char", "--encoding", "latin-1"],
         ["novel.pdf is a PDF (.pdf), not plain text", "save it as plain text (.txt)"]),
        ({"s.txt": b"Too short.\n" * 30}, ["finetune", "{dir}/s.txt", "--model", "char"],
         ["corpus too short for the sequence length"]),
        (None, ["finetune", "pkd", "--max-time", "ten minutes"], ["cannot read 'ten minutes' as a duration"]),
        (None, ["finetune", "pkd", "--model", "char", "--size", "huge"], ["unknown --size 'huge'"]),
        (None, ["finetune", "pkd", "--model", "char", "--weight-decay", "-0.1"], ["--weight-decay must be in [0, 1)"]),
        (None, ["finetune", "pkd", "--size", "small"], ["--size is not for --model gpt2 models"]),
        (None, ["finetune", "pkd", "--model", "char", "--lora"], ["--lora is not for --model char models"]),
        (None, ["finetune", "pkd", "--n-layer", "2"], ["--n-layer shapes a new model: it needs --from-scratch"]),
        (None, ["finetune", "pkd", "--merge"], ["--merge merges a LoRA adapter"]),
        (None, ["finetune", "pkd", "--model", "bert"], ["unknown --model 'bert'"]),
        (None, ["generate", "no-such-model"], ["no model 'no-such-model'"]),
        (None, ["generate", "gtp2"], ["no model 'gtp2': did you mean 'gpt2'?"]),
        (None, ["finetune", "pkd", "--base", "gpt2-mediun"], ["base 'gpt2-mediun' is neither a directory",
                                                             "did you mean 'gpt2-medium'?"]),
        (None, ["finetune", "pkd", "--model", "char", "--name", "../escape"], ["--name '../escape' must be a plain name"]),
        (None, ["finetune", "pkd", "--lora-targets", "c_attn"], ["--lora-targets shapes a LoRA adapter: it needs --lora"]),
        (None, ["finetune", "pkd", "--from-scratch", "--base", str(GPT2_TOKENIZER), "--n-layer", "1", "--n-embd", "32",
                "--n-head", "2", "--block-size", "32", "--batch-tokens", "10"],
         ["--batch-tokens 10 is less than one block of 32 tokens"]),
        (None, ["finetune", "pkd", "--lora", "--lora-targets", "c_attn,lm_head", "--merge"], ["drop --merge or lm_head"]),
        (None, ["lsp", "--device", "tpu"], ["unknown --device 'tpu'"]),
        (None, ["samples", "list", "--min-span", "0"], ["--min-span must be at least 1, got 0"]),
        (None, ["samples", "check", "1", "--context", "-5"], ["--context must be at least 0, got -5"]),
        ({"home/samples.db": b"not a database"}, ["samples", "list"], ["sample store", "samples.db", "is damaged"]),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path: Path, make: dict | None, args: list[str], fragments: list[str]):
    for name, data in (make or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    assert_one_line_error(run_cli(*[a.format(dir=tmp_path) for a in args]), *fragments)


def test_encoding_flag_reads_a_latin1_file(tmp_path: Path):
    (tmp_path / "l1.txt").write_bytes("Une na\u00efve histoire.\n".encode("latin-1"))
    result = run_cli("corpus", "show", str(tmp_path / "l1.txt"), "--encoding", "latin-1")
    assert result.returncode == 0 and "characters" in result.stdout


def test_a_folder_corpus_lists_its_documents_and_what_it_left_out(tmp_path: Path):
    """A writer's folder: the story in Markdown is read, the Word file is named with the way to include it."""
    (tmp_path / "notes.txt").write_text("Ideas for the next chapter.\n")
    (tmp_path / "story.md").write_bytes((CORPORA / "pkd" / "the-eyes-have-it.txt").read_bytes())
    (tmp_path / "novel.docx").write_bytes(document(".docx"))
    show = run_cli("corpus", "show", str(tmp_path), env={"COLUMNS": "120"})
    assert show.returncode == 0, show.stderr
    assert re.search(r"documents +2\b", show.stdout)
    assert re.search(r"notes\.txt +28 +5", show.stdout) and re.search(r"story\.md +6,460 +1,131", show.stdout)
    assert "left out novel.docx (a Word document: save it as plain text (.txt) to include it)" in show.stdout
    trained = run_cli("finetune", str(tmp_path), *TINY, "--max-steps", "1", "--ghostwriting-every", "0",
                      "--out", str(tmp_path / "model"), env={"COLUMNS": "200"})
    assert trained.returncode == 0, trained.stderr
    assert f"Left out of corpus {tmp_path.name}: novel.docx (a Word document: save it as plain text (.txt)" in trained.stderr


def test_finetune_generate_models_end_to_end(pkd_slice: Path, isolated_home: Path):
    trained = run_cli("finetune", str(pkd_slice), "--name", "slice", *TINY, "--max-steps", "60")
    assert trained.returncode == 0, trained.stderr
    assert "Stopped after 60 steps" in trained.stderr and "bits/char" in trained.stderr
    assert "step 60 | train" in trained.stderr  # plain progress lines when not a terminal
    assert "--- sample at step 50 ---" in trained.stderr

    again = run_cli("finetune", str(pkd_slice), "--name", "slice", *TINY, "--max-steps", "60")
    assert_one_line_error(again, "already exists", "--resume", "--force")

    gen = run_cli("generate", "slice", "--prompt", "The man said", "--length", "50", "--seed", "3")
    assert gen.returncode == 0 and gen.stdout.startswith("The man said") and len(gen.stdout) == len("The man said") + 51
    uncond = run_cli("generate", "slice", "-n", "2", "--length", "30", "--seed", "3")
    assert uncond.returncode == 0 and "sample 2/2" in uncond.stderr

    listing = run_cli("models", "--json")
    row = json.loads(listing.stdout.strip().splitlines()[0])
    assert row["name"] == "slice" and row["kind"] == "char" and row["steps"] == 60 and row["best_val"] < 4


def test_generate_streams_before_it_finishes(trained_model: Path):
    """The first characters arrive long before a long generation ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "generate", str(trained_model), "--length", "20000", "--seed", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    first = proc.stdout.read(20)
    still_writing = proc.poll() is None
    proc.terminate()
    proc.wait()
    assert len(first) == 20 and still_writing


def test_ctrl_c_stops_generation_cleanly(trained_model: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "generate", str(trained_model), "--length", "100000", "--seed", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_as_in_a_terminal,
    )
    proc.stdout.read(50)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"(stopped)" in stderr and b"Traceback" not in stderr


def test_models_lists_local_times_and_tells_a_killed_run_from_a_running_one(trained_model: Path, isolated_home: Path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    for name, pid in (("live", os.getpid()), ("dead", gone.pid)):
        shutil.copytree(trained_model, isolated_home / "models" / name)
        config = json.loads((isolated_home / "models" / name / "config.json").read_text())
        config["created"] = "2026-11-25T13:00:00+00:00"
        config["result"] = {"steps": 40, "stop_reason": "running", "pid": pid, "host": socket.gethostname()}
        (isolated_home / "models" / name / "config.json").write_text(json.dumps(config))
    rows = {r["name"]: r for r in map(json.loads, run_cli("models", "--json").stdout.splitlines())}
    assert rows["live"]["status"] == "running" and rows["dead"]["status"] == "killed (--resume)"
    table = run_cli("models", env={"TZ": "America/New_York", "COLUMNS": "200"}).stdout
    assert "2026-11-25 08:00" in table and "13:00" not in table  # the user's own clock, as `samples list` shows


def test_a_mistyped_model_name_never_asks_the_hub_and_suggests_the_nearest(trained_model: Path, isolated_home: Path):
    """Online, `generate pkd-chr` used to spend half a minute retrying the hub, then talk about the hub."""
    shutil.copytree(trained_model, isolated_home / "models" / "pkd-char")
    with socket.socket() as hub:  # a stand-in hub that only counts who knocks
        hub.bind(("127.0.0.1", 0))
        hub.listen()
        hub.setblocking(False)
        online = {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{hub.getsockname()[1]}"}
        result = run_cli("generate", "pkd-chr", "--length", "5", env=online)
        with pytest.raises(BlockingIOError):
            hub.accept()  # nobody came
    assert_one_line_error(result, "no model 'pkd-chr': did you mean 'pkd-char'?", "your models: pkd-char")
    assert "hub" not in result.stderr and "Hugging Face" not in result.stderr


def test_every_name_and_choice_suggests_the_nearest_by_one_rule(trained_model: Path, isolated_home: Path):
    """corpora.suggest: the closest spelling, else the one name it begins ("pkd" for "pkd-demo"); and `cells` on a
    GPT-2 base says cells are for char models before anything loads (no hub)."""
    from corpora.suggest import nearest

    assert nearest("pkd", ["pkd-demo", "austen-char"]) == "pkd-demo"
    assert nearest("pkd", ["pkd-demo", "pkd-char"]) is None  # begins two: which one is a guess
    assert nearest("sentance", ["sentence", "line", "paragraph"]) == "sentence"
    assert nearest("xy", ["xylophone"]) is None  # too short a stem to mean one
    shutil.copytree(trained_model, isolated_home / "models" / "pkd-demo")
    for args, fragments in ((["eval", "pkd"], ["no model 'pkd': did you mean 'pkd-demo'?"]),
                            (["generate", "pkd-demo", "--stop-at", "sentance", "--no-log"],
                             ["stop-at must be one of", "did you mean 'sentence'?"]),
                            (["generate", "pkd-demo@lst", "--no-log"], ["unknown checkpoint @lst: did you mean 'last'?"]),
                            (["cells", "gpt2"], ["gpt2 is a gpt2 model: cell pictures are for char models"])):
        assert_one_line_error(run_cli(*args), *fragments)


def test_a_hub_name_with_the_network_down_fails_in_seconds_and_says_what_to_do():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once this block ends
    down = {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    for args, fragments in (
        (["generate", "gpt2", "--length", "5"], ["write with a model you trained"]),
        (["finetune", "pkd", "--target-loss", "2"], ["add --model char", "--base PATH"]),
    ):
        start = time.monotonic()
        result = run_cli(*args, env=down)
        elapsed = time.monotonic() - start
        assert_one_line_error(result, "base model 'gpt2' (not in the cache, and the Hugging Face hub at "
                              f"http://127.0.0.1:{port} cannot be reached", "run this again while online", *fragments)
        assert elapsed < 20, elapsed  # the hub client's own retries sleep 23 s before it gives up
