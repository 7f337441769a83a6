"""The documentation site cannot drift from the code: its figures are the files the benchmarks write, each with the
keys its benchmark declares; the README stays a short page that links into the site.

`make docs` (and CI) builds the site with `mkdocs build --strict`, which fails on a broken link, a page left out of
the navigation, a figure a page quotes that its file does not hold, or an API the reference names that is gone.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

from .conftest import ROOT

DOCS = ROOT / "docs"
BENCHMARKS = ROOT / "benchmarks"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> dict[str, str]:
    return {str(p.relative_to(DOCS)): p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md"))}


def test_each_figure_file_holds_what_its_benchmark_declares_and_a_page_shows_it_whole(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmarks import their _common as scripts do
    figures = _module(DOCS / "_hooks" / "figures.py")
    files = sorted((DOCS / "figures").glob("*.json"))
    assert len(files) >= 10
    shown, quoted = set(), set()
    for text in _pages().values():
        whole, single = figures.references(text)
        shown |= whole
        quoted |= single
        figures.render(text)  # a name or key that is not there raises
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        declared = _module(BENCHMARKS / f"{record['benchmark']}.py").FIGURES
        assert set(record["figures"]) <= set(declared), (path.name, set(record["figures"]) - set(declared))
        assert record["what"] == {key: declared[key] for key in record["figures"]}, path.name
        assert record["command"].startswith(f".venv/bin/python benchmarks/{record['benchmark']}.py"), path.name
        assert record["date"] and record["machine"], path.name
        assert path.stem in shown, f"no page shows {path.name}: add {{{{ figures {path.stem} }}}} where it belongs"
    assert {name for name, _ in quoted} <= {p.stem for p in files}
    sys.modules.pop("_common", None)


def test_a_benchmark_refuses_a_figure_it_does_not_declare(monkeypatch, tmp_path: Path, capsys):
    import argparse

    import pytest

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    common = _module(BENCHMARKS / "_common.py")
    out = tmp_path / "x.json"
    monkeypatch.setattr(sys, "argv", ["benchmarks/example.py", "--json", str(out)])
    with pytest.raises(SystemExit, match="speedup"):
        common.emit({"ours_ms": 1.0, "speedup": 2.0}, {"ours_ms": "ours, ms"}, argparse.Namespace(json=out))
    assert not out.exists()
    common.emit({"ours": {"ms": 1.0}}, {"ours.ms": "ours, ms", "naive.ms": "naive, ms"}, argparse.Namespace(json=out))
    record = json.loads(out.read_text())
    assert record["figures"] == {"ours.ms": 1.0} and record["what"] == {"ours.ms": "ours, ms"}
    assert record["command"] == f".venv/bin/python benchmarks/example.py --json {out}"


def test_the_readme_is_a_short_page_that_links_into_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "make demo" in readme and "make test" in readme
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(linked) >= 5 and all((ROOT / link).is_file() for link in linked), linked
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make docs" in ci  # CI runs the README's test command, then builds the site
    assert "mkdocs build --strict" in (ROOT / "Makefile").read_text()


def test_every_page_is_in_the_sites_navigation():
    """`mkdocs build --strict` refuses a page left out of the nav; this says which one in seconds, not at `make docs`."""
    import yaml

    def named(entries) -> set[str]:
        found = set()
        for entry in entries:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                found |= named(value) if isinstance(value, list) else {value}
        return found

    nav = named(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    assert set(_pages()) - nav == set()
