"""Decoders made of decoders: several models blended into one, and one model guided by a second context.

Both are contract.sampling Decoders, so the one loop (contract.loop) writes
through them with the whole chain, banned phrases and the copy guard, as it
writes through a kind's own.

A `Blend` is a product of experts: each step it feeds every model the token
written and returns the weighted sum of their log-probabilities, which the
chain then samples once. Models of one kind with one tokenizer (GPT-2s) share
their ids. Char models trained on different texts have different alphabets:
the blend writes only the characters every one of them has (a character one
lacks has no probability under it, so the product has none), and says which
those are (`lacking`). Each model keeps its own session state, so prefix reuse
works per model.

`Guided` is classifier-free guidance (Sanchez et al. 2023, "Stay on topic
with Classifier-Free Guidance"): the model reads the prompt in two contexts,
a conditioned one (an author's tag before it, or the prompt itself) and an
unconditioned one (the prompt without the tag, or no prompt at all), is fed
each written token in both, and writes from
uncond + G * (cond - uncond) in log-probability space; G = 1 is the model
on the conditioned context alone, G > 1 pushes further towards the condition.
`Prefixed` is the conditioned context alone (an author's tag before the prompt).
"""

from collections.abc import Callable, Sequence

import torch

from .sampling import Cursor, Decoder


class Blend:
    """Several decoders as one: the weighted sum of their log-softmaxes over the tokens they share (see the module)."""

    def __init__(self, decoders: Sequence[Decoder], weights: Sequence[float], names: Sequence[str]):
        self.decoders, self.weights = list(decoders), [float(w) for w in weights]
        self.active = [i for i, w in enumerate(self.weights) if w > 0]  # a model with no weight is never stepped
        texts = [d.token_texts() for d in self.decoders]
        self.end_id = self.decoders[0].end_id
        if all(t == texts[0] for t in texts):  # one tokenizer: the ids are shared as they are
            self.texts, self.index = texts[0], [None] * len(texts)
            self.lacking: dict[str, str] = {}
            return
        # different alphabets (char models): the characters every model has, in the first model's order
        shared = [t for t in texts[0] if all(t in other for other in texts[1:])]
        everything = set().union(*texts)
        self.texts = shared
        self.index = [torch.tensor([own.index(t) for t in shared]) for own in texts]
        self._own = [index.tolist() for index in self.index]  # the same as lists: a step's lookup, not a tensor's
        self.lacking = {name: "".join(sorted(everything - set(own))) for name, own in zip(names, texts, strict=True)
                        if everything - set(own)}
        self._ids = {t: i for i, t in enumerate(shared)}

    def start(self, prompt: str, state: object | None = None, keep: int = 0) -> "BlendCursor":
        states = state if isinstance(state, tuple) else (None,) * len(self.decoders)
        cursors = {i: self.decoders[i].start(prompt, states[i], keep) for i in self.active}
        return BlendCursor(self, cursors)

    def new_state(self) -> tuple | None:
        """Each model's own state (None for one that keeps none), so a session reuses each one's prefix."""
        states = tuple(getattr(d, "new_state", lambda: None)() for d in self.decoders)
        return states if any(s is not None for s in states) else None

    def encode(self, text: str) -> list[int]:
        ids = self.decoders[0].encode(text)
        return ids if self.index[0] is None else self._shared(ids)

    def decode(self, ids: list[int]) -> str:
        return self.decoders[0].decode(ids) if self.index[0] is None else "".join(self.texts[i] for i in ids)

    def token_texts(self) -> list[str]:
        return list(self.texts)

    def mix(self, logits: dict[int, torch.Tensor]) -> torch.Tensor:
        """The product of the experts' distributions, as log-probabilities over the shared tokens."""
        if len(logits) == 1 and self.index[self.active[0]] is None:
            return logits[self.active[0]]  # one model with all the weight writes exactly as it does alone
        total = None
        for i, values in logits.items():
            own = torch.log_softmax(values.float(), dim=-1)
            if self.index[i] is not None:
                own = own[self.index[i].to(own.device)]
            total = self.weights[i] * own if total is None else total + self.weights[i] * own
        assert total is not None
        return total

    def own(self, i: int, token: int) -> int:
        """Model i's id for the shared token `token`."""
        return token if self.index[i] is None else self._own[i][token]

    def _shared(self, ids: list[int]) -> list[int]:
        """The first model's ids as shared ones, leaving out characters another model lacks."""
        texts = self.decoders[0].token_texts()
        return [self._ids[texts[i]] for i in ids if texts[i] in self._ids]


