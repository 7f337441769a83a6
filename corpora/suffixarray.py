"""A suffix array over a text, and the longest span a sample shares with it.

Built with numpy by prefix doubling: the first sort orders suffixes by their
first few characters packed into one 64-bit key, then each round doubles the
sorted prefix length but re-sorts only the groups that are still tied, so the
rounds get cheap fast (most suffixes of prose are unique after a few dozen
characters). Austen's 4.4M characters take a few seconds, once.

Queries compare Python string slices in a binary search: code point order is
the order the array was sorted in, and a slice comparison runs in C.
"""

from dataclasses import dataclass

import numpy as np


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def build(text: str) -> np.ndarray:
    """The suffix array of `text`: start offsets of its suffixes in sorted order (int32 or int64)."""
    codes = code_points(text)
    n = len(codes)
    # dense symbols from 1; 0 stands for "past the end", which sorts first as a shorter suffix should
    alphabet, dense = np.unique(codes, return_inverse=True)
    dense = dense.astype(np.uint64) + 1
    bits = max(1, len(alphabet).bit_length())
    width = max(1, 64 // bits)
    key = np.zeros(n, np.uint64)
    for j in range(width):
        shifted = np.zeros(n, np.uint64)
        shifted[: max(n - j, 0)] = dense[j:]
        key = (key << np.uint64(bits)) | shifted
    sa = np.argsort(key, kind="stable")
    rank = np.zeros(n, np.int64)
    rank[sa], unsorted = _ranks(key[sa], np.arange(n))
    k = width
    while unsorted.size:
        # tied suffixes: order them by (their group, the rank k characters further on)
        members = sa[unsorted]
        group = rank[members]
        ahead = members + k
        second = np.where(ahead < n, rank[np.minimum(ahead, n - 1)], -1)
        order = np.lexsort((second, group))
        members, group, second = members[order], group[order], second[order]
        sa[unsorted] = members
        # the new ranks are written all at once, after every key of this round was read
        rank[members], unsorted = _ranks(group * (n + 1) + second + 1, unsorted)
        k *= 2
    return sa.astype(np.int32 if n < 2**31 else np.int64)


def _ranks(sorted_keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rank of each sorted key (the suffix array position where its tie group starts), and the positions still tied.

    `positions` (increasing) are where the keys sit in the suffix array; a tie group is a run of equal keys.
    """
    m = len(sorted_keys)
    starts = np.ones(m, bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, m))
    ranks = np.repeat(positions[first], sizes)
    return ranks, positions[np.repeat(sizes > 1, sizes)]


@dataclass(frozen=True)
class Match:
    """`length` characters of the sample from `sample_offset` occur in the text at `text_offset`."""

    length: int
    sample_offset: int
    text_offset: int


def longest_match(text: str, sa: np.ndarray, sample: str) -> Match | None:
    """The longest substring of `sample` that occurs in `text`, or None if not even one character does.

    Only a span longer than the best so far is ever looked for, at each sample
    position in turn; once one is found it is grown by galloping (+1, +2, +4...)
    then bisecting, so a long copied passage costs a few dozen binary searches,
    not one per character.
    """
    best: Match | None = None
    target = 1
    for i in range(len(sample)):
        if i + target > len(sample):
            break
        at = _find(text, sa, sample[i : i + target])
        if at is None:
            continue
        length, limit, step = target, len(sample) - i, 1
        while length < limit:  # every length up to `length` occurs here; none beyond `limit`
            probe = min(length + step, limit) if step else (length + limit + 1) // 2
            found = _find(text, sa, sample[i : i + probe])
            if found is None:
                limit, step = probe - 1, 0  # overshot: bisect from now on
            else:
                length, at = probe, found
                step *= 2
        best = Match(length, i, at)
        target = length + 1
    return best


def _find(text: str, sa: np.ndarray, pattern: str) -> int | None:
    """An offset in `text` where `pattern` occurs, by binary search over the suffix array."""
    k = len(pattern)
    lo, hi = 0, len(sa)
    while lo < hi:
        mid = (lo + hi) // 2
        start = int(sa[mid])
        if text[start : start + k] < pattern:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(sa):
        start = int(sa[lo])
        if text[start : start + k] == pattern:
            return start
    return None
