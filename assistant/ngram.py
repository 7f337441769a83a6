"""A character n-gram model with interpolated Kneser-Ney smoothing: the baseline `assistant eval` measures against.

Karpathy, Johnson and Fei-Fei ("Visualizing and Understanding Recurrent
Networks", 2015) put every LSTM beside an n-gram model of the same text, its n
chosen on validation up to 20: what the network knows beyond counting is the
gap between the two. This is that baseline.

It must fit a few megabytes in seconds, so nothing is counted in Python
dictionaries. Each n-gram is a 64-bit polynomial hash of its characters, built
from the (n-1)-gram's hash in one array operation; an order's table is its
hashes sorted and made unique (counts, and one position per n-gram to find
its context and suffix); and a text is scored with binary searches into the
tables, every position at once. Distinct n-grams of one order share a hash
with odds near 2^-64 per pair: at millions of n-grams, none in practice.

Smoothing is interpolated Kneser-Ney (Chen and Goodman 1998): the highest
order uses counts, the lower ones continuation counts (in how many contexts a
shorter n-gram was seen), each order with its own discount n1 / (n1 + 2 n2),
down to a uniform distribution over the characters seen plus one for any
character never seen.
"""

import math
from dataclasses import dataclass

import numpy as np

MAX_ORDER = 20
PATIENCE = 2  # orders in a row without a better validation loss end the search for n
_P = np.uint64(0x9E3779B97F4A7C15)  # the hash's multiplier: odd, its bits well spread


@dataclass
class _Order:
    """The n-grams of one order k: sorted unique hashes, their counts, and their contexts in order k-1's table."""

    keys: np.ndarray  # uint64, sorted
    counts: np.ndarray  # float64: how often each k-gram occurs
    context: np.ndarray  # int64: index of each k-gram's (k-1)-gram prefix in the table of order k-1 (0 for k = 1)
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
        self.order = 0
        self.scores: dict[int, float] = {}  # validation loss of each n tried, when fitted
        self._orders: list[_Order] = []
        self._smoothed: dict[tuple[int, bool], _Smoothing] = {}
        self._x = self._ids(train)
        self._hashes = np.zeros(len(self._x), dtype=np.uint64)  # the highest order's hash ending at each position
        for _ in range(order):
            self._grow()

    @classmethod
    def fit(cls, train: str, val: str, max_order: int = MAX_ORDER) -> "NGramModel":
        """The model of the n (up to `max_order`) with the lowest loss on `val`, its tables counted once.

        Orders are added one at a time and each n is scored on `val`; the search ends after PATIENCE orders in a
        row that did not beat the best, as longer contexts only repeat the counts of shorter ones by then.
        """
        model = cls(train, 0)
        best = 1
        for n in range(1, max_order + 1):
            model._grow()
            model.scores[n] = model.loss(val)
            if model.scores[n] < model.scores[best]:
                best = n
            elif n - best >= PATIENCE:
                break
        model.order = best
        del model._orders[best:], model._x, model._hashes  # what scoring does not read
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
        """Each character's index in the vocabulary plus one (0 is never a character); one past it when unseen."""
        codes = _codes(text)
        at = np.minimum(np.searchsorted(self.vocab, codes), len(self.vocab) - 1)
        return np.where(self.vocab[at] == codes, at, len(self.vocab)).astype(np.uint64) + np.uint64(1)

    def _grow(self) -> None:
        """Count the n-grams of the next order k.

        The hash of the k-gram ending at t is the (k-1)-gram's times P plus the character k-1 before t, so its
        context (the (k-1)-gram ending at t-1) and its suffix (the (k-1)-gram ending at t) are both the previous
        order's hashes: the suffixes give order k-1 its continuation counts.
        """
        x, k = self._x, len(self._orders) + 1
        previous = self._hashes.copy()
        if k == 1:
            self._hashes[:] = x
        else:
            self._hashes[k - 1 :] = previous[k - 1 :] * _P + x[: len(x) - k + 1]
        grams = self._hashes[k - 1 :]
        order = np.argsort(grams)
        ordered = grams[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        keys = ordered[starts]
        counts = np.diff(np.r_[starts, len(ordered)]).astype(np.float64)
        where = order[starts] + (k - 1)  # one position of each k-gram (where it ends)
        context = np.zeros(len(keys), dtype=np.int64)
        if k > 1:
            below = self._orders[k - 2]
            context = np.searchsorted(below.keys, previous[where - 1])
            below.continuation = np.bincount(np.searchsorted(below.keys, previous[where]),
                                             minlength=len(below.keys)).astype(np.float64)
            self._smoothed.pop((k - 1, False), None)
        self._orders.append(_Order(keys, counts, context))
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
        p = np.full(len(y), 1.0 / (len(self.vocab) + 1))
        hashes = np.zeros(len(y), dtype=np.uint64)
        for k in range(1, self.order + 1):
            s = self._smoothing(k, top=k == self.order)
            keys = self._orders[k - 1].keys
            context = np.r_[np.uint64(0), hashes[:-1]]  # the (k-1)-gram ending just before each position
            if k == 1:
                hashes = y.copy()
            else:
                hashes[k - 1 :] = hashes[k - 1 :] * _P + y[: len(y) - k + 1]
            valid = np.arange(len(y)) >= k - 1
            at = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            count = np.where(valid & (keys[at] == hashes), s.counts[at], 0.0)
            if k == 1:
                ctx = np.zeros(len(y), dtype=np.int64)
            else:
                below = self._orders[k - 2].keys
                ctx = np.minimum(np.searchsorted(below, context), len(below) - 1)
                ctx = np.where(valid & (below[ctx] == context), ctx, -1)
            total = np.where(ctx >= 0, s.total[ctx], 0.0)
            has = total > 0
            mixed = (np.maximum(count - s.discount, 0.0) + s.discount * s.types[ctx] * p) / np.where(has, total, 1.0)
            p = np.where(has, mixed, p)
        return p


def _codes(text: str) -> np.ndarray:
    """The text's code points, one uint32 each, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
