"""mkdocs hook: the benchmarks' figures, read from docs/figures/NAME.json as the benchmark wrote it.

In a page, `{{ figures NAME }}` becomes the table of every figure NAME.json holds, with the command, machine and date
it came from, and `{{ fig NAME KEY }}` one figure in the text. A name or key that is not there fails the build, so a
page cannot quote a figure its benchmark no longer reports. The files are written by `benchmarks/_common.py`'s `emit`
(`--json docs/figures/NAME.json`); tests/test_docs.py checks that their keys are their benchmark's.
"""

import json
import re
from pathlib import Path

FIGURES_DIR = Path(__file__).resolve().parents[1] / "figures"
TABLE = re.compile(r"\{\{ figures ([\w-]+) \}\}")
ONE = re.compile(r"\{\{ fig ([\w-]+) ([\w.-]+) \}\}")


def load(name: str) -> dict:
    path = FIGURES_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no figures {name}: {path} is missing (run its benchmark with --json {path.name})")
    return json.loads(path.read_text(encoding="utf-8"))


def shown(value: object) -> str:
    """A figure as the page prints it: thousands separated, yes/no, and a dash for one not recorded."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def figure(name: str, key: str) -> str:
    figures = load(name)["figures"]
    if key not in figures:
        raise ValueError(f"{name}.json has no figure {key!r}: it has {', '.join(figures)}")
    return shown(figures[key])


def table(name: str) -> str:
    record = load(name)
    rows = [f"| {record['what'][key]} | `{key}` | {shown(value)} |" for key, value in record["figures"].items()]
    source = f"`{record['command']}`, {record['date']}, {record['machine']}"
    if record.get("note"):
        source += f". {record['note']}"
    return "\n".join(["| figure | key | value |", "| --- | --- | --- |", *rows, "", f"*Measured by* {source}", ""])


def references(markdown: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The figure files a page shows whole, and the single figures it quotes."""
    return set(TABLE.findall(markdown)), set(ONE.findall(markdown))


def render(markdown: str) -> str:
    markdown = TABLE.sub(lambda m: table(m[1]), markdown)
    return ONE.sub(lambda m: figure(m[1], m[2]), markdown)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return render(markdown)
