"""The sampler chain: each processor takes the next-token scores and the text so far and returns the new scores.

The order is fixed (ORDER), as in KoboldCpp and HF's `LogitsProcessor` list:
what changes which tokens are possible or likely from the text comes first
(logit bias, the copy guard, the repetition penalty over its range,
presence and frequency penalties, DRY), then temperature, and last what cuts
the tail of the distribution it leaves (top-k, top-p, min-p, typical-p). A
processor whose setting is off is not in the chain at all, so temperature
sampling alone costs what it always did.

Each processor is here twice, on purpose. The functions (repetition_penalty,
dry_penalty, top_p_filter, ...) are the plain definitions on a torch vector,
recomputed from every id at each call: the hand-computed tests check them,
training's samples draw through top-k and top-p, and the tests check the
chain against them token for token. The chain the loop runs (`chain`) gives
the same numbers at a char model's speed, where a step is a few hundred
microseconds and a torch call costs several: it works in place on a numpy
copy of the logits, keeps what the penalties need as tokens are written and
taken back (counts over the range, DRY's matches) instead of recounting the
whole text, and its cutters share one sort of the tokens left.
"""

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .sampling import MIN_TEMPERATURE, Decoder, Sampling

ORDER = ("logit_bias", "copy_guard", "repetition_penalty", "presence_frequency", "dry", "temperature", "top_k", "top_p",
         "min_p", "typical_p")
NEG = float("-inf")
MAX_DRY_EXPONENT = 40  # a repeat this long is forbidden outright; base**n beyond it would only overflow
SMALL_VOCABULARY = 1024  # up to this many tokens one full sort is cheaper than a partition and a sort


@dataclass
class Context:
    """What the processors see: every id so far (prompt and written) and the text written so far."""

    ids: list[int]
    text: str
    lead: str = ""  # the prompt's last character, for a word boundary at the start


Processor = Callable[[np.ndarray, Context], np.ndarray]


def draw(logits: torch.Tensor, generator: torch.Generator) -> int:
    """One id drawn from softmax(logits)."""
    return int(torch.multinomial(torch.softmax(logits, dim=-1).cpu(), 1, generator=generator))


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k likeliest tokens."""
    if k is None or not 0 < k < logits.numel():
        return logits
    kth = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth, NEG)


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Keep the likeliest tokens that together hold probability p (the first always stays)."""
    if p is None or not 0 < p < 1:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    drop = sorted_probs.cumsum(-1) - sorted_probs >= p  # the ones before it already cover p
    return logits.masked_fill(drop.scatter(0, order, drop), NEG)


def min_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the tokens at least p times as likely as the likeliest one."""
    probs = torch.softmax(logits, dim=-1)
    return logits.masked_fill(probs < p * probs.max(), NEG)


def typical_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Locally typical sampling: keep the tokens whose surprise is closest to the entropy, holding probability p."""
    if p >= 1:
        return logits
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    entropy = -torch.where(probs > 0, probs * logp, torch.zeros_like(probs)).sum()
    order = torch.argsort((-logp - entropy).abs())
    sorted_probs = probs[order]
    drop = sorted_probs.cumsum(-1) - sorted_probs >= p
    return logits.masked_fill(drop.scatter(0, order, drop), NEG)


def repetition_penalty(logits: torch.Tensor, ids: list[int], penalty: float) -> torch.Tensor:
    """CTRL's penalty on every token in `ids`: a positive logit divided by it, a negative one multiplied."""
    if not ids:
        return logits
    index = torch.tensor(sorted(set(ids)), device=logits.device)
    chosen = logits[index]
    return logits.index_copy(0, index, torch.where(chosen > 0, chosen / penalty, chosen * penalty))


def presence_frequency(logits: torch.Tensor, ids: list[int], presence: float, frequency: float) -> torch.Tensor:
    """OpenAI's penalties: `presence` off a token that is in `ids`, and `frequency` off it for each time it is."""
    if not ids:
        return logits
    counts = Counter(ids)
    index = torch.tensor(list(counts), device=logits.device)
    times = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
    return logits.index_add(0, index, -(presence + frequency * times))


