"""A character n-gram model with interpolated Kneser-Ney smoothing: the baseline `assistant eval` measures against.

Karpathy, Johnson and Fei-Fei ("Visualizing and Understanding Recurrent
Networks", 2015) put every LSTM beside an n-gram model of the same text, its n
chosen on validation up to 20: what the network knows beyond counting is the
gap between the two. This is that baseline.

It must fit a few megabytes in seconds, so nothing is counted in Python
dictionaries, and nothing is hashed. Order k's table lists its distinct
k-grams sorted, and a k-gram is numbered by its row: its key is the row of its
first k-1 characters in order k-1's table times the alphabet's size, plus its
last character. So a table's keys are small exact integers, its contexts are
its keys divided by the alphabet, and counting an order is one sort (key and
position packed into one 64-bit number, which numpy sorts with SIMD) and a
few array operations over the text. A text is scored the same way, with binary
searches into the tables, every position at once.

Smoothing is interpolated Kneser-Ney (Chen and Goodman 1998): the highest
order uses counts, the lower ones continuation counts (after how many distinct
characters a shorter n-gram was seen), each order with its own discount
n1 / (n1 + 2 n2), down to a uniform distribution over the characters seen
plus one for any character never seen.
"""

import math
from dataclasses import dataclass

import numpy as np

MAX_ORDER = 20
PATIENCE = 2  # orders in a row without a better validation loss end the search for n


@dataclass
class _Order:
    """The n-grams of one order k: their sorted keys, their counts, and their contexts in order k-1's table."""

    keys: np.ndarray  # int64, sorted: row of the (k-1)-gram prefix in order k-1's table * alphabet + last character
    counts: np.ndarray  # float64: how often each k-gram occurs
    context: np.ndarray  # int64: the row of each k-gram's (k-1)-gram prefix in order k-1's table (0 for k = 1)
    continuation: np.ndarray | None = None  # float64: distinct characters each k-gram follows (from order k+1)


@dataclass(frozen=True)
class _Smoothing:
    """One order's counts grouped by context, as the interpolation reads them."""

    discount: float
    counts: np.ndarray  # per k-gram: raw counts (the highest order) or continuation counts (a lower one)
    total: np.ndarray  # per context (indexed like order k-1's table): the sum of its k-grams' counts
    types: np.ndarray  # per context: how many k-grams with a count it has


