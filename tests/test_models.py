"""`assistant models`, `models rm` and `models rename` as a writer uses them, on copies of the tiny trained model."""

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch

from assistant import load_model
from assistant.samples.recording import written
from assistant.samples.store import Store
from corpora import UserError

from .conftest import run_cli
from .test_cli import assert_one_line_error

LONG = "pkd-char-chapter-three-second-draft"  # 35 characters: more than an 80-column table left it


def _install(trained_model: Path, home: Path, name: str) -> Path:
    """The tiny model as if trained under this name (its config.json names it, as finetune writes it)."""
    path = home / "models" / name
    shutil.copytree(trained_model, path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "name": name}))
    return path


def _sample(name: str) -> int:
    """One short sample by the model of this name, stored as every front end stores one."""
    _, sample_id = written(load_model(name, "cpu"), "The door", "api", max_new_chars=12, seed=1)
    assert sample_id is not None
    return sample_id


@pytest.mark.parametrize("columns", [80, 40])
def test_the_listing_never_cuts_a_name(trained_model: Path, isolated_home: Path, columns: int):
    for name in (LONG, "pkd-char"):
        _install(trained_model, isolated_home, name)
    result = run_cli("models", env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(LONG in line for line in lines) and "…" not in result.stdout
    assert max(map(len, lines)) <= columns
    if columns == 80:  # the name, then as many columns as fit; the rest are named as left out
        assert "kind" in result.stdout and "corpus" in result.stdout
        assert "created left out: the terminal is too narrow" in result.stderr


@pytest.mark.parametrize("columns", [80, 76, 60])
def test_the_listing_cuts_no_value_at_80_columns_or_fewer(trained_model: Path, isolated_home: Path, columns: int):
    """Each column gets its longest word at least (the date and time may wrap between them, never inside one), and a
    column that does not fit so is left out whole: no "2026-12-1", no "step"."""
    from assistant.samples.views import local_time

    for name in ("pkd", "pkd-noir"):
        _install(trained_model, isolated_home, name)
    result = run_cli("models", env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    card = json.loads((trained_model / "config.json").read_text())
    header = result.stdout.splitlines()[1].split()
    words = result.stdout.split()
    assert "steps" in header  # at 60 columns too
    assert words.count(str(card["result"]["steps"])) == 2
    if "created" in header:
        date, clock = local_time(card["created"]).split()
        assert words.count(date) == words.count(clock) == 2
    else:
        assert "created left out" in result.stderr
    assert set(header) <= {"name", "kind", "corpus", "status", "best", "val", "steps", "size", "created"}
    assert max(map(len, result.stdout.splitlines())) <= columns


def test_rename_takes_the_samples_along(trained_model: Path, isolated_home: Path):
    old = _install(trained_model, isolated_home, "pkd-char")
    first = _sample("pkd-char")
    renamed = run_cli("models", "rename", "pkd-char", "pkd-noir")
    assert renamed.returncode == 0, renamed.stderr
    assert "renamed model pkd-char to pkd-noir; its 1 sample(s) now list under pkd-noir" in renamed.stderr
    new = isolated_home / "models" / "pkd-noir"
    assert not old.exists() and json.loads((new / "config.json").read_text())["name"] == "pkd-noir"

    listed = run_cli("samples", "list", "--model", "pkd-noir", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == first and row["model"] == "pkd-noir" and row["model_path"] == str(new.resolve())
    assert run_cli("samples", "list", "--model", "pkd-char").stderr.startswith("no samples match --model pkd-char")
    shown = run_cli("samples", "show", str(first), env={"COLUMNS": "200"})
    assert "pkd-noir@ghostwriting, step " in shown.stdout and f"(char) {new.resolve()}" in shown.stdout
    checked = run_cli("samples", "check", str(first))  # reads the corpus through the model's new directory
    assert checked.returncode == 0, checked.stderr

    second = _sample("pkd-noir")  # written under the new name, listed with the first
    with Store() as store:
        assert [s.id for s in store.find(model="pkd-noir")] == [second, first]


def test_rename_refuses_a_taken_or_bad_name_and_a_model_in_training(trained_model: Path, isolated_home: Path):
    _install(trained_model, isolated_home, "pkd-char")
    _install(trained_model, isolated_home, "other")
    assert_one_line_error(run_cli("models", "rename", "pkd-char", "other"), "there is already a model 'other'")
    assert_one_line_error(run_cli("models", "rename", "pkd-char", "../up"), "'../up' must be a plain name")
    assert_one_line_error(run_cli("models", "rename", "pkd-chr", "x"), "no model 'pkd-chr': did you mean 'pkd-char'?")
    config = isolated_home / "models" / "pkd-char" / "config.json"
    card = json.loads(config.read_text())
    card["result"] = {"stop_reason": "running", "pid": os.getpid(), "host": socket.gethostname()}
    config.write_text(json.dumps(card))
    assert_one_line_error(run_cli("models", "rm", "pkd-char", "--yes"), f"pkd-char is training now (process {os.getpid()})")
    assert_one_line_error(run_cli("models", "rename", "pkd-char", "x"), "pkd-char is training now")
    assert (isolated_home / "models" / "pkd-char").is_dir() and not (isolated_home / "models" / "x").exists()


def test_rm_asks_first_and_keeps_the_samples(trained_model: Path, isolated_home: Path):
    path = _install(trained_model, isolated_home, "pkd-char")
    sample_id = _sample("pkd-char")
    for answer in ("n\n", ""):  # no, and no answer at all (Ctrl-D, no terminal), both keep it
        kept = run_cli("models", "rm", "pkd-char", input=answer)
        assert kept.returncode == 1 and path.is_dir()
        assert "Its 1 sample(s) stay in the sample store" in kept.stderr and "kept pkd-char" in kept.stderr
    asked = run_cli("models", "rm", "pkd-char", input="y\n")
    assert asked.returncode == 0 and not path.exists()
    assert "deleted model pkd-char; its 1 sample(s) stay in the sample store" in asked.stderr

    [row] = [json.loads(line) for line in run_cli("samples", "list", "--model", "pkd-char", "--json").stdout.splitlines()]
    assert row["id"] == sample_id and row["model_path"] is None and row["text"]
    assert "(the model has since been removed)" in run_cli("samples", "show", str(sample_id), env={"COLUMNS": "200"}).stdout
    assert_one_line_error(run_cli("samples", "check", str(sample_id)), "its model pkd-char has been removed")

    _install(trained_model, isolated_home, "pkd-char")  # a new model of the same name does not inherit them
    assert run_cli("models", "rm", "pkd-char", "--yes").stderr.startswith("deleted model pkd-char; it wrote no samples")


def test_a_model_copied_by_hand_goes_by_its_folders_name(isolated_home: Path):
    """The name `models` lists is the one generation writes under, even for a folder copied without `rename`."""
    release = Path(__file__).parent / "fixtures" / "release-0.1" / "models" / "release-char"
    shutil.copytree(release, isolated_home / "models" / "by-hand")
    assert load_model("by-hand", "cpu").name == "by-hand"
    assert json.loads(run_cli("models", "--json").stdout)["name"] == "by-hand"


def test_a_damaged_model_is_listed_with_how_to_remove_it(trained_model: Path, isolated_home: Path):
    """Its name is taken and its weights use the disk: the listing says so rather than leaving it out."""
    _install(trained_model, isolated_home, "pkd-char")
    (_install(trained_model, isolated_home, "broken") / "config.json").write_text("{not json")
    result = run_cli("models")
    assert result.returncode == 0 and "pkd-char" in result.stdout and "broken" not in result.stdout
    assert "broken: damaged" in result.stderr and "assistant models rm broken" in result.stderr
    rows = {row["name"]: row for row in map(json.loads, run_cli("models", "--json").stdout.splitlines())}
    assert rows["pkd-char"]["kind"] == "char" and "config.json is damaged" in rows["broken"]["damaged"]
    assert run_cli("models", "rm", "broken", "--yes").returncode == 0
    assert "damaged" not in run_cli("models").stderr


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 480.00 MiB"),
                                   RuntimeError("CUDA error: out of memory"),
                                   RuntimeError("Error(s) in loading state_dict: size mismatch for lstm.weight")])
def test_weights_that_do_not_fit_are_told_apart_from_damaged_ones(trained_model: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  error: RuntimeError):
    """A full GPU is not a damaged model: the one-line error says which, and what to do."""
    from kinds.charlstm import infer

    def load(card, device):
        raise error

    monkeypatch.setattr(infer, "load", load)
    damaged = "size mismatch" in str(error)
    with pytest.raises(UserError, match="damaged" if damaged else r"do not fit in the cpu memory left .*--device cpu"):
        load_model(trained_model, "cpu")