def dry_penalty(logits: torch.Tensor, ids: list[int], multiplier: float, base: float, allowed: int,
                breakers: frozenset[int]) -> torch.Tensor:
    """DRY: a token that would go on repeating a sequence of n tokens already in `ids` loses multiplier * base**(n -
    allowed) once n reaches `allowed`. A repeat never spans a breaker (a line break, a quote): repeating the start of
    a line or of dialogue is writing, not looping."""
    n = len(ids)
    if n < 2 or ids[-1] in breakers:
        return logits
    last, longest = ids[-1], {}
    for i in range(n - 1):
        if ids[i] != last:
            continue
        k = 1  # ids[i - k + 1 : i + 1] equals the last k ids
        while k <= i and ids[i - k] == ids[n - 1 - k] and ids[i - k] not in breakers:
            k += 1
        following = ids[i + 1]
        longest[following] = max(longest.get(following, 0), k)
    hits = {token: k for token, k in longest.items() if k >= allowed}
    if not hits:
        return logits
    index = torch.tensor(list(hits), device=logits.device)
    penalty = torch.tensor([dry_cost(multiplier, base, k - allowed) for k in hits.values()],
                           dtype=logits.dtype, device=logits.device)
    return logits.index_add(0, index, -penalty)


def dry_cost(multiplier: float, base: float, beyond: int) -> float:
    """What DRY takes off a token that would make a repeat `beyond` tokens longer than allowed."""
    return multiplier * base ** min(beyond, MAX_DRY_EXPONENT)


class Tracker:
    """State a processor keeps as the text is written and taken back, so that a step need not recount the text."""

    def start(self, context: Context) -> None:
        """The prompt is in `context`; nothing written yet."""

    def push(self, context: Context) -> None:
        """One token was written: it is the last of `context.ids`, its text is at the end of `context.text`."""

    def pop(self, n: int, context: Context) -> None:
        """The last `n` tokens written were taken back; `context` is what is left."""


class Counts(Tracker):
    """What the penalties need of their range (the last `window` ids; 0: all), kept per token written, as dense
    vectors a step applies in a call or two: the repetition penalty's divisor for each id (1 outside the range: x / 1
    is x, bit for bit) and what presence and frequency take off it (0 outside)."""

    def __init__(self, size: int, window: int, penalty: float = 1.0, presence: float = 0.0, frequency: float = 0.0):
        self.size, self.window, self.penalty = size, window, np.float32(penalty)
        self.presence, self.frequency = np.float32(presence), np.float32(frequency)

    def start(self, context: Context) -> None:
        self.tally = [0] * self.size  # the counts as Python ints too: a numpy scalar's arithmetic is slow
        for token in context.ids[-self.window :] if self.window else context.ids:
            self.tally[token] += 1
        self.factors = np.where(np.array(self.tally) > 0, self.penalty, np.float32(1)).astype(np.float32)
        # what presence_frequency adds to each id: -(presence + frequency * times) in the range, 0 outside it
        self.offsets = np.array([self._offset(t) for t in self.tally], dtype=np.float32)
        self.undo: list[tuple[int, int | None]] = []  # per token written: it, and the id it pushed out of the range

    def push(self, context: Context) -> None:
        ids, token = context.ids, context.ids[-1]
        gone = ids[-self.window - 1] if self.window and len(ids) > self.window else None
        self._count(token, 1)
        if gone is not None:
            self._count(gone, -1)
        self.undo.append((token, gone))

    def pop(self, n: int, context: Context) -> None:
        for _ in range(n):
            token, gone = self.undo.pop()
            self._count(token, -1)
            if gone is not None:
                self._count(gone, 1)

    def _count(self, token: int, change: int) -> None:
        times = self.tally[token] = self.tally[token] + change
        self.factors[token] = self.penalty if times else 1.0
        self.offsets[token] = self._offset(times)

    @functools.cache  # noqa: B019 - a few dozen counts per generation, each costing float32 arithmetic once
    def _offset(self, times: int) -> float:
        return float(-(self.presence + self.frequency * np.float32(times))) if times else 0.0



class RepetitionPenalty:
    def __init__(self, counts: Counts):
        self.counts = counts

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        factors, positive = self.counts.factors, scores > 0
        # x / f where x > 0, x * f elsewhere, in three calls and one new array rather than np.where's four and three:
        # after the model's step the caches are cold and each numpy call costs several microseconds
        divided = np.divide(scores, factors)
        scores *= factors
        np.copyto(scores, divided, where=positive)
        return scores


class PresenceFrequency:
    def __init__(self, counts: Counts):
        self.counts = counts

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        scores += self.counts.offsets  # an id outside the range gains 0: its score stays the same, bit for bit
        return scores


