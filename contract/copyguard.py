"""The copy guard: no sample holds a verbatim span of the corpus longer than the writer allows.

The repetition samplers look at the text in the context; a memorized passage
is not there, so they cannot stop a model copying its training corpus. The
guard looks at the corpus's suffix array (corpora.index): it keeps the
longest suffix of the text written so far that occurs in the corpus, with the
range of suffix-array rows that start with it, and extends that match by one
character per character written (a binary search inside the range, not over
the whole corpus). Only when the match is long enough that a token could push
it past the limit does it look at the likeliest such tokens' text, character
by character; tokens that would are forbidden, as are the unchecked ones that
could, and the chain renormalizes what is left.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np
import torch

from corpora.index import SEPARATOR, CorpusIndex

from .processors import NEG, Context, Tracker

CANDIDATES = 16  # the likeliest tokens whose text is checked when a token could stretch the match past the limit


@dataclass(frozen=True)
class Match:
    """The longest suffix of the written text found in the corpus: its length and the suffix-array rows [lo, hi)."""

    length: int
    lo: int
    hi: int


class CopyGuard(Tracker):
    """A processor of the sampler chain (see contract.processors) that also follows the text as it is written."""

    def __init__(self, index: CorpusIndex, limit: int, token_texts: list[str]):
        self.text, self.sa, self.limit = index.text, np.asarray(index.sa), limit
        self.token_texts = token_texts
        self.lengths = np.array([len(t) for t in token_texts])
        self.longest_token = int(self.lengths.max())
        self.rows = range(len(self.sa))
        self.start(Context([], ""))

    def start(self, context: Context) -> None:
        # after each token written (popped when the loop rewinds): the match, or None while it is too short to
        # matter, and a bound on its length (it grows by at most a character per character written)
        self.matches: list[Match | None] = [Match(0, 0, len(self.sa))]
        self.bounds = [0]
        self.followed = 0  # how much of the text it has followed
        self.forbade = False  # whether the last step forbade any token (only then can nothing be left)

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        if self.bounds[-1] + self.longest_token <= self.limit:
            self.forbade = False
            return scores  # no token could stretch the match past the limit, whatever it is now
        match = self.matches[-1]
        assert match is not None  # kept exact whenever the bound is this close
        risky = self.lengths > self.limit - match.length
        ranked = torch.topk(torch.from_numpy(np.where(risky, scores, np.float32(NEG))),
                            min(CANDIDATES, int(np.count_nonzero(risky)))).indices.tolist()
        allowed = [t for t in ranked if scores[t] > NEG and self._within(match, context.text, self.token_texts[t])]
        risky[allowed] = False
        scores[risky] = NEG
        self.forbade = True
        return scores

    def push(self, context: Context) -> None:
        """Follow the text of the token just written.

        While the match is short (a bound says it cannot reach the limit
        within a token) it is not followed at all; once it could, it is found
        again from the end of the text and then followed character by
        character. Prose matches the corpus for a few characters at a time,
        so a char model finds it once every few dozen characters.
        """
        text = context.text
        match, bound = self.matches[-1], self.bounds[-1] + len(text) - self.followed
        if bound + self.longest_token <= self.limit:
            match = None
        elif match is None:
            match = self._longest_suffix(text, bound)
        else:
            for at in range(self.followed, len(text)):
                match = self._step(match, text[at - match.length : at], text[at])
        self.followed = len(text)
        self.matches.append(match)
        self.bounds.append(bound if match is None else match.length)

    def pop(self, n: int, context: Context) -> None:
        del self.matches[len(self.matches) - n :], self.bounds[len(self.bounds) - n :]
        self.followed = len(context.text)

    def _longest_suffix(self, text: str, bound: int) -> Match:
        """The longest suffix of `text` (of at most `bound` characters) that the corpus holds."""
        tail = text[max(0, len(text) - bound) :].rpartition(SEPARATOR)[2]
        return self._longest(tail, len(tail))

    def _within(self, match: Match, text: str, piece: str) -> bool:
        """Whether writing `piece` after `text` keeps every match at or under the limit."""
        written = text[len(text) - match.length :]
        for i, ch in enumerate(piece):
            if match.length + len(piece) - i <= self.limit:
                return True  # even if every character went on matching
            match = self._step(match, written, ch)
            if match.length > self.limit:
                return False
            written += ch
        return True

    def _step(self, match: Match, written: str, ch: str) -> Match:
        """The match after `ch` is written after `written` (whose longest matching suffix is `match`; its last
        match.length characters are enough)."""
        if ch == SEPARATOR:
            return Match(0, 0, len(self.sa))
        m, text, sa = match.length, self.text, self.sa
        key = lambda row: text[sa[row] + m : sa[row] + m + 1]  # noqa: E731 - the character after the match
        lo = bisect_left(self.rows, ch, match.lo, match.hi, key=key)
        hi = bisect_right(self.rows, ch, lo, match.hi, key=key)
        if lo < hi:
            return Match(m + 1, lo, hi)
        # no longer match: the longest suffix of (match + ch) there is
        return self._longest(written[len(written) - m :] + ch, m)

    def _longest(self, tail: str, most: int) -> Match:
        """The longest suffix of `tail`, of at most `most` characters, the corpus holds; shorter ones occur wherever
        longer ones do, so the length is found by bisection."""
        found, short, long = Match(0, 0, len(self.sa)), 1, most
        while short <= long:
            length = (short + long) // 2
            rows = self._rows(tail[-length:])
            if rows is None:
                long = length - 1
            else:
                found, short = Match(length, *rows), length + 1
        return found

    def _rows(self, pattern: str) -> tuple[int, int] | None:
        """The suffix-array rows that start with `pattern`, or None."""
        k, text, sa = len(pattern), self.text, self.sa
        key = lambda row: text[sa[row] : sa[row] + k]  # noqa: E731
        lo = bisect_left(self.rows, pattern, key=key)
        hi = bisect_right(self.rows, pattern, lo, key=key)
        return (lo, hi) if lo < hi else None
