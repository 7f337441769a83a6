"""Bad inputs across the CLI, the REPL and the Python API: each is one `error:` line, never a traceback.

Every case damages one thing in a fresh copy of the tiny model and data
directory (a file the program reads, a directory it writes, a flag, a
setting, a prompt), runs it, and checks the answer: the CLI prints one
`error:` line and exits with status 2, the REPL and the API raise a
UserError of one line; and nothing on disk changed. A few inputs are not
errors at all and are marked so: a damaged cache is built again, a prompt in
characters the model never saw is written from with a warning.

The site's table of bad inputs (docs/reliability.md) is made from CASES:
`.venv/bin/python -m tests.faults.test_bad_inputs` rewrites it, and
test_the_readme_table_is_this_list checks it.
"""

import contextlib
import hashlib
import json
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from corpora import UserError

from ..conftest import CORPORA, GPT2_TOKENIZER, ROOT

MODEL = "tiny"
PAGE = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- bad-inputs: made by tests/faults/test_bad_inputs.py -->", "<!-- /bad-inputs -->"


@dataclass
class World:
    """A data directory with one tiny model in it, and a scratch folder; all under the test's tmp_path."""

    home: Path
    scratch: Path

    @property
    def model(self) -> Path:
        return self.home / "models" / MODEL

    def weights(self) -> list[Path]:
        return [p for p in self.model.rglob("model.safetensors")]

    def config(self, **changes: Any) -> None:
        data = json.loads((self.model / "config.json").read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        (self.model / "config.json").write_text(json.dumps(data))


@dataclass(frozen=True)
class Case:
    front: str  # CLI, REPL or API
    what: str  # the bad input, as the site's table says it
    run: Callable[[World], Any]  # CLI: the arguments; REPL: the line typed; API: a function to call
    answer: str  # a fragment of the error line (or, when it recovers, of the warning; "" for none)
    setup: Callable[[World], None] = lambda w: None
    recovers: bool = False  # not an error: the program goes on (a cache made again, a prompt written from)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _pickle(path: Path) -> None:
    path.unlink()
    torch.save({"lstm.weight": torch.zeros(2)}, path)  # what a user might find: a PyTorch pickle under our name


def _each_weights(w: World, damage: Callable[[Path], None]) -> None:
    for path in w.weights():
        damage(path)


def _checkpoint(w: World) -> Path:
    return w.model / "last" / "checkpoint.safetensors"


def _store(w: World, data: bytes) -> None:
    _write(w.home / "samples.db", data)


def _sqlite_header_damaged(w: World) -> None:
    from assistant.samples.store import Store

    with Store(w.home / "samples.db") as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray((w.home / "samples.db").read_bytes())
    data[:100] = b"\xff" * 100
    (w.home / "samples.db").write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        (w.home / f"samples.db{suffix}").unlink(missing_ok=True)


def _other_shapes(path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"lstm.weight_ih_l0": torch.zeros(3, 3)}, str(path))


def _home_is_a_file(w: World) -> None:
    shutil.rmtree(w.home)
    w.home.write_text("not a directory")


def _finetune(*extra: str, corpus: Path = CORPORA / "pkd" / "the-eyes-have-it.txt") -> list[str]:
    return ["finetune", str(corpus), "--model", "char", "--size", "tiny", "--max-steps", "1", *extra]


def _resume(w: World) -> list[str]:
    """`finetune --resume` of the tiny model, on the corpus it was trained on."""
    from contract import modeldir

    card = modeldir.read(w.model)
    assert card.corpus is not None
    return _finetune("--name", MODEL, "--resume", corpus=Path(card.corpus.source))


def _generate(*extra: str) -> list[str]:
    return ["generate", MODEL, "-p", "The door", "-l", "10", "--seed", "1", "--no-log", *extra]


def _api_load(w: World) -> None:
    from assistant import load_model

    load_model(w.model)