class Dry(Tracker):
    """DRY (see dry_penalty), its repeats followed as tokens are written instead of searched for in the whole text.

    After each token it keeps, for every earlier position i where a repeat of
    at least `allowed` ids ends (one id, when none are allowed), that repeat's
    length: the ids up to i equal the last ids for that many, breakers apart.
    A new token makes the ones it continues one longer (a repeat ending at
    i-1 before ends at i now), found through an index of where each run of
    `allowed` ids occurs; every other position is too short to count. So a
    step looks at the few places the text repeats, not at the whole text.
    """

    def __init__(self, multiplier: float, base: float, allowed: int, window: int, breakers: frozenset[int]):
        self.multiplier, self.base, self.allowed, self.window = multiplier, base, allowed, window
        self.breakers, self.gram = breakers, max(allowed, 1)

    def start(self, context: Context) -> None:
        self.where: dict[tuple[int, ...], list[int]] = {}  # each run of `gram` ids -> the positions it ends at
        self.repeats: list[dict[int, int]] = [{}]  # after each token: end position -> length of the repeat there
        self.grams: list[tuple[int, ...] | None] = []  # the run each written token ended, to take it back
        for n in range(1, len(context.ids) + 1):
            self._follow(context.ids[:n] if n < self.gram else context.ids[n - self.gram : n], n)
        del self.repeats[:-1], self.grams[:]

    def push(self, context: Context) -> None:
        self._follow(context.ids[-self.gram :], len(context.ids))

    def pop(self, n: int, context: Context) -> None:
        for _ in range(n):
            gram = self.grams.pop()
            if gram is not None:
                self.where[gram].pop()
            self.repeats.pop()

    def _follow(self, last: list[int], n: int) -> None:
        """The text is now `n` ids long, ending with `last` (its last `gram` ids, fewer at the start)."""
        repeats: dict[int, int] = {}
        gram = None
        if n >= self.gram:
            gram = tuple(last)
            ends = self.where.setdefault(gram, [])
            if ends and self.breakers.isdisjoint(gram):
                before, floor = self.repeats[-1], self.gram - 1
                repeats = {i: 1 + before.get(i - 1, floor) for i in ends}
            ends.append(n - 1)
        self.repeats.append(repeats)
        self.grams.append(gram)

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        repeats = self.repeats[-1]
        if not repeats:
            return scores
        ids, allowed = context.ids, self.allowed
        start = max(0, len(ids) - self.window) if self.window else 0  # a repeat counts inside the range only
        if len(ids) - start < 2:
            return scores
        longest: dict[int, int] = {}
        for i, k in repeats.items():
            if i < start:
                continue
            k = min(k, i - start + 1)
            if k >= allowed:
                following = ids[i + 1]
                if k > longest.get(following, -1):
                    longest[following] = k
        for token, k in longest.items():
            scores[token] += -dry_cost(self.multiplier, self.base, k - allowed)
        return scores


class LogitBias:
    """Biases given as text, on each kind's tokens: a phrase's first token wherever a word can start, each later one
    where the text so far ends with the phrase's tokens before it."""

    def __init__(self, biases: tuple[tuple[str, float], ...], decoder: Decoder):
        texts = decoder.token_texts()
        self.sequences: list[tuple[list[int], float, bool]] = []  # (ids, bias, whether its first token starts a word)
        for text, bias in biases:
            for variant in dict.fromkeys((text, " " + text)):
                ids = decoder.encode(variant)
                if not ids or not texts[ids[0]].strip():
                    continue  # a space on its own (a char model's): biasing every space is not what was asked
                self.sequences.append((ids, bias, not texts[ids[0]][:1].isalnum()))
        # each later token by the id before it, so a step looks only at the phrases the last id could be inside:
        # id before -> [(phrase, place in it, the ids before it, its id, bias)], in the order the biases add up
        self.after: dict[int, list[tuple[int, int, list[int], int, float]]] = {}
        for s, (ids, bias, _) in enumerate(self.sequences):
            for i in range(1, len(ids)):
                self.after.setdefault(ids[i - 1], []).append((s, i, ids[:i], ids[i], bias))

        # the first tokens' adds, at a word start and elsewhere: all a step adds unless the last id is inside a phrase
        self.firsts = {start: [(s, 0, ids[0], bias) for s, (ids, bias, own_start) in enumerate(self.sequences)
                               if own_start or start] for start in (True, False)}

    def __call__(self, logits: np.ndarray, context: Context) -> np.ndarray:
        before = context.text[-1:] or context.lead[-1:]
        adds = self.firsts[not before or not before.isalnum()]
        if context.ids and context.ids[-1] in self.after:
            adds = adds + [(s, i, token, bias) for s, i, prefix, token, bias in self.after[context.ids[-1]]
                           if context.ids[-i:] == prefix]
            adds.sort()  # in the phrases' order: the same token biased twice adds up the same way every time
        for _, _, token, bias in adds:
            logits[token] += bias
        return logits


