"""The chain's arithmetic as one compiled pass (numba): a char model's step is a few hundred microseconds and the
chain may add 5% to it (issue 37), where each numpy call on a 100-token vector costs a microsecond or more just after
the model's step has taken the caches.

`shape` applies, in ORDER (contract.processors), whichever steps its
settings turn on: logit bias, the repetition penalty, presence and frequency,
DRY, temperature, then top-k, top-p, min-p and typical-p. The penalties and
DRY are the plain definitions computed from the ids (the last ones, within
their range) at each step: in compiled code that scan costs less than
keeping counts up to date from Python. The tests hold it to
contract.processors' plain functions token for token. numba caches the
machine code beside this file (or in its user cache where that is
read-only), so it is compiled once per machine.
"""

import numpy as np
from numba import njit

from .processors import MAX_DRY_EXPONENT

SMALL_VOCABULARY = 1024  # up to this many tokens a comparison sort is cheaper than the radix passes

# the places of the settings in `shape`'s two vectors
PENALTY, PRESENCE, FREQUENCY, DRY_MULTIPLIER, DRY_BASE, TEMPERATURE, TOP_P, MIN_P, TYPICAL_P = range(9)
REPETITION_RANGE, DRY_ALLOWED, DRY_RANGE, TOP_K = range(4)
# which parts of the pass run: the logit bias, and all after it (the copy guard runs in between)
BIAS, REST = 1, 2


@njit(cache=True, nogil=True)
def shape(scores: np.ndarray, ids: np.ndarray, n: int, bias_ids: np.ndarray, biases: np.ndarray,
          breakers: np.ndarray, floats: np.ndarray, ints: np.ndarray, parts: int) -> None:
    """The chain on `scores` (float32, in place) after the first `n` of `ids`; `bias_ids` gain `biases` in turn.

    Off values: penalty 1, presence, frequency and the DRY multiplier 0,
    temperature 1, top-k 0, top-p and typical-p 1, min-p 0.
    """
    if parts & BIAS:
        for j in range(bias_ids.size):
            scores[bias_ids[j]] += biases[j]
    if not parts & REST:
        return
    penalty, presence, frequency = np.float32(floats[PENALTY]), np.float32(floats[PRESENCE]), np.float32(floats[FREQUENCY])
    if penalty != 1 or presence != 0 or frequency != 0:
        _penalize(scores, ids, n, ints[REPETITION_RANGE], penalty, presence, frequency)
    if floats[DRY_MULTIPLIER] != 0:
        _dry(scores, ids, n, floats[DRY_MULTIPLIER], floats[DRY_BASE], ints[DRY_ALLOWED], ints[DRY_RANGE], breakers)
    temperature = np.float32(floats[TEMPERATURE])
    if temperature != 1:
        for i in range(scores.size):
            scores[i] = scores[i] / temperature
    if ints[TOP_K] or floats[TOP_P] < 1 or floats[MIN_P] > 0 or floats[TYPICAL_P] < 1:
        _cut(scores, ints[TOP_K], floats[TOP_P], floats[MIN_P], floats[TYPICAL_P])


@njit(cache=True, nogil=True)
def _penalize(scores, ids, n, window, penalty, presence, frequency) -> None:
    """CTRL's repetition penalty (a positive score divided by it, another multiplied), then OpenAI's presence and
    frequency (`presence + frequency * times` taken off), on each id in the last `window` (0: all); the other ids
    keep their scores bit for bit."""
    start = max(0, n - window) if window else 0
    counts = np.zeros(scores.size, np.int32)
    for i in range(start, n):
        counts[ids[i]] += 1
    for i in range(start, n):
        token = ids[i]
        times = counts[token]
        if times == 0:
            continue  # done already
        counts[token] = 0
        x = scores[token]
        if penalty != 1:
            x = x / penalty if x > 0 else x * penalty
        if presence != 0 or frequency != 0:
            x = x + -(presence + frequency * np.float32(times))
        scores[token] = x


@njit(cache=True, nogil=True)
def _dry(scores, ids, n, multiplier, base, allowed, window, breakers) -> None:
    """DRY: a token that would go on repeating a sequence of k ids already in the last `window` ids (0: all) loses
    multiplier * base**(k - allowed) once k reaches `allowed`; a repeat never spans a breaker."""
    start = max(0, n - window) if window else 0
    m = n - start
    if m < 2 or breakers[ids[n - 1]]:
        return
    last = ids[n - 1]
    longest = np.zeros(scores.size, np.int32)  # per following token, the longest repeat it would continue
    for i in range(m - 1):
        if ids[start + i] != last:
            continue
        k = 1  # the k ids ending at i equal the last k ids
        while k <= i and ids[start + i - k] == ids[n - 1 - k] and not breakers[ids[start + i - k]]:
            k += 1
        following = ids[start + i + 1]
        if k > longest[following]:
            longest[following] = k
    for i in range(m - 1):
        following = ids[start + i + 1]
        k = longest[following]
        if k and k >= allowed:
            longest[following] = 0  # once per token
            cost = multiplier * base ** np.float64(min(k - allowed, MAX_DRY_EXPONENT))  # as Python's float ** int
            scores[following] += np.float32(-cost)