def _api_finetune(corpus: str, **config: Any) -> Callable[[World], None]:
    def run(w: World) -> None:
        from finetune.config import FinetuneConfig
        from finetune.progress import Reporter
        from finetune.run import finetune
        from kinds.charlstm.options import CharOptions

        finetune(FinetuneConfig(corpus=corpus, model="char", options=CharOptions(size="tiny"), **{"max_steps": 1, **config}),
                 Reporter())

    return run


def _api_store(w: World) -> None:
    from assistant.samples.store import Store

    Store(w.home)  # a directory where the database should be


def _token_cache(w: World) -> None:
    from corpora import load_corpus
    from kinds.gpt2.base import load_tokenizer
    from kinds.gpt2.data import tokenize

    corpus = load_corpus(str(CORPORA / "pkd" / "the-eyes-have-it.txt"))
    tokenizer = load_tokenizer(str(GPT2_TOKENIZER))
    fresh = tokenize(corpus, tokenizer)
    for cache in (w.home / "corpora" / "tokens").glob("*.npz"):
        cache.write_bytes(b"PK\x03\x04 not really a zip")
    again = tokenize(corpus, tokenizer)
    assert (again.ids == fresh.ids).all() and (again.starts == fresh.starts).all()


def _index_cache(w: World) -> None:
    from contract import modeldir
    from corpora.index import CorpusIndex, cached_index, index_folder

    card = modeldir.read(w.model)
    assert card.corpus is not None
    first = card.corpus_index()
    assert first is not None
    folder = index_folder(card.corpus.checksum)
    (folder / "sa.npy").write_bytes(b"\x93NUMPY garbage")
    assert CorpusIndex.load(folder) is None
    cached_index.cache_clear()
    again = card.corpus_index()
    assert again is not None and again.longest_span(first.text[:80]) is not None


def _repl_history(w: World) -> None:
    from prompt_toolkit.history import FileHistory

    from assistant.repl import HISTORY

    _write(w.home / HISTORY, b"\xff\xfe\x00garbage\n+\x80\x81\n")
    list(FileHistory(str(w.home / HISTORY)).load_history_strings())


