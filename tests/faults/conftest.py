"""The fault-injection suite's switch between its two sizes, and where its figures go.

`pytest` (the README's `make test`, CI) runs every fault at a size that adds
about a minute to the suite. `FAULTS_LONG=1 pytest tests/faults -s` runs the
issue's figures (10 kills, 8 x 500 store writes, 10,000 fuzzed messages) and
prints each figure as a `FIGURE` line; with FAULTS_FIGURES=FILE they are also
appended to FILE.
"""

import os

LONG = os.environ.get("FAULTS_LONG") == "1"


def size(ci: int, long: int) -> int:
    """How many of something a test does: `ci` in CI, `long` in the long form."""
    return long if LONG else ci


def figure(line: str) -> None:
    """Report one figure of the suite (the long form's are on the site's Reliability page, docs/reliability.md)."""
    text = f"FIGURE {'long' if LONG else 'ci'}: {line}"
    print(text)
    if path := os.environ.get("FAULTS_FIGURES"):
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
