"""Join the lines that a text's typist (or Gutenberg's) broke at a fixed width, and only those.

Gutenberg texts keep their 70-odd-column line breaks. A model trained on them
learns to break lines after so many characters, so its samples read "he leaped
onto the⏎probe", and a passage handed to a writer "ready to paste" carries
breaks that are no part of the prose. A line break is a wrap when the line is
full: the next line's first word would not have fitted on it (within a few
columns of the text's width), or the line is nearly the width itself. A
paragraph is joined when every break in it is a wrap, at one indentation, so
verse, a song or a letter's address inside a novel stays as it is (its lines
end where the poet ended them, short of the width, or are indented). A text
counts as hard-wrapped when nearly all its breaks are wraps: prose, where a
play's verse (Shakespeare) has one in four.
"""

import itertools
import re

WRAPPED_SHARE = 0.8  # a text is hard-wrapped when at least this share of its line breaks inside paragraphs are wraps
MIN_BREAKS = 8  # ... and it has that many to judge by
SENTENCE_ENDS = 0.3  # ... and at most this share of them end a sentence (4-13% in Gutenberg prose, 52% in Shakespeare)
MAX_WIDTH = 100  # lines wrapped wider than this are no typist's: not hard-wrapped
SLACK = 4  # columns short of the width at which a wrapping tool may have broken
FULL = 0.9  # a line this share of the width long is full whatever comes next
# how a model's config.json records the setting a corpus was read with: None (the default) is "auto"; a record
# without one was read before unwrapping existed, as "off"
SETTINGS: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
_PARAGRAPHS = re.compile(r"(\n[ \t]*\n+)")
_ENDS = tuple(".!?:;")  # a line ending in one of these (before closing quotes and brackets) ends a sentence
_CLOSERS = "\"'\u201d\u2019)]_*"
_JOINED_BARE = re.compile(r"\S[-\u2013\u2014]$")  # a hyphen or dash ending a line: joined without a space


def setting(unwrap: bool | None) -> str:
    """The name config.json records for an unwrap setting."""
    return next(name for name, value in SETTINGS.items() if value is unwrap)


def width(text: str) -> int:
    """The width the text was wrapped at: its 99th percentile line length (one overlong line is no wrap)."""
    lengths = sorted(len(line.rstrip()) for line in text.split("\n") if line.strip())
    return lengths[int(len(lengths) * 0.99)] if lengths else 0


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def is_wrap(line: str, following: str, wrapped_at: int) -> bool:
    """Whether the break between `line` and `following` is a wrap: the line is full, and both stand at one
    indentation (give or take a space)."""
    if abs(_indent(line) - _indent(following)) > 1 or not following.strip():
        return False
    length = len(line.rstrip())
    return length + 1 + len(following.split()[0]) > wrapped_at - SLACK or length >= FULL * wrapped_at


def _breaks(paragraph: str, wrapped_at: int) -> list[bool]:
    lines = paragraph.split("\n")
    return [is_wrap(a, b, wrapped_at) for a, b in itertools.pairwise(lines)]


def _ends_sentence(line: str) -> bool:
    return line.rstrip().rstrip(_CLOSERS)[-1:] in _ENDS


def _judged(text: str) -> tuple[int, list[str], list[list[bool]], bool]:
    """The text's width, its paragraphs and separators (alternating), each paragraph's breaks, and whether the text
    is hard-wrapped: nearly all its breaks inside paragraphs are wraps, and most fall inside a sentence (lines of
    dialogue, or one sentence a line, end theirs at each break)."""
    wrapped_at = width(text)
    parts = _PARAGRAPHS.split(text)
    breaks = [_breaks(paragraph, wrapped_at) for paragraph in parts[::2]]
    flat = [b for paragraph in breaks for b in paragraph]
    ends = [_ends_sentence(line) for paragraph in parts[::2] for line in paragraph.split("\n")[:-1]]
    wrapped = (0 < wrapped_at <= MAX_WIDTH and len(flat) >= MIN_BREAKS and sum(flat) >= WRAPPED_SHARE * len(flat)
               and sum(ends) <= SENTENCE_ENDS * len(ends))
    return wrapped_at, parts, breaks, wrapped


def hard_wrapped(text: str) -> bool:
    """Whether the text was broken at a fixed width throughout (see `_judged`)."""
    return _judged(text.strip("\n"))[3]


def unwrap(text: str, force: bool = False) -> tuple[str, bool]:
    """The text with each wrapped paragraph on one line, and whether any was joined; a text that is not hard-wrapped
    comes back as it is unless `force` (--unwrap): then every paragraph whose breaks are all wraps is joined."""
    body = text.rstrip("\n")
    _, parts, breaks, wrapped = _judged(body)
    if not (force or wrapped):
        return text, False
    joined = False
    for i, paragraph_breaks in zip(range(0, len(parts), 2), breaks, strict=True):
        if not paragraph_breaks or not all(paragraph_breaks):
            continue
        lines = parts[i].split("\n")
        pieces = [lines[0].rstrip()]
        for before, line in itertools.pairwise(lines):
            pieces.append(("" if _JOINED_BARE.search(before.rstrip()) else " ") + line.strip())
        parts[i], joined = "".join(pieces), True
    return "".join(parts) + text[len(body) :], joined
