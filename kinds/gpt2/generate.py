"""Token-by-token sampling from a GPT-2 with its KV cache.

Shared by the samples shown during training and by `assistant generate`, so
both draw the same way (contract.sampling picks each token).
"""

import contextlib
import inspect
from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn
from transformers import GPT2LMHeadModel

from contract.sampling import sampled_ids

from .fast import KVCache, supports

# transformers 5.2x renamed `past_key_values` (argument and output) to `cache`; support both spellings
CACHE = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


class PlainCache:
    """The reference path: Hugging Face's forward with its own cache, one call per chunk of ids."""

    def __init__(self, model: nn.Module):
        self.model, self.past, self.ids = model, None, []

    def keep(self, ids: list[int]) -> list[int]:
        """Nothing is kept between generations here: all of `ids` is fed."""
        self.past, self.ids = None, []
        return ids

    @torch.no_grad()
    def feed(self, ids: list[int]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        out = self.model(input_ids=torch.tensor([ids], device=device), use_cache=True, **{CACHE: self.past})
        self.past = getattr(out, CACHE)
        self.ids.extend(ids)
        return out.logits[0, -1]


class Cache(Protocol):
    """What generate_ids steps through: GPT-2's keys and values for `ids`, fed in chunks."""

    ids: list[int]

    def keep(self, ids: list[int]) -> list[int]: ...
    def feed(self, ids: list[int]) -> torch.Tensor: ...


def new_cache(model: nn.Module, fast: bool = True) -> Cache:
    """The fast path's cache for a plain GPT-2 in eval mode (kinds.gpt2.fast), else the reference one.

    On a GPU the fast path is the static KV cache the issue of interactive speed asks for: allocated once,
    written in place, no per-token concatenation.
    """
    if fast and supports(model):
        return KVCache(model)
    return PlainCache(model)


def precision_for(device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """The weights' dtype for writing on `device`, and the autocast dtype to run them under (None: none).

    Writing needs no float32 master copy, so a GPU with bf16 holds the weights in bf16: half the bytes to
    read per token, and bf16's range is float32's, so nothing overflows. On Apple's MPS fp16 has no such
    range, so the weights stay float32 and only the products run in fp16 under autocast, which keeps
    softmax, LayerNorm and the loss-like reductions in float32. The CPU writes in float32 (or int8, see
    kinds.gpt2.quantize).
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    if device.type == "mps":
        return torch.float32, torch.float16
    return torch.float32, None


def writing_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast `precision_for` asks for on `device`, around each forward pass of a generation."""
    dtype = precision_for(device)[1]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class GPT2Cursor:
    """GPT-2 after a prime, stepped one token at a time through a cache (see contract.sampling.Cursor).

    When the context window fills, the cache is rebuilt from the last half of
    the text: one longer forward pass every n_ctx/2 tokens instead of one per token.
    A `cache` passed in may hold an earlier generation's ids: the prefix the
    prime shares with them is kept and only the rest is fed (see KVCache.keep).
    A prime longer than the context is read from a `window` of its end.
    A rewind moves the cache's length back: the same `keep`, so only the last
    id left is fed again. `model` is None for a cache that computes elsewhere.
    """

    def __init__(self, model: nn.Module | None, prime: list[int], n_ctx: int, cache: Cache):
        self.cache, self.n_ctx = cache, n_ctx
        self.device = next(model.parameters()).device if model is not None else torch.device("cpu")
        self.prompt_ids = list(prime)
        self.context = list(prime)
        self.logits = self._feed(cache.keep(window(self.context, n_ctx)))

    def _feed(self, ids: list[int]) -> torch.Tensor:
        with writing_autocast(self.device):
            return self.cache.feed(ids)

    def feed(self, token: int) -> torch.Tensor:
        self.context.append(token)
        if len(self.cache.ids) + 1 >= self.n_ctx:
            self.cache.ids.clear()
            return self._feed(self.cache.keep(self.context[-(self.n_ctx // 2) :]))
        return self._feed([token])

    def rewind(self, n: int) -> torch.Tensor:
        del self.context[len(self.context) - n :]
        return self._feed(self.cache.keep(window(self.context, self.n_ctx)))


def generate_ids(
    model: nn.Module | None,
    prime: list[int],
    generator: torch.Generator,
    n_ctx: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    *,
    fast: bool = True,
    cache: Cache | None = None,
) -> Iterator[int]:
    """Endless next-token ids after `prime` (see contract.sampling.sampled_ids); `model` is None for a cache that
    computes elsewhere (kinds.gpt2.llamacpp)."""
    if cache is None:
        assert model is not None
        cache = new_cache(model, fast)
    return sampled_ids(GPT2Cursor(model, prime, n_ctx, cache), generator, temperature, top_k, top_p)


def window(ids: list[int], n_ctx: int) -> list[int]:
    """The end of `ids` a generation reads: all of it when it fits the context (with room for one new token), else
    from a start that moves in steps of a quarter of the context (so between 3/4 of it and all of it).

    A story sent again with a few more words keeps its window's start, and so
    its cache (see KVCache.keep): a start that slid with every token would
    change every position and make each resent story cost a whole context.
    """
    room = n_ctx - 1
    if len(ids) <= room:
        return ids
    step = max(1, n_ctx // 4)
    start = -(-(len(ids) - room) // step) * step  # rounded up: never more than `room`
    return ids[start:]