class BlendCursor:
    """Every blended model after the prompt, stepped together (see contract.sampling.Cursor)."""

    def __init__(self, blend: Blend, cursors: dict[int, Cursor]):
        self.blend, self.cursors = blend, cursors
        first = blend.active[0]
        ids = cursors[first].prompt_ids
        self.prompt_ids = ids if blend.index[first] is None else _inverse(blend, first, ids)
        self.logits = blend.mix({i: c.logits for i, c in cursors.items()})

    def feed(self, token: int) -> torch.Tensor:
        self.logits = self.blend.mix({i: c.feed(self.blend.own(i, token)) for i, c in self.cursors.items()})
        return self.logits

    def rewind(self, n: int) -> torch.Tensor:
        self.logits = self.blend.mix({i: c.rewind(n) for i, c in self.cursors.items()})
        return self.logits


def _inverse(blend: Blend, i: int, ids: list[int]) -> list[int]:
    """Model i's ids as shared ones, leaving out those not shared."""
    index = blend.index[i]
    assert index is not None
    back = {int(own): shared for shared, own in enumerate(index.tolist())}
    return [back[t] for t in ids if t in back]


class Prefixed:
    """One decoder that reads `before` ahead of every prompt: an author's tag, so that a model trained on several
    authors writes as that one (the tag is where a training document of theirs starts)."""

    def __init__(self, decoder: Decoder, before: str):
        self.decoder, self.before = decoder, before
        self.end_id = decoder.end_id
        self.encode, self.decode, self.token_texts = decoder.encode, decoder.decode, decoder.token_texts
        self.new_state = getattr(decoder, "new_state", lambda: None)

    def start(self, prompt: str, state: object | None = None, keep: int = 0) -> Cursor:
        return self.decoder.start(self.before + prompt, state, keep)


class Guided:
    """Classifier-free guidance over one decoder: `conditioned(prompt)` against `unconditioned(prompt)` (see the
    module), at scale `scale`."""

    def __init__(self, decoder: Decoder, scale: float, conditioned: Callable[[str], str],
                 unconditioned: Callable[[str], str]):
        self.decoder, self.scale = decoder, scale
        self.conditioned, self.unconditioned = conditioned, unconditioned
        self.end_id = decoder.end_id
        self.encode, self.decode, self.token_texts = decoder.encode, decoder.decode, decoder.token_texts

    def start(self, prompt: str, state: object | None = None, keep: int = 0) -> "GuidedCursor":
        cond_state, uncond_state = state if isinstance(state, tuple) else (None, None)
        return GuidedCursor(self.decoder.start(self.conditioned(prompt), cond_state, keep),
                            self.decoder.start(self.unconditioned(prompt), uncond_state, keep), self.scale)

    def new_state(self) -> tuple | None:
        """A state for each context, so that both reuse their prefix."""
        new_state = getattr(self.decoder, "new_state", None)
        return None if new_state is None else (new_state(), new_state())


class GuidedCursor:
    """A model in two contexts, fed the same tokens: uncond + G * (cond - uncond) over log-probabilities."""

    def __init__(self, cond: Cursor, uncond: Cursor, scale: float):
        self.cond, self.uncond, self.scale = cond, uncond, scale
        self.prompt_ids = cond.prompt_ids
        self.logits = self._guide(cond.logits, uncond.logits)

    def _guide(self, cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
        cond, uncond = torch.log_softmax(cond.float(), dim=-1), torch.log_softmax(uncond.float(), dim=-1)
        return uncond + self.scale * (cond - uncond)

    def feed(self, token: int) -> torch.Tensor:
        self.logits = self._guide(self.cond.feed(token), self.uncond.feed(token))
        return self.logits

    def rewind(self, n: int) -> torch.Tensor:
        self.logits = self._guide(self.cond.rewind(n), self.uncond.rewind(n))
        return self.logits
