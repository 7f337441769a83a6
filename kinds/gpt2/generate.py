"""Token-by-token sampling from a GPT-2 with its KV cache.

Shared by the samples shown during training and by `assistant generate`, so
both draw the same way (kinds.sampling picks each token).
"""

import inspect
from collections.abc import Iterator

import torch
from torch import nn
from transformers import GPT2LMHeadModel

from ..sampling import sample_next

# transformers 5.2x renamed `past_key_values` (argument and output) to `cache`; support both spellings
CACHE = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


@torch.no_grad()
def generate_ids(
    model: nn.Module,
    prime: list[int],
    generator: torch.Generator,
    n_ctx: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Iterator[int]:
    """Endless next-token ids after `prime`, each step feeding one token through the cache.

    When the context window fills, the cache is rebuilt from the last half of
    the text: one longer forward pass every n_ctx/2 tokens instead of one per token.
    """
    device = next(model.parameters()).device
    context = list(prime)
    feed = context[-(n_ctx - 1) :]
    past, cached = None, 0
    while True:
        out = model(input_ids=torch.tensor([feed], device=device), use_cache=True, **{CACHE: past})
        past, cached = getattr(out, CACHE), cached + len(feed)
        next_id = sample_next(out.logits[0, -1], generator, temperature, top_k, top_p)
        yield next_id
        context.append(next_id)
        if cached + 1 >= n_ctx:
            feed, past, cached = context[-(n_ctx // 2) :], None, 0
        else:
            feed = [next_id]


class TextDecoder:
    """Turns ids into text as they come, holding back bytes of a character not yet complete."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.pending: list[int] = []

    def push(self, token_id: int) -> str:
        self.pending.append(token_id)
        text = self.tokenizer.decode(self.pending, clean_up_tokenization_spaces=False)
        if text.endswith("\ufffd"):
            return ""
        self.pending = []
        return text
