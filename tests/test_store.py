"""The sample store: schema migrations, concurrent writers, search, tags, export, and recording through the API."""

import json
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from assistant import load_model
from assistant.samples.migrations import MIGRATIONS, migrate
from assistant.samples.recording import StoreWarning, record, written
from assistant.samples.store import GHOSTWRITTEN, Store, parse_since
from assistant.samples.views import jsonl, markdown, plain_text
from contract.sampling import SAMPLING_FIELDS
from corpora import UserError

from .conftest import ROOT, run_cli


def row(text: str, prompt: str = "The robot said", **extra) -> dict:
    return {"created": "2026-11-24T12:00:00.000+00:00", "model": "m", "model_path": "/models/m", "model_kind": "char-lstm",
            "corpus": "pkd", "mode": "prompted" if prompt else "unconditional", "source": "api", "prompt": prompt,
            "text": text, "params": {"temperature": 0.8}, "chars": len(text), "duration_s": 0.5, "cancelled": False,
            **extra}


def test_migrations_from_empty_give_the_whole_schema(isolated_home: Path):
    with Store() as store:
        assert store.db.journal_mode == "wal"
        applied = [r["name"] for r in store.db["_migrations"].rows]
        assert applied == [m.__name__ for m in MIGRATIONS]
        assert {"samples", "tags", "sample_tags", "samples_fts"} <= set(store.db.table_names())
        assert "copied_chars" in store.db["samples"].columns_dict
    with Store() as again:  # opening an up-to-date database changes nothing
        assert again.db["_migrations"].count == len(MIGRATIONS)


def test_migrations_upgrade_a_database_made_with_the_first_schema(tmp_path: Path):
    path = tmp_path / "old.db"
    old = Database(path)
    migrate(old, upto=1)
    old["samples"].insert({k: v for k, v in row("an old sample").items() if k != "params"} | {"params": "{}"})
    old.close()
    with Store(path) as store:
        [sample] = store.find()
        assert sample.text == "an old sample" and sample.copied_chars is None and sample.tags == []
        assert [s.id for s in store.find(search="old")] == [sample.id]  # the search index covers rows older than it
        store.tag(sample.id, [GHOSTWRITTEN])
        assert store.get(sample.id).tags == [GHOSTWRITTEN]


WRITER = """
import sys
from assistant.samples.store import Store
from tests.test_store import row
with Store() as store:
    for i in range(40):
        store.add(row(f"writer {sys.argv[1]} sample {i}"))
"""


def test_several_processes_writing_at_once_lose_nothing(isolated_home: Path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], cwd=ROOT) for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    with Store() as store:
        texts = {s.text for s in store.find()}
    assert texts == {f"writer {w} sample {i}" for w in range(4) for i in range(40)}


def test_full_text_search_finds_words_in_prompt_and_text():
    with Store() as store:
        a = store.add(row(" the android dreamed of sheep"))
        b = store.add(row(" nothing here", prompt="An electric"))
        store.add(row(" plain words"))
        assert [s.id for s in store.find(search="android")] == [a]
        assert [s.id for s in store.find(search="electric")] == [b]
        assert [s.id for s in store.find(search="robot")] == [3, a]  # newest first
        assert [s.id for s in store.find(search='sheep" dreamed (')] == [a]  # FTS syntax is taken as words, all required
        assert store.find(search="unicorn") == []


def test_tags_filters_and_export_round_trip():
    with Store() as store:
        first = store.add(row(" first text", copied_chars=3))
        second = store.add(row(" second text", prompt="", model="other"))
        store.tag(first, [GHOSTWRITTEN, "draft"])
        store.tag(second, ["draft"])
        store.untag(first, ["draft"])
        assert store.get(first).tags == [GHOSTWRITTEN]
        assert [s.id for s in store.find(tag="draft")] == [second]
        assert [s.id for s in store.find(model="other")] == [second]
        assert store.tag_names() == ["draft", GHOSTWRITTEN]
        exported = store.find(oldest_first=True)
    restored = [json.loads(line) for line in jsonl(exported).splitlines()]
    assert [(r["id"], r["text"], r["tags"], r["params"]) for r in restored] == [
        (first, " first text", [GHOSTWRITTEN], {"temperature": 0.8}), (second, " second text", ["draft"], {"temperature": 0.8})]
    md = markdown(exported)
    assert "Written by m (char-lstm, trained on pkd)" in md and "from the prompt \u201cThe robot said\u201d" in md
    assert "The robot said first text" in md and "unprompted" in md