@njit(cache=True, nogil=True)
def _keys(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each id's score as a 32-bit key in the opposite order: a larger score, a smaller key; equal scores, equal keys."""
    bits = scores.view(np.uint32)
    keys = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        b = np.int64(bits[ids[i]])
        if b == 0x80000000:
            b = 0  # -0.0 ties with 0.0, as a comparison has it
        ascending = b ^ 0xFFFFFFFF if b & 0x80000000 else b | 0x80000000  # a float's order as an unsigned int's
        keys[i] = 0xFFFFFFFF - ascending
    return keys


@njit(cache=True, nogil=True)
def _likeliest(scores: np.ndarray, k: int) -> np.ndarray:
    """The ids of at least the k likeliest tokens and every one tied with the k-th, ranked: a histogram of the keys'
    top 11 bits finds the bucket the k-th falls in, and only the buckets up to it are sorted (numba compiles this in
    a fraction of the seconds np.partition takes)."""
    ids = np.arange(scores.size)
    top = _keys(ids, scores) >> 21
    counts = np.zeros(2048, np.int64)
    for d in top:
        counts[d] += 1
    bucket, held = 0, counts[0]
    while held < k:
        bucket += 1
        held += counts[bucket]
    return _ranked(ids[top <= bucket], scores)


@njit(cache=True, nogil=True)
def _ranked(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`ids` from the likeliest down, ties in the order given (a stable sort).

    GPT-2 without top-k ranks all its 50,257 tokens at each step: a
    comparison sort takes milliseconds, a radix sort on the scores' bits
    (three passes of 11 bits) a fraction of one.
    """
    n = ids.size
    if n <= SMALL_VOCABULARY:
        return ids[np.argsort(-scores[ids], kind="mergesort")]
    keys = _keys(ids, scores)
    order, spare = ids.copy(), np.empty(n, ids.dtype)
    spare_keys = np.empty(n, np.int64)
    for shift in (0, 11, 22):
        starts = np.zeros(2049, np.int64)
        for i in range(n):
            starts[((keys[i] >> shift) & 0x7FF) + 1] += 1
        for d in range(2048):
            starts[d + 1] += starts[d]
        for i in range(n):
            d = (keys[i] >> shift) & 0x7FF
            spare[starts[d]], spare_keys[starts[d]] = order[i], keys[i]
            starts[d] += 1
        order, spare, keys, spare_keys = spare, order, spare_keys, keys
    return order


@njit(cache=True, nogil=True)
def _cut(scores, k, top_p, min_p, typical_p) -> None:
    """Top-k, top-p, min-p and typical-p in that order: the tokens they leave keep their scores, the others become
    -inf. The tokens are ranked once (ties in id order, as a stable sort keeps them); each cutter after top-k
    shortens the ranked list, and typical-p ranks what is left by its distance from the entropy."""
    size = scores.size
    neg = np.float32(-np.inf)
    if 0 < k < size:
        ranked = _ranked(np.arange(size), scores) if size <= SMALL_VOCABULARY else _likeliest(scores, k)
        kth = scores[ranked[k - 1]]
        left = k
        if kth == neg:  # fewer than k tokens are possible at all: top-k cuts nothing
            left = 0
            while left < ranked.size and scores[ranked[left]] > neg:
                left += 1
        else:
            while left < ranked.size and scores[ranked[left]] == kth:
                left += 1  # ties with the k-th stay
    else:
        ranked = _ranked(np.nonzero(scores > neg)[0], scores)
        left = ranked.size
    if left == 0:
        return
    top = scores[ranked[0]]
    below = np.empty(left, np.float32)  # each score less the top one
    weights = np.empty(left, np.float32)  # exp of it
    sums = np.empty(left, np.float32)  # their running sum
    total = np.float32(0)
    for i in range(left):
        below[i] = scores[ranked[i]] - top
        weights[i] = np.exp(below[i])
        total += weights[i]
        sums[i] = total
    if 0 < top_p < 1:  # a token stays while the likelier ones before it hold less than p of the total
        bound = top_p * sums[left - 1]
        kept = 0
        while kept < left and sums[kept] < bound:
            kept += 1
        left = min(kept + 1, left)
    if min_p > 0:  # the weights fall from 1 (the likeliest): keep those at p or more
        while left > 1 and weights[left - 1] < min_p:
            left -= 1
    keep = np.zeros(size, np.bool_)
    if typical_p < 1:
        # a token's surprise is log Z - d and the entropy log Z - mean(d) weighted by exp(d), so its distance from
        # the entropy is |d - that mean|: no logarithm, no normalization
        mean = np.float32(0)
        for i in range(left):
            mean += weights[i] * below[i]
        mean = mean / sums[left - 1]
        order = np.argsort(np.abs(below[:left] - mean), kind="mergesort")
        bound = typical_p * sums[left - 1]
        running = np.float32(0)
        for i in range(left):  # as in top-p: the first always stays, then while the running sum before it is under p
            if i and running >= bound:
                break
            keep[ranked[order[i]]] = True
            running += weights[order[i]]
    else:
        for i in range(left):
            keep[ranked[i]] = True
    for i in range(size):
        if not keep[i]:
            scores[i] = neg


def warm() -> None:
    """Compile `shape` now (seconds, once per machine: numba keeps it), so that a writer's first suggestion does not
    wait for it; `make install` runs it."""
    floats = np.array([1.1, 0.1, 0.1, 0.8, 1.75, 0.8, 0.9, 0.05, 0.9])
    shape(np.zeros(2048, np.float32), np.zeros(4, np.int64), 4, np.zeros(0, np.int64), np.zeros(0, np.float32),
          np.zeros(2048, np.bool_), floats, np.array([0, 2, 0, 0], np.int64), BIAS | REST)


if __name__ == "__main__":
    warm()