class NGramModel:
    """Character n-grams of one training text; `fit` also picks n on a validation text."""

    def __init__(self, train: str, order: int):
        self.vocab = np.unique(_codes(train))
        self.alphabet = len(self.vocab) + 1  # and one for a character the training text never had
        self.order = 0
        self.scores: dict[int, float] = {}  # validation loss of each n tried, when fitted
        self._orders: list[_Order] = []
        self._smoothed: dict[tuple[int, bool], _Smoothing] = {}
        self._x = self._ids(train)
        self._rows = np.zeros(len(self._x), dtype=np.int64)  # the row of the highest order's n-gram ending at each position
        for _ in range(order):
            self._grow()

    @classmethod
    def fit(cls, train: str, val: str, max_order: int = MAX_ORDER) -> "NGramModel":
        """The model of the n (up to `max_order`) with the lowest loss on `val`, its tables counted once.

        Orders are added one at a time and each n is scored on `val`; the search ends after PATIENCE orders in a
        row that did not beat the best, as longer contexts only repeat the counts of shorter ones by then.
        """
        model = cls(train, 0)
        y = model._ids(val)
        lower, rows = np.full(len(y), 1.0 / model.alphabet), np.zeros(len(y), dtype=np.int64)  # orders below n
        best = 1
        for n in range(1, max_order + 1):
            model._grow()
            if n > 1:  # order n-1 now has its continuation counts: fold it into the orders below n, once
                lower, rows = model._mix(n - 1, False, y, lower, rows)
            p, _ = model._mix(n, True, y, lower, rows)
            model.scores[n] = float(-np.log(p[1:]).mean())
            if model.scores[n] < model.scores[best]:
                best = n
            elif n - best >= PATIENCE:
                break
        model.order = best
        del model._orders[best:], model._x, model._rows  # what scoring does not read
        return model

    def nats(self, text: str) -> tuple[float, int]:
        """The summed -ln p of each character of `text` after the first, and how many characters that is."""
        y = self._ids(text)
        if len(y) < 2:
            return 0.0, 0
        p = self._probabilities(y)[1:]
        return float(-np.log(p).sum()), len(p)

    def loss(self, text: str) -> float:
        """Nats per character on `text`."""
        total, count = self.nats(text)
        return total / count if count else math.nan

    # ---- counting ----------------------------------------------------------
    def _ids(self, text: str) -> np.ndarray:
        """Each character's index in the vocabulary; one past it for a character the training text never had."""
        codes = _codes(text)
        at = np.minimum(np.searchsorted(self.vocab, codes), len(self.vocab) - 1)
        return np.where(self.vocab[at] == codes, at, len(self.vocab)).astype(np.int64)

    def _grow(self) -> None:
        """Count the n-grams of the next order k, from the rows of order k-1's n-grams at each position.

        The k-gram ending at t is order k-1's n-gram ending at t-1 (its context) and the character at t; its last
        k-1 characters are order k-1's n-gram ending at t, which gives order k-1 its continuation counts.
        """
        x, k, previous = self._x, len(self._orders) + 1, self._rows
        keys_at = x[k - 1 :] + (previous[k - 2 : -1] * self.alphabet if k > 1 else 0)  # the k-grams ending at k-1...
        positions, ordered = _sort(keys_at)
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        starts = np.flatnonzero(first)
        keys = ordered[starts]
        counts = np.diff(np.r_[starts, len(ordered)]).astype(np.float64)
        self._rows = np.full(len(x), -1, dtype=np.int64)
        self._rows[positions + k - 1] = np.cumsum(first) - 1
        if k > 1:
            below = self._orders[k - 2]
            below.continuation = np.bincount(previous[positions[starts] + k - 1], minlength=len(below.keys)).astype(np.float64)
            self._smoothed.pop((k - 1, False), None)
        self._orders.append(_Order(keys, counts, keys // self.alphabet))
        self.order = k

    def _smoothing(self, k: int, top: bool) -> _Smoothing:
        """Order k's discount and its counts by context: counts when it is the highest order, else continuation counts."""
        if (k, top) not in self._smoothed:
            table = self._orders[k - 1]
            counts = table.counts if top or table.continuation is None else table.continuation
            n1, n2 = float((counts == 1).sum()), float((counts == 2).sum())
            discount = min(n1 / (n1 + 2 * n2), 0.99) if n1 + n2 > 0 else 0.5
            contexts = 1 if k == 1 else len(self._orders[k - 2].keys)
            total = np.bincount(table.context, weights=counts, minlength=contexts)
            types = np.bincount(table.context, weights=(counts > 0).astype(np.float64), minlength=contexts)
            self._smoothed[(k, top)] = _Smoothing(discount, counts, total, types)
        return self._smoothed[(k, top)]

    # ---- scoring -------------------------------------------------------------
    def _probabilities(self, y: np.ndarray) -> np.ndarray:
        """p(y[t] | the up to n-1 characters before it), for every t: each order mixes its counts with the order below."""
        p, rows = np.full(len(y), 1.0 / self.alphabet), np.zeros(len(y), dtype=np.int64)
        for k in range(1, self.order + 1):
            p, rows = self._mix(k, k == self.order, y, p, rows)
        return p

    def _mix(self, k: int, top: bool, y: np.ndarray, below: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Order k's interpolation over the orders below it (`below`: their p of each character; `rows`: the row of
        order k-1's n-gram ending at each position, -1 when unseen); the new p, and order k's rows."""
        s = self._smoothing(k, top)
        keys = self._orders[k - 1].keys
        context = rows if k == 1 else np.r_[-1, rows[:-1]]  # order k-1's n-gram ending just before each position
        wanted = np.where(context >= 0, context * self.alphabet + y, -1)
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        found = keys[at] == wanted
        count = np.where(found, s.counts[at], 0.0)
        seen = np.maximum(context, 0)
        total = np.where(context >= 0, s.total[seen], 0.0)
        has = total > 0
        mixed = (np.maximum(count - s.discount, 0.0) + s.discount * s.types[seen] * below) / np.where(has, total, 1.0)
        return np.where(has, mixed, below), np.where(found, at, -1)


def _sort(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions that sort `keys` (any order among equal keys) and the sorted keys.

    Key and position are packed into one int64 when they fit, as they do for texts of up to millions of characters:
    numpy sorts plain numbers about twice as fast as it argsorts.
    """
    shift = max(1, len(keys).bit_length())
    if len(keys) == 0 or int(keys.max()).bit_length() + shift > 63:
        positions = np.argsort(keys)
        return positions, keys[positions]
    packed = (keys << shift) | np.arange(len(keys), dtype=np.int64)
    packed.sort()
    return packed & ((1 << shift) - 1), packed >> shift


def _codes(text: str) -> np.ndarray:
    """The text's code points, one uint32 each, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
