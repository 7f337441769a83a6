"""The sampler chain: each processor takes the next-token scores and the text so far and returns the new scores.

The order is fixed (ORDER), as in KoboldCpp and HF's `LogitsProcessor` list:
what changes which tokens are possible or likely from the text comes first
(logit bias, the copy guard, the repetition penalty over its range,
presence and frequency penalties, DRY), then temperature, and last what cuts
the tail of the distribution it leaves (top-k, top-p, min-p, typical-p). A
processor whose setting is off is not in the chain at all.

Each processor is here twice, on purpose. The functions (repetition_penalty,
dry_penalty, top_p_filter, ...) are the plain definitions on a torch vector,
recomputed from every id at each call: the hand-computed tests check them,
training's samples draw through top-k and top-p, and the tests check the
chain against them token for token. The chain the loop runs (`chain`) gives
the same numbers at a char model's speed, where a step is a few hundred
microseconds and a torch or numpy call costs one or several: every step but
the copy guard is one compiled pass (contract.compiled) over a numpy copy of
the logits and a buffer of the ids so far.
"""

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


class History(Tracker):
    """Every id so far (prompt and written) in a numpy buffer the compiled chain reads, grown as tokens are written."""

    def start(self, context: Context) -> None:
        self.ids = np.zeros(max(64, 2 * len(context.ids)), np.int64)
        self.n = len(context.ids)
        self.ids[: self.n] = context.ids

    def push(self, context: Context) -> None:
        if self.n == self.ids.size:
            self.ids = np.concatenate([self.ids, np.zeros_like(self.ids)])
        self.ids[self.n] = context.ids[-1]
        self.n += 1

    def pop(self, n: int, context: Context) -> None:
        self.n -= n


class LogitBias:
    """Biases given as text, on each kind's tokens: a phrase's first token wherever a word can start, each later one
    where the text so far ends with the phrase's tokens before it. A bias given by token id (OpenAI's API gives them
    so) is on that id alone, at every step."""

    def __init__(self, biases: tuple[tuple[str | int, float], ...], decoder: Decoder):
        check_token_ids(biases, decoder)
        texts = decoder.token_texts()
        self.sequences: list[tuple[list[int], float, bool]] = []  # (ids, bias, whether its first token starts a word)
        for text, bias in biases:
            if isinstance(text, int):
                self.sequences.append(([text], bias, True))  # a word may start anywhere it is concerned
                continue
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
        # the same as the arrays the compiled chain takes: (ids, biases)
        self.first_arrays = {start: _arrays(adds) for start, adds in self.firsts.items()}

    def adds(self, context: Context) -> tuple[np.ndarray, np.ndarray]:
        """The ids this step biases and by how much, in the phrases' order: the same token biased twice adds up the
        same way every time."""
        before = context.text[-1:] or context.lead[-1:]
        start = not before or not before.isalnum()
        if not context.ids or context.ids[-1] not in self.after:
            return self.first_arrays[start]
        inside = [(s, i, token, bias) for s, i, prefix, token, bias in self.after[context.ids[-1]]
                  if context.ids[-i:] == prefix]
        return _arrays(sorted(self.firsts[start] + inside)) if inside else self.first_arrays[start]

    def __call__(self, logits: torch.Tensor, context: Context) -> torch.Tensor:
        for token, bias in zip(*self.adds(context), strict=True):
            logits[token] += bias
        return logits


def check_token_ids(biases: tuple[tuple[str | int, float], ...], decoder: Decoder) -> None:
    """A one-line error for a bias on a token id the model does not have (checked before writing starts)."""
    from corpora import UserError

    ids = [key for key, _ in biases if isinstance(key, int)]
    if not ids:
        return  # GPT-2's token texts are decoded only when asked for
    size = len(decoder.token_texts())
    if unknown := sorted(key for key in ids if key >= size):
        raise UserError(f"a logit bias names token {unknown[0]}: this model's tokens are 0 to {size - 1}")


