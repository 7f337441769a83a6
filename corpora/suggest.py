"""The name a writer most likely meant, for every error about a name or a choice (models, corpora, commands, flags).

One rule everywhere: the closest spelling (difflib's ratio at least 0.6: "sentance" for "sentence", "pkd-chr" for
"pkd-char"), else the one name that the name given begins, or that begins it ("pkd" for "pkd-demo", a short name
typed for a long one), else none.
"""

import difflib
from collections.abc import Iterable

CUTOFF = 0.6
MIN_STEM = 3  # a name shorter than this begins too many others to mean one


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The choice `name` most likely meant, or None."""
    known = [c for c in dict.fromkeys(choices) if c != name]
    close = difflib.get_close_matches(name, known, n=1, cutoff=CUTOFF)
    if close:
        return close[0]
    stem = name.strip().lower()
    if not stem:
        return None
    prefixed = [c for c in known if min(len(c), len(stem)) >= MIN_STEM
                and (c.lower().startswith(stem) or stem.startswith(c.lower()))]
    return prefixed[0] if len(prefixed) == 1 else None


def did_you_mean(name: str, choices: Iterable[str], *, quote: bool = True, tail: bool = False) -> str:
    """"did you mean 'X'? " for the nearest choice (`tail`: "; did you mean 'X'?", to end a message), or "" when
    none is near."""
    found = nearest(name, choices)
    if found is None:
        return ""
    question = f"did you mean {found!r}?" if quote else f"did you mean {found}?"
    return f"; {question}" if tail else f"{question} "