CASES: list[Case] = [
    # ---- damaged or foreign files where the program reads one -------------------------------------------------------
    Case("CLI", "weights file truncated", lambda w: _generate(), "weights cannot be loaded",
         lambda w: _each_weights(w, _truncate)),
    Case("CLI", "weights file a PyTorch pickle, not safetensors", lambda w: _generate(), "weights cannot be loaded",
         lambda w: _each_weights(w, _pickle)),
    Case("CLI", "weights file empty", lambda w: _generate(), "weights cannot be loaded",
         lambda w: _each_weights(w, lambda p: p.write_bytes(b""))),
    Case("CLI", "weights file a folder", lambda w: _generate(), "weights cannot be loaded",
         lambda w: _each_weights(w, lambda p: (p.unlink(), p.mkdir()))),
    Case("CLI", "weights of another model's shapes", lambda w: _generate(), "weights cannot be loaded",
         lambda w: _each_weights(w, _other_shapes)),
    Case("API", "load_model on truncated weights", _api_load, "weights cannot be loaded",
         lambda w: _each_weights(w, _truncate)),
    Case("CLI", "config.json not JSON", lambda w: _generate(), "config.json is damaged",
         lambda w: (w.model / "config.json").write_text("{ not json")),
    Case("CLI", "config.json empty", lambda w: _generate(), "damaged",
         lambda w: (w.model / "config.json").write_text("")),
    Case("CLI", "config.json not UTF-8", lambda w: _generate(), "damaged",
         lambda w: (w.model / "config.json").write_bytes(b"\xff\xfe{\x00}")),
    Case("CLI", "config.json a JSON list", lambda w: _generate(), "no model",
         lambda w: (w.model / "config.json").write_text("[1, 2]")),
    Case("CLI", "config.json of an unknown model kind", lambda w: _generate(), "quantum",
         lambda w: w.config(kind="quantum")),
    Case("CLI", "config.json whose result is not an object", lambda w: _generate(), "should be JSON objects",
         lambda w: w.config(result="done")),
    Case("CLI", "config.json without the vocabulary", lambda w: _generate(), "weights cannot be loaded",
         lambda w: w.config(vocab=None)),
    Case("CLI", "config.json with an architecture of wrong types", lambda w: _generate(), "weights cannot be loaded",
         lambda w: w.config(architecture={"hidden": "big"})),
    Case("CLI", "config.json's corpus record foreign", lambda w: _generate(), "config.json is damaged",
         lambda w: w.config(corpus={"title": "x"})),
    Case("CLI", "resume from a truncated checkpoint", _resume,
         "checkpoint", lambda w: _truncate(_checkpoint(w))),
    Case("CLI", "resume from a checkpoint that is a pickle", _resume,
         "checkpoint", lambda w: _pickle(_checkpoint(w))),
    Case("CLI", "history.jsonl damaged", lambda w: ["report", MODEL], "history.jsonl is damaged",
         lambda w: (w.model / "history.jsonl").write_text('{"step": 0}\n{"step": 1, "val_lo\n')),
    Case("CLI", "sample database random bytes", lambda w: ["samples", "list"], "is damaged",
         lambda w: _store(w, bytes(range(256)) * 16)),
    Case("CLI", "sample database with a damaged header", lambda w: ["samples", "show", "1"], "samples fresh",
         _sqlite_header_damaged),
    Case("CLI", "sample database a folder", lambda w: ["samples", "list"], "cannot open the sample store",
         lambda w: (w.home / "samples.db").mkdir()),
    Case("CLI", "prompt file not UTF-8", lambda w: ["generate", MODEL, "--prompt-file", str(w.scratch / "p.txt")],
         "cannot read prompt file", lambda w: _write(w.scratch / "p.txt", b"\xff\xfe\xfa")),
    Case("CLI", "prompt file missing", lambda w: ["generate", MODEL, "--prompt-file", str(w.scratch / "none.txt")],
         "cannot read prompt file"),
    Case("CLI", "corpus file not text", lambda w: _finetune(corpus=w.scratch / "book.txt"), "",
         lambda w: _write(w.scratch / "book.txt", bytes(range(256)) * 64)),
    Case("API", "token cache damaged: made again", _token_cache, "", recovers=True),
    Case("API", "corpus index cache damaged: made again", _index_cache, "", recovers=True),
    Case("REPL", "REPL history file not UTF-8: read past", _repl_history, "", recovers=True),
    # ---- directories that cannot be used ----------------------------------------------------------------------------
    Case("CLI", "ASSISTANT_HOME a file (models)", lambda w: ["models"], "is a file, not a directory", _home_is_a_file),
    Case("CLI", "ASSISTANT_HOME a file (finetune)", lambda w: _finetune(), "is a file, not a directory", _home_is_a_file),
    Case("CLI", "ASSISTANT_HOME a file (samples)", lambda w: ["samples", "list"], "is a file, not a directory",
         _home_is_a_file),
    Case("CLI", "--out a file", lambda w: _finetune("--out", str(w.scratch / "f")), "is a file",
         lambda w: _write(w.scratch / "f", b"x")),
    Case("CLI", "--out inside a file", lambda w: _finetune("--out", str(w.scratch / "f" / "m")), "cannot create",
         lambda w: _write(w.scratch / "f", b"x")),
    Case("CLI", "models folder a file", lambda w: _finetune("--name", "new"), "cannot create",
         lambda w: (shutil.rmtree(w.home / "models"), _write(w.home / "models", b"x"))),
    Case("CLI", "cells --out in a missing folder", lambda w: ["cells", MODEL, "--text", "The door", "--out",
                                                               str(w.scratch / "no" / "c.html")], "cannot write"),
    Case("API", "Store at a folder", _api_store, "cannot open the sample store"),
    # ---- flags and settings -----------------------------------------------------------------------------------------
    Case("CLI", "unknown flag", lambda w: _generate("--bogus"), "No such option"),
    Case("CLI", "a count that is not a number", lambda w: _generate("-n", "x"), "Invalid value"),
    Case("CLI", "a missing argument", lambda w: ["generate"], "Missing argument"),
    Case("CLI", "-n 0", lambda w: _generate("-n", "0"), "-n must be at least 1"),
    Case("CLI", "--micro-batch neither a number nor auto", lambda w: _finetune("--micro-batch", "lots"),
         "--micro-batch takes a number of blocks or auto"),
    Case("CLI", "negative temperature", lambda w: _generate("-t", "-1"), "temperature"),
    Case("CLI", "--top-p above 1", lambda w: _generate("--top-p", "2"), "top"),
    Case("CLI", "--top-k 0", lambda w: _generate("--top-k", "0"), "top"),
    Case("CLI", "negative --seed", lambda w: _generate("--seed", "-5"), "Invalid value"),
    Case("CLI", "--stop-at a word it does not know", lambda w: _generate("--stop-at", "chapter"), "stop"),
    Case("CLI", "--max-time unreadable", lambda w: _finetune("--max-time", "soon"), "as a duration"),
    Case("CLI", "unknown --model kind", lambda w: _finetune("--model", "quantum"), "quantum"),
    Case("CLI", "unknown --size", lambda w: _finetune("--size", "huge"), "huge"),
    Case("CLI", "unknown --device", lambda w: _finetune("--device", "tpu"), "tpu"),
    Case("CLI", "--prompt and --prompt-file both", lambda w: _generate("--prompt-file", "x"), "not both"),
    Case("CLI", "unreadable --since", lambda w: ["samples", "list", "--since", "a while ago"], "--since"),
    Case("CLI", "a model that does not exist", lambda w: ["generate", "tinny", "-p", "x"], "did you mean 'tiny'"),
    Case("CLI", "an unknown @checkpoint", lambda w: ["generate", f"{MODEL}@newest", "-p", "x"], "checkpoint"),
    Case("CLI", "--name escaping the data directory", lambda w: _finetune("--name", "../../etc"), "plain name"),
    Case("CLI", "models rm escaping the data directory", lambda w: ["models", "rm", "../../etc"], "no model"),
    Case("CLI", "models rename to a path", lambda w: ["models", "rename", MODEL, "../../etc"], "../../etc"),
    Case("CLI", "corpus that does not exist", lambda w: ["corpus", "show", "no-such-corpus"], "no-such-corpus"),
    Case("CLI", "--resume with nothing to resume", _resume, "checkpoint",
         lambda w: shutil.rmtree(w.model / "last")),
    Case("CLI", "an existing model without --resume or --force", lambda w: _finetune("--name", MODEL), "already exists"),
    Case("API", "finetune on a corpus that does not exist", _api_finetune("no-such-corpus"), "no-such-corpus"),
    Case("API", "finetune with a negative step bound", _api_finetune("pkd", max_steps=-1), "max"),
    Case("REPL", "/temperature x", lambda w: "/temperature x", "temperature"),
    Case("REPL", "/length -3", lambda w: "/length -3", "length"),
    Case("REPL", "/top-p 5", lambda w: "/top-p 5", "top"),
    Case("REPL", "/seed abc", lambda w: "/seed abc", "seed"),
    Case("REPL", "/stop-at chapter", lambda w: "/stop-at chapter", "stop"),
    Case("REPL", "/model that does not exist", lambda w: "/model tinny", "did you mean"),
    Case("REPL", "an unknown command", lambda w: "/temprature 1", "did you mean /temperature"),
    Case("REPL", "/tag before any sample", lambda w: "/tag good", "sample"),
    Case("REPL", "/compare without a model", lambda w: "/compare", "name a model"),
    # ---- prompts --------------------------------------------------------------------------------------------------
    Case("CLI", "prompt in characters the model never saw: written with a warning",
         lambda w: ["generate", MODEL, "-p", "日本語の🚀 The door", "-l", "10", "--seed", "1", "--no-log"], "",
         recovers=True),
    Case("CLI", "prompt only of characters the model never saw: written with a warning",
         lambda w: ["generate", MODEL, "-p", "🚀🚀🚀", "-l", "10", "--seed", "1", "--no-log"], "", recovers=True),
]