def _arrays(adds: list[tuple[int, int, int, float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([a[2] for a in adds], np.int64), np.array([a[3] for a in adds], np.float32)


class Compiled:
    """Every step but the copy guard as one compiled pass (contract.compiled.shape), named in the chain once for
    each step it applies. With a guard it runs in two parts, the logit bias before the guard (`bias` given) and the
    rest after (`bias` None)."""

    def __init__(self, sampling: Sampling, decoder: Decoder, bias: LogitBias | None, history: History, parts: str):
        from . import compiled as c

        s = sampling
        self.shape, self.bias, self.history = c.shape, bias, history
        self.parts = {"all": c.BIAS | c.REST, "bias": c.BIAS, "rest": c.REST}[parts]
        self.floats = np.zeros(9)
        self.floats[[c.PENALTY, c.PRESENCE, c.FREQUENCY, c.DRY_MULTIPLIER, c.DRY_BASE]] = (
            s.repetition_penalty, s.presence_penalty, s.frequency_penalty, s.dry_multiplier, s.dry_base)
        self.floats[c.TEMPERATURE] = s.temperature if s.temperature >= MIN_TEMPERATURE else 1.0  # greedy: argmax
        self.floats[[c.TOP_P, c.MIN_P, c.TYPICAL_P]] = (
            1.0 if s.top_p is None else s.top_p, s.min_p or 0.0, 1.0 if s.typical_p is None else s.typical_p)
        self.ints = np.zeros(4, np.int64)
        self.ints[[c.REPETITION_RANGE, c.DRY_ALLOWED, c.DRY_RANGE, c.TOP_K]] = (
            s.repetition_range, s.dry_allowed_length, s.dry_range, s.top_k or 0)
        self.breakers = np.zeros(0, np.bool_)  # read by DRY alone: GPT-2's token texts are not decoded for less
        if s.dry_multiplier:
            self.breakers = np.zeros(len(decoder.token_texts()), np.bool_)
            self.breakers[list(breaker_ids(decoder, s.dry_breakers))] = True
        self.no_bias = (np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __call__(self, scores: np.ndarray, context: Context) -> np.ndarray:
        bias_ids, biases = self.no_bias if self.bias is None else self.bias.adds(context)
        h = self.history
        self.shape(scores, h.ids, h.n, bias_ids, biases, self.breakers, self.floats, self.ints, self.parts)
        return scores


class Chain:
    """The processors `sampling` turns on, in ORDER, over one generation; iterating it gives (name, processor).

    The loop starts it with the prompt, pushes each token written and pops
    the ones a banned phrase takes back, so the trackers (the ids the
    compiled pass reads, the copy guard) are always at the text's end.
    """

    def __init__(self, steps: list[tuple[str, Processor]], trackers: list[Tracker]):
        self.steps, self.trackers = steps, trackers
        # a processor named for several steps (the compiled pass) runs once
        self.processors = list(dict.fromkeys(p for _, p in steps))

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
        for processor in self.processors:
            scores = processor(scores, context)
        return scores


def chain(sampling: Sampling, decoder: Decoder, guard: Processor | None = None) -> Chain:
    """The processors `sampling` turns on, in ORDER, with the names the tests check the order by."""
    s = sampling
    names = [name for name, on in (
        ("logit_bias", bool(s.logit_bias)), ("copy_guard", guard is not None),
        ("repetition_penalty", s.repetition_penalty != 1),
        ("presence_frequency", bool(s.presence_penalty or s.frequency_penalty)),
        ("dry", bool(s.dry_multiplier)), ("temperature", MIN_TEMPERATURE <= s.temperature != 1),
        ("top_k", s.top_k is not None), ("top_p", s.top_p is not None), ("min_p", s.min_p is not None),
        ("typical_p", s.typical_p is not None)) if on]
    trackers: list[Tracker] = [guard] if isinstance(guard, Tracker) else []
    if names == ["copy_guard"] or not names:
        return Chain([(name, guard) for name in names], trackers)
    history = History()
    trackers.append(history)
    bias = LogitBias(s.logit_bias, decoder) if s.logit_bias else None
    if guard is None:
        every = Compiled(s, decoder, bias, history, "all")
        return Chain([(name, every) for name in names], trackers)
    # the guard sees the biased scores, as ORDER has it
    before, after = Compiled(s, decoder, bias, history, "bias"), Compiled(s, decoder, None, history, "rest")
    steps = [(name, before if name == "logit_bias" else guard if name == "copy_guard" else after) for name in names]
    return Chain(steps, trackers)


def breaker_ids(decoder: Decoder, breakers: tuple[str, ...]) -> frozenset[int]:
    """The ids whose text holds one of DRY's sequence breakers (found once per model and breakers: GPT-2 has 50,257)."""
    kept = decoder.__dict__.setdefault("_dry_breakers", {})
    if breakers not in kept:
        kept[breakers] = frozenset(i for i, t in enumerate(decoder.token_texts()) if any(b in t for b in breakers))
    return kept[breakers]