def test_listings_show_text_and_tags_as_written_never_as_markup():
    from io import StringIO

    from rich.console import Console

    from assistant.samples.views import describe, sample_table

    with Store() as store:
        sample_id = store.add(row(" and [red]he[/red] left [/i]", prompt="[/q] quoted", params={"stop": ["[/q]"]}))
        store.tag(sample_id, ["[/draft]"])
        sample = store.get(sample_id)
    out = StringIO()
    console = Console(file=out, width=200)
    console.print(sample_table([sample], 50, console))
    console.print(describe(sample, 50))
    assert "[red]he[/red]" in out.getvalue() and "[/draft]" in out.getvalue() and "[/q]" in out.getvalue()


def test_bad_ids_tags_and_dates_are_user_errors():
    with Store() as store:
        with pytest.raises(UserError, match="no sample 7"):
            store.get(7)
        sample = store.add(row("x"))
        with pytest.raises(UserError, match="no sample 8"):
            store.delete([sample, 8])
        assert store.find(ids=[sample])  # all or nothing
        assert store.delete([sample, sample]) == 1 and not store.find(ids=[sample])
        sample = store.add(row("x"))
        with pytest.raises(UserError, match="at least one tag"):
            store.tag(sample, [" "])
    with pytest.raises(UserError, match="cannot read --since 'yesterday'"):
        parse_since("yesterday")
    assert parse_since("12h") < parse_since("1m")