class Survivors:
    """The tokens the cutters (top-k, top-p, min-p, typical-p) leave this step, kept so that they sort once and cut
    once: a numpy call costs about what a char model's whole chain may, so each one counts.

    `ids` and `values` (their scores) hold the tokens, likeliest first when
    `ranked`, and only the first `n` are left: a cutter that keeps the
    likeliest few shortens `n`, and `finish` sets the others' scores to -inf
    once all have run. The weights (exp of each score less the top one) and
    their running sum are computed once, for whichever cutters need them.
    """

    def __init__(self) -> None:
        self.ids: np.ndarray | None = None

    def clear(self) -> None:
        self.ids = None

    def rank(self, ids: np.ndarray, values: np.ndarray, n: int, ranked: bool = True) -> None:
        """Start from `ids` and their scores, the first `n` of them left."""
        self.ids, self.values, self.n, self.ranked = ids, values, n, ranked
        self._below = self._weights = self._sums = None

    def find(self, scores: np.ndarray, ranked: bool) -> int:
        """Find the tokens left, likeliest first when `ranked`; how many there are."""
        if self.ids is None:
            ids = (scores > NEG).nonzero()[0]
            self.rank(ids, scores[ids], ids.size, ranked=False)
        if ranked and not self.ranked:
            order = (-self.values).argsort(kind="stable")
            self.rank(self.ids[order], self.values[order], self.n)
        return self.n

    def below(self) -> np.ndarray:
        """Each score less the top one, likeliest first."""
        if self._below is None:
            self._below = self.values - self.values[0]
        return self._below

    def weights(self) -> np.ndarray:
        """exp(score - the top score), likeliest first."""
        if self._weights is None:
            self._weights = np.exp(self.below())
        return self._weights

    def sums(self) -> np.ndarray:
        """The running sum of the weights, likeliest first."""
        if self._sums is None:
            self._sums = self.weights().cumsum()
        return self._sums

    def finish(self, scores: np.ndarray) -> None:
        """Cut what the cutters left out."""
        if self.ids is not None and self.n < self.ids.size:
            scores[self.ids[self.n :]] = NEG


class TopK:
    def __init__(self, k: int, survivors: Survivors):
        self.k, self.survivors = k, survivors

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        k = self.k
        if not 0 < k < scores.size:
            return scores
        if scores.size <= SMALL_VOCABULARY:
            order = (-scores).argsort(kind="stable")
            values = scores[order]
            kth = values[k - 1]
            if kth == NEG:
                return scores  # fewer than k tokens are possible at all
            kept = k
            while kept < order.size and values[kept] == kth:
                kept += 1  # ties with the k-th stay, as top_k_filter keeps them
        else:  # the k likeliest by a partition; only they (and any tied with the k-th) are sorted
            kth = scores[(-scores).argpartition(k - 1)[:k]].min()
            if kth == NEG:
                return scores
            order = (scores >= kth).nonzero()[0]
            order = order[(-scores[order]).argsort(kind="stable")]
            scores[scores < kth] = NEG
            values, kept = scores[order], order.size
        self.survivors.rank(order, values, kept)
        return scores


class TopP:
    def __init__(self, p: float, survivors: Survivors):
        self.p, self.survivors = p, survivors

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        s = self.survivors
        if not 0 < self.p < 1 or not s.find(scores, ranked=True):
            return scores
        sums = s.sums()[: s.n]
        # a token stays while the likelier ones before it hold less than p: the first always, then as many as the
        # running sum stays under p of the total
        s.n = min(int(sums.searchsorted(self.p * sums[-1])) + 1, s.n)
        return scores


class MinP:
    def __init__(self, p: float, survivors: Survivors):
        self.p, self.floor, self.survivors = p, np.log(p), survivors

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        s = self.survivors
        if s.ids is None:  # the first cutter: no sort needed, the likeliest is the maximum
            scores[scores - scores.max() < self.floor] = NEG
        elif s.n and s.weights()[s.n - 1] < self.p:  # they fall from 1 (the likeliest): keep those at p or more
            s.n -= int(s.weights()[s.n - 1 :: -1].searchsorted(self.p))
        return scores


