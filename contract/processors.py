"""The sampler chain: each processor takes a logits vector and the text so far and returns new logits.

The order is fixed (ORDER), as in KoboldCpp and HF's `LogitsProcessor` list:
what changes which tokens are possible or likely from the text comes first
(logit bias, the copy guard, the repetition penalty over its range,
presence and frequency penalties, DRY), then temperature, and last what cuts
the tail of the distribution it leaves (top-k, top-p, min-p, typical-p). A
processor whose setting is off is not in the chain at all, so temperature
sampling alone costs what it always did.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

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


Processor = Callable[[torch.Tensor, Context], torch.Tensor]


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
    penalty = torch.tensor([multiplier * base ** min(k - allowed, MAX_DRY_EXPONENT) for k in hits.values()],
                           dtype=logits.dtype, device=logits.device)
    return logits.index_add(0, index, -penalty)


def _recent(ids: list[int], window: int) -> list[int]:
    return ids[-window:] if window else ids


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

    def __call__(self, logits: torch.Tensor, context: Context) -> torch.Tensor:
        logits = logits.clone()
        before = (context.lead + context.text)[-1:]
        at_word_start = not before or not before.isalnum()
        for ids, bias, own_start in self.sequences:
            for i, token in enumerate(ids):
                if i == 0:
                    if own_start or at_word_start:
                        logits[token] += bias
                elif context.ids[-i:] == ids[:i]:
                    logits[token] += bias
        return logits


def chain(sampling: Sampling, decoder: Decoder, guard: Processor | None = None) -> list[tuple[str, Processor]]:
    """The processors `sampling` turns on, in ORDER, with the names the tests check the order by."""
    s = sampling
    steps: list[tuple[str, Processor]] = []
    if s.logit_bias:
        steps.append(("logit_bias", LogitBias(s.logit_bias, decoder)))
    if guard is not None:
        steps.append(("copy_guard", guard))
    if s.repetition_penalty != 1:
        steps.append(("repetition_penalty", lambda x, c: repetition_penalty(
            x, _recent(c.ids, s.repetition_range), s.repetition_penalty)))
    if s.presence_penalty or s.frequency_penalty:
        steps.append(("presence_frequency", lambda x, c: presence_frequency(
            x, _recent(c.ids, s.repetition_range), s.presence_penalty, s.frequency_penalty)))
    if s.dry_multiplier:
        breakers = breaker_ids(decoder, s.dry_breakers)
        steps.append(("dry", lambda x, c: dry_penalty(x, _recent(c.ids, s.dry_range), s.dry_multiplier, s.dry_base,
                                                      s.dry_allowed_length, breakers)))
    if s.temperature >= MIN_TEMPERATURE and s.temperature != 1:
        steps.append(("temperature", lambda x, c: x / s.temperature))
    if s.top_k is not None:
        steps.append(("top_k", lambda x, c: top_k_filter(x, s.top_k)))
    if s.top_p is not None:
        steps.append(("top_p", lambda x, c: top_p_filter(x, s.top_p)))
    if s.min_p is not None:
        steps.append(("min_p", lambda x, c: min_p_filter(x, s.min_p)))
    if s.typical_p is not None:
        steps.append(("typical_p", lambda x, c: typical_filter(x, s.typical_p)))
    return steps


def breaker_ids(decoder: Decoder, breakers: tuple[str, ...]) -> frozenset[int]:
    """The ids whose text holds one of DRY's sequence breakers (found once per model and breakers: GPT-2 has 50,257)."""
    kept = decoder.__dict__.setdefault("_dry_breakers", {})
    if breakers not in kept:
        kept[breakers] = frozenset(i for i, t in enumerate(decoder.token_texts()) if any(b in t for b in breakers))
    return kept[breakers]