def test_since_reads_dates_and_times_on_the_clock_the_listings_show(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_since("2026-11-24") == "2026-11-24T05:00:00.000+00:00"
        assert parse_since("2026-11-24 07:57") == "2026-11-24T12:57:00.000+00:00"
        assert parse_since("2026-11-24T07:57+00:00") == "2026-11-24T07:57:00.000+00:00"  # a zone given is kept
        today = datetime.now().strftime("%Y-%m-%d")
        assert parse_since("9:30") == parse_since(f"{today} 09:30")
        assert parse_since("9:30:15") == parse_since(f"{today} 09:30:15")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_recorded_generation_keeps_its_parameters(trained_model: Path):
    model = load_model(trained_model)
    result, sample_id = written(model, "The man", "api", max_new_chars=40, temperature=0.7, top_k=20, seed=5)
    model.generate("", max_new_chars=30, seed=6)  # the API itself stores nothing
    with Store() as store:
        [sample] = store.find()
    assert sample.id == sample_id and sample.text == result.text and sample.prompt == "The man"
    assert (sample.model, sample.model_kind, sample.model_path) == ("tiny-pkd", "char", str(trained_model))
    assert sample.mode == "prompted" and sample.source == "api" and sample.chars == 40 and not sample.cancelled
    given = {"max_new_chars": 40, "max_new_tokens": None, "temperature": 0.7, "top_k": 20, "top_p": None, "seed": 5,
             "stop": [], "stop_at": None}
    assert {k: sample.params[k] for k in given} == given
    assert set(SAMPLING_FIELDS) <= set(sample.params)  # every setting of the chain, so it can be written again
    assert sample.corpus == "pkd-slice0" and sample.copied_chars is not None and sample.copied_document


def test_a_stream_stopped_early_is_kept_as_cancelled(trained_model: Path):
    model = load_model(trained_model)
    stream = model.stream("He", max_new_chars=5000, seed=1)
    shown = next(stream) + next(stream)
    stream.close()
    assert stream.result is not None and stream.result.cancelled and stream.result.text == shown
    record(stream.result, "repl")
    with Store() as store:
        [sample] = store.find()
    assert sample.cancelled and sample.text == shown and sample.source == "repl"


def test_a_broken_store_never_costs_the_text(trained_model: Path, isolated_home: Path):
    (isolated_home / "samples.db").mkdir(parents=True)  # a database that cannot be opened
    model = load_model(trained_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, sample_id = written(model, "He", "api", max_new_chars=30, seed=1)
    assert len(result.text) == 30 and sample_id is None
    assert [w.category for w in caught] == [StoreWarning]


def test_samples_commands(trained_model: Path, isolated_home: Path):
    assert run_cli("generate", str(trained_model), "-p", "The robot", "-l", "40", "-n", "2", "--seed", "1").returncode == 0
    listed = [json.loads(line) for line in run_cli("samples", "list", "--json").stdout.splitlines()]
    assert [(s["id"], s["source"], s["prompt"]) for s in listed] == [(2, "cli", "The robot"), (1, "cli", "The robot")]
    assert run_cli("samples", "tag", "1", "keeper").stdout.strip() == "#1: keeper"
    ghost = run_cli("samples", "ghostwrite", "2")
    assert ghost.returncode == 0 and ghost.stdout == "The robot" + listed[0]["text"] + "\n"
    shown = run_cli("samples", "show", "2")
    assert "ghostwritten" in shown.stdout and "tiny-pkd" in shown.stdout and listed[0]["text"].strip()[:10] in shown.stdout
    exported = run_cli("samples", "export", "--tag", GHOSTWRITTEN)
    assert exported.stdout.startswith("## Sample 2\n") and "Sample 1" not in exported.stdout
    assert run_cli("samples", "rm", "1").returncode == 0
    assert [json.loads(line)["id"] for line in run_cli("samples", "list", "--json").stdout.splitlines()] == [2]
    # anyone's tools read it: the sqlite-utils command line
    tables = subprocess.run([Path(sys.executable).parent / "sqlite-utils", "tables", str(isolated_home / "samples.db"),
                             "--counts"], capture_output=True, text=True, check=True)
    assert '"table": "samples", "count": 1' in tables.stdout
    for args, fragment in ((["samples", "show", "9"], "no sample 9"), (["samples", "list", "--since", "soon"], "--since"),
                           (["samples", "export", "--format", "pdf"], "unknown --format 'pdf'")):
        result = run_cli(*args)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and fragment in result.stderr


def test_a_sample_names_the_checkpoint_and_step_that_wrote_it(trained_model: Path, isolated_home: Path):
    """`generate NAME@last --seed 1` is stored as NAME@last with its step, so it can be written again, and its copy
    flag is not read as the default model's; the listing at 80 columns shows that and the continuation's start."""
    result = json.loads((trained_model / "config.json").read_text())["result"]
    for model in (f"{trained_model}@last", str(trained_model), f"{trained_model}@last"):
        assert run_cli("generate", model, "-p", "Elizabeth could not", "-l", "30", "--seed", "1").returncode == 0
    with Store() as store:
        again, default, last = store.find()
        assert [s.id for s in store.find(model="tiny-pkd@last")] == [again.id, last.id]
        assert len(store.find(model="tiny-pkd")) == 3
    assert (last.label, last.checkpoint_step) == ("tiny-pkd@last", result["steps"])
    assert (default.label, default.checkpoint_step) == ("tiny-pkd@ghostwriting", result["ghostwriting_step"])
    assert again.text == last.text  # the same checkpoint and seed write it again
    listed = run_cli("samples", "list", env={"COLUMNS": "80"}).stdout
    assert listed.count("tiny-pkd@last") == 2 and "tiny-pkd@ghostwriting" in listed
    assert "Elizabeth" not in listed and " ".join(last.text.split())[:12] in listed
    assert max(map(len, listed.splitlines())) <= 80
    shown = run_cli("samples", "show", str(last.id), env={"COLUMNS": "200"}).stdout
    assert f"tiny-pkd@last, step {result['steps']} (char)" in shown


def test_plain_text_export_is_the_texts_exactly_with_a_scene_break_between():
    with Store() as store:
        first = store.add(row(" first text.\n\nIts second paragraph.", prompt="It began"))
        second = store.add(row(" the other one ends its line.\n", prompt=""))
        assert plain_text(store.find(ids=[first, second], oldest_first=True)) == (
            "It began first text.\n\nIts second paragraph.\n\n* * *\n\n the other one ends its line.\n")
        assert store.untag(first, ["draft"]) == []  # it had no such tag: nothing removed, and the caller can say so
        store.tag(first, ["draft"])
        assert store.untag(first, ["draft", "nosuchtag"]) == ["draft"]


def test_commands_that_match_nothing_say_so(isolated_home: Path, tmp_path: Path):
    with Store() as store:
        sample_id = store.add(row(" a text."))
        store.tag(sample_id, [GHOSTWRITTEN])
    exported = run_cli("samples", "export", "--tag", GHOSTWRITTEN, "--format", "txt")
    assert exported.returncode == 0 and exported.stdout == "The robot said a text.\n"
    nothing = run_cli("samples", "export", "--tag", "ghostwriten", "--out", str(tmp_path / "out.md"))
    assert nothing.returncode == 1 and nothing.stdout == "" and not (tmp_path / "out.md").exists()
    assert nothing.stderr.strip() == ("nothing exported: no samples match --tag ghostwriten; no sample has the tag "
                                      "'ghostwriten' (did you mean 'ghostwritten'?); the tags there are: ghostwritten")
    assert run_cli("samples", "export", "--model", "pkd-char", "--format", "txt").returncode == 1
    listed = run_cli("samples", "list", "--tag", "nothing", "--model", "m")
    assert listed.stderr.strip() == ("no samples match --tag nothing --model m; no sample has the tag 'nothing'; "
                                     "the tags there are: ghostwritten")
    untagged = run_cli("samples", "untag", str(sample_id), "nosuchtag")
    assert untagged.returncode == 0 and untagged.stdout.strip() == f"#{sample_id}: {GHOSTWRITTEN}"
    assert untagged.stderr.strip() == f"#{sample_id} had no tag 'nosuchtag': nothing to remove"