# Commands that use the sample store open it before they read their arguments, which creates it, empty, where there
# was none: the one change a refused input may make (an existing store is never written).
NEW_EMPTY_STORE = {"home/samples.db", "home/samples.db-wal", "home/samples.db-shm"}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root, with a digest of each file: what 'nothing changed on disk' compares."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            found[str(path.relative_to(root))] = "dir" if path.is_dir() else "other"
        else:
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _cli(args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """The real `assistant` command's main(), in this process (no start-up per case): exit status, stdout, stderr."""
    from assistant.cli import main

    monkeypatch.setattr(sys, "argv", ["assistant", *args])
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() sets its own: undone after the case
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _answer(case: Case, w: World, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """(exit status, what the user is told): the CLI's own; a REPL line or an API call's UserError as the CLI says it."""
    if case.front == "CLI":
        code, _, err = _cli(case.run(w), capsys, monkeypatch)
        return code, err
    try:
        if case.front == "REPL" and not case.recovers:
            from assistant.repl import Repl

            Repl(MODEL, 50).handle(case.run(w))
        else:
            case.run(w)
    except UserError as e:
        return 2, f"error: {e}\n"
    return 0, ""


@pytest.fixture
def world(trained_model: Path, isolated_home: Path, tmp_path: Path) -> World:
    w = World(isolated_home, tmp_path / "scratch")
    w.scratch.mkdir()
    shutil.copytree(trained_model, w.model)
    return w


def test_there_are_at_least_forty_cases():
    assert sum(not c.recovers for c in CASES) >= 40
    assert len({(c.front, c.what) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.front}: {c.what}" for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path, capsys: pytest.CaptureFixture,
                   monkeypatch: pytest.MonkeyPatch):
    case.setup(world)
    before = _snapshot(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, told = _answer(case, world, capsys, monkeypatch)
    assert "Traceback" not in told, told
    if case.recovers:
        assert code == 0, told
        return
    lines = told.strip().splitlines()  # progress lines may come first (training's), the error ends it
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and errors == lines[-1:], told
    assert case.answer in errors[0], errors[0]
    after = _snapshot(tmp_path)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    changed -= {k for k in NEW_EMPTY_STORE if k not in before}
    assert not changed, f"a refused input changed files on disk: {sorted(changed)}"


def table() -> str:
    """The site's table of bad inputs, made from CASES."""
    rows = ["| # | where | bad input | answer |", "|---|---|---|---|"]
    for i, case in enumerate(CASES, 1):
        answer = "goes on" if case.recovers else ("`error:` line, exit status 2" if case.front == "CLI"
                                                  else "`error:` line (UserError)")
        what = case.what.replace("|", "\\|")
        rows.append(f"| {i} | {case.front} | {what} | {answer} |")
    return "\n".join([BEGIN, *rows, END])


def test_the_sites_table_is_this_list():
    text = PAGE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{PAGE.name} has no bad-inputs table: run python -m tests.faults.test_bad_inputs"
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == table(), f"{PAGE.name}'s bad-inputs table is stale: run python -m tests.faults.test_bad_inputs"


if __name__ == "__main__":  # rewrite the site's table from CASES
    text = PAGE.read_text(encoding="utf-8")
    with contextlib.suppress(ValueError):
        text = text[: text.index(BEGIN)] + table() + text[text.index(END) + len(END):]
        PAGE.write_text(text, encoding="utf-8")
        print(f"{PAGE}: table of {len(CASES)} bad inputs rewritten")
