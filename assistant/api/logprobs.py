"""Token probabilities in the APIs' shapes: OpenAI's completions (the legacy one), OpenAI's chat, and KoboldCpp's.

The probabilities are the model's own, before the sampler chain changed
them, as contract.loop.Token carries them: a token the chain made likelier
(a logit bias) still shows how likely the model found it. A token's text is
"" while it holds part of a character (the token that completes the
character carries it), and a choice's tokens put together are its text: the
last one, where a stop string or a length cut through it, is cut with it
(`held`). In a stream each token goes out with the piece that completes its
text (`Handed`), so that the tokens of all the chunks are the text too.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from contract.loop import Token

FLOOR = -9999.0  # the logprob of a probability too small for a float: OpenAI's own stand-in (JSON has no -Infinity)


def logprob(probability: float | None) -> float:
    return math.log(probability) if probability else FLOOR


def held(tokens: Sequence[Token], text: str) -> tuple[Token, ...]:
    """`tokens` as far as `text` holds them, the last one cut where the text ends."""
    kept, at = [], 0
    for token in tokens:
        room = len(text) - at
        if room <= 0 and token.text:
            break
        kept.append(token if len(token.text) <= room else replace(token, text=token.text[:room]))
        at += len(kept[-1].text)
    return tuple(kept)


@dataclass
class Handed:
    """Which of a stream's tokens its pieces have shown: a token goes out with the piece that completes its text
    (the pieces can lag the tokens: text that could start a stop string is held back)."""

    tokens: list[Token]  # the stream's, growing as it writes
    given: int = 0  # tokens handed out
    shown: int = 0  # characters the pieces have shown
    covered: int = 0  # characters the tokens handed out hold

    def piece(self, text: str) -> tuple[Token, ...]:
        """The tokens that `text`, the next piece, completes."""
        self.shown += len(text)
        start = self.given
        while self.given < len(self.tokens) and self.covered + len(self.tokens[self.given].text) <= self.shown:
            self.covered += len(self.tokens[self.given].text)
            self.given += 1
        return tuple(self.tokens[start : self.given])


def _entry(text: str, probability: float | None) -> dict[str, Any]:
    return {"token": text, "logprob": logprob(probability), "bytes": list(text.encode("utf-8", "replace"))}


def chat(tokens: Sequence[Token]) -> dict[str, Any]:
    """OpenAI chat's `logprobs`: each token with its logprob, its UTF-8 bytes and the likeliest tokens there."""
    return {"content": [{**_entry(t.text, t.probability), "top_logprobs": [_entry(*a) for a in t.alternatives]}
                        for t in tokens]}


def completion(tokens: Sequence[Token], offset: int) -> dict[str, Any]:
    """OpenAI completions' `logprobs`: parallel lists, `top_logprobs` a map of text to logprob holding the likeliest
    tokens and the one written (OpenAI's "up to logprobs + 1"), `text_offset` where each starts in the choice's text
    (`offset`: the first one's, after an echoed prompt or the chunks before)."""
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.text)
    tops = []
    for token in tokens:
        top = {text: logprob(p) for text, p in reversed(token.alternatives)}  # the likelier of two alike texts wins
        top.setdefault(token.text, logprob(token.probability))
        tops.append(top)
    return {"tokens": [t.text for t in tokens], "token_logprobs": [logprob(t.probability) for t in tokens],
            "top_logprobs": tops, "text_offset": offsets}


def kobold(tokens: Sequence[Token]) -> dict[str, Any]:
    """KoboldCpp's `logprobs`: chat's `content` and the completions' lists side by side, as KoboldCpp answers."""
    return {**chat(tokens), **completion(tokens, 0)}
