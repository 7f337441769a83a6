"""The one sampling loop every kind writes through: the chain, banned phrases, the copy guard and probabilities.

A kind supplies a Decoder (contract.sampling): the model after a prompt,
fed one token at a time, rewound by N tokens, and the ids' text. The loop
owns everything else, the same for every kind: each step it runs the logits
through the chain (contract.processors), draws a token, follows its text,
and checks the text for banned phrases. When the text comes to hold one
(any case, whole words), it rewinds to the token where the phrase began,
forbids that token there, and writes on; after MAX_RETRIES tries at one
position it ends the text before it. Tokens are handed out only once no
banned phrase can still take them back: the loop holds back as many
characters as the longest phrase and the character after it need, so a
streaming client never sees text that is later retracted.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .copyguard import CopyGuard
from .processors import NEG, Context, chain, draw
from .sampling import MIN_TEMPERATURE, Decoder, Sampling

MAX_RETRIES = 32  # tokens forbidden at one position before the loop gives up there and ends the text
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Token:
    """One written token: its id, its text ("" while it holds part of a character), and what the model thought."""

    id: int
    text: str
    probability: float | None = None  # the model's own (softmax of its logits, before the chain), when asked for
    alternatives: tuple[tuple[str, float], ...] = ()  # the likeliest tokens there, (text, probability), likeliest first

    def to_json(self) -> dict:
        return {"text": self.text, "probability": self.probability, "alternatives": [list(a) for a in self.alternatives]}


class Bans:
    """Banned phrases as one pattern: whole words in any case; a match counts once the character after it is known."""

    def __init__(self, phrases: tuple[str, ...]):
        words = "|".join(re.escape(p.strip()) for p in sorted(phrases, key=len, reverse=True))
        self.open = re.compile(rf"(?<!\w)(?:{words})(?=\W)", re.IGNORECASE)  # a character follows it
        self.closed = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)  # at the end of the text
        self.hold = max(len(p.strip()) for p in phrases) + 1

    def find(self, text: str, lead: str, ended: bool) -> int | None:
        """Where a banned phrase starts in `text` (after `lead`, the prompt's end), among its last characters."""
        whole = lead + text
        pattern = self.closed if ended else self.open
        found = pattern.search(whole, max(len(lead), len(whole) - self.hold - 1))
        return None if found is None else found.start() - len(lead)


def tokens(decoder: Decoder, prompt: str, sampling: Sampling, generator: torch.Generator, *, state: object = None,
           guard: CopyGuard | None = None, alternatives: int | None = None) -> Iterator[Token]:
    """Written tokens after `prompt`, for as long as the caller asks or until the model ends the document.

    `guard` is a copy guard (contract.copyguard) or None; `alternatives`, how
    many of the likeliest tokens each Token lists (None: no probabilities at
    all, which a char model's few-microsecond step would notice).
    """
    bans = Bans(sampling.ban) if sampling.ban else None
    hold = bans.hold if bans else 0
    cursor = decoder.start(prompt, state, keep=hold + 1 if bans else 0)
    processors = chain(sampling, decoder, guard)
    greedy = sampling.temperature < MIN_TEMPERATURE
    context = Context(list(cursor.prompt_ids), "", prompt[-1:])
    processors.start(context)
    n_prompt = len(context.ids)
    written: list[Token] = []
    starts: list[int] = []  # where each written token's text starts
    pending: list[tuple[int, ...]] = []  # each token's ids still waiting for the rest of a character
    forbidden: dict[int, set[int]] = {}  # position -> tokens a banned phrase took back there
    shown = 0  # tokens handed out
    logits = cursor.logits
    while True:
        position = len(written)
        scores = processors(logits, context)
        if position in forbidden:
            scores[list(forbidden[position])] = NEG
        # only a ban or the guard forbids tokens outright, so only then can nothing be left
        cut = position in forbidden or (guard is not None and guard.forbade)
        if cut and not np.isfinite(scores).any():
            break  # nothing may be written here
        token = int(scores.argmax()) if greedy else draw(torch.from_numpy(scores), generator)
        ended = token == decoder.end_id
        if not ended:
            waiting = (*(pending[-1] if pending else ()), token)
            text = decoder.decode(list(waiting))
            if text.endswith(REPLACEMENT):
                text = ""
            else:
                waiting = ()
            written.append(_token(logits, token, text, decoder, alternatives))
            starts.append(len(context.text))
            pending.append(waiting)
            context.ids.append(token)
            context.text += text
            processors.push(context)
        hit = bans.find(context.text, context.lead, ended) if bans else None
        if hit is not None:
            back = max(i for i, start in enumerate(starts) if start <= hit)  # the token the phrase starts in
            tried = forbidden.setdefault(back, set())
            tried.add(written[back].id)
            for later in [p for p in forbidden if p > back]:
                del forbidden[later]
            if back < shown or len(tried) > MAX_RETRIES:
                yield from written[shown:back]  # give up: end before the phrase
                return
            fed = len(written) - (0 if ended else 1)  # the last token drawn is not fed yet
            n = fed - back
            if n > 0:
                logits = cursor.rewind(n)
            taken = len(written) - back
            del written[back:], starts[back:], pending[back:], context.ids[n_prompt + back :]
            context.text = "".join(t.text for t in written)
            processors.pop(taken, context)
            continue
        if ended:
            yield from written[shown:]
            return
        while shown < len(written) and starts[shown] + len(written[shown].text) <= len(context.text) - hold:
            yield written[shown]
            shown += 1
        logits = cursor.feed(token)


def _token(logits: torch.Tensor, token: int, text: str, decoder: Decoder, alternatives: int | None) -> Token:
    """The Token for `token`, with its probability and the likeliest alternatives when asked for."""
    if alternatives is None:
        return Token(token, text)
    probs = torch.softmax(logits.float(), dim=-1)
    if not alternatives:
        return Token(token, text, float(probs[token]))
    top = torch.topk(probs, min(alternatives, probs.numel()))
    return Token(token, text, float(probs[token]),
                 tuple((decoder.decode([i]), float(p)) for i, p in zip(top.indices.tolist(), top.values.tolist(),
                                                                        strict=True)))