class Typical:
    """Typical-p on the survivors. The surprise of a token is log Z - d (d: its score less the top one, Z: the sum of
    the weights exp(d)), and the entropy is log Z - mean(d) weighted by exp(d), so a token's distance from the
    entropy is |d - that mean|: no logarithm, no normalization."""

    def __init__(self, p: float, survivors: Survivors):
        self.p, self.survivors = p, survivors

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        s = self.survivors
        if self.p >= 1 or not s.find(scores, ranked=False):
            return scores
        n = s.n
        if s.ranked:
            d, weights, total = s.below()[:n], s.weights()[:n], s.sums()[n - 1]
        else:
            d = s.values - s.values.max()
            weights = np.exp(d)
            total = weights.sum()
        distances = d - weights.dot(d) / total
        order = np.abs(distances, out=distances).argsort(kind="stable")
        sums = weights[order].cumsum()
        # as in top-p: the first always stays, then as many as the running sum before each stays under p
        scores[s.ids[order[int(sums.searchsorted(self.p * total)) + 1 :]]] = NEG
        return scores


class Temperature:
    def __init__(self, temperature: float):
        self.temperature = np.float32(temperature)

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        scores /= self.temperature
        return scores


class Chain:
    """The processors `sampling` turns on, in ORDER, over one generation; iterating it gives (name, processor).

    The loop starts it with the prompt, pushes each token written and pops
    the ones a banned phrase takes back, so the trackers (the penalties'
    counts, DRY's repeats, the copy guard) are always at the text's end.
    """

    def __init__(self, steps: list[tuple[str, Processor]], trackers: list[Tracker], survivors: Survivors):
        self.steps, self.trackers, self.survivors = steps, trackers, survivors
        self.processors = [p for _, p in steps]

    def __iter__(self) -> Iterator[tuple[str, Processor]]:
        return iter(self.steps)

    def start(self, context: Context) -> None:
        for tracker in self.trackers:
            tracker.start(context)

    def push(self, context: Context) -> None:
        for tracker in self.trackers:
            tracker.push(context)

    def pop(self, n: int, context: Context) -> None:
        for tracker in self.trackers:
            tracker.pop(n, context)

    def __call__(self, logits: torch.Tensor, context: Context) -> np.ndarray:
        """The scores the chain makes of `logits`: a float32 numpy copy, on the CPU, that the draw reads."""
        if logits.is_cpu and logits.dtype is torch.float32 and not logits.requires_grad:
            scores = logits.numpy().copy()
        else:
            scores = logits.detach().float().cpu().numpy()
        self.survivors.clear()
        for processor in self.processors:
            scores = processor(scores, context)
        self.survivors.finish(scores)
        return scores


def chain(sampling: Sampling, decoder: Decoder, guard: Processor | None = None) -> Chain:
    """The processors `sampling` turns on, in ORDER, with the names the tests check the order by."""
    s = sampling
    steps: list[tuple[str, Processor]] = []
    trackers: list[Tracker] = []
    survivors = Survivors()
    if s.logit_bias:
        steps.append(("logit_bias", LogitBias(s.logit_bias, decoder)))
    if guard is not None:
        steps.append(("copy_guard", guard))
        if isinstance(guard, Tracker):
            trackers.append(guard)
    if s.repetition_penalty != 1 or s.presence_penalty or s.frequency_penalty:
        counts = Counts(len(decoder.token_texts()), s.repetition_range, s.repetition_penalty, s.presence_penalty,
                        s.frequency_penalty)
        trackers.append(counts)
        if s.repetition_penalty != 1:
            steps.append(("repetition_penalty", RepetitionPenalty(counts)))
        if s.presence_penalty or s.frequency_penalty:
            steps.append(("presence_frequency", PresenceFrequency(counts)))
    if s.dry_multiplier:
        dry = Dry(s.dry_multiplier, s.dry_base, s.dry_allowed_length, s.dry_range, breaker_ids(decoder, s.dry_breakers))
        trackers.append(dry)
        steps.append(("dry", dry))
    if s.temperature >= MIN_TEMPERATURE and s.temperature != 1:
        steps.append(("temperature", Temperature(s.temperature)))
    if s.top_k is not None:
        steps.append(("top_k", TopK(s.top_k, survivors)))
    if s.top_p is not None:
        steps.append(("top_p", TopP(s.top_p, survivors)))
    if s.min_p is not None:
        steps.append(("min_p", MinP(s.min_p, survivors)))
    if s.typical_p is not None:
        steps.append(("typical_p", Typical(s.typical_p, survivors)))
    return Chain(steps, trackers, survivors)


def breaker_ids(decoder: Decoder, breakers: tuple[str, ...]) -> frozenset[int]:
    """The ids whose text holds one of DRY's sequence breakers (found once per model and breakers: GPT-2 has 50,257)."""
    kept = decoder.__dict__.setdefault("_dry_breakers", {})
    if breakers not in kept:
        kept[breakers] = frozenset(i for i, t in enumerate(decoder.token_texts()) if any(b in t for b in breakers))
    return kept[breakers]
