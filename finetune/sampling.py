"""Choosing the next token from logits: temperature, top-k, top-p.

Shared by the samples shown during training and by the generation API, so a
sample in the progress log is drawn exactly the way `assistant generate` draws.
"""

import torch

MIN_TEMPERATURE = 1e-3


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """One id from a 1-D logits vector; temperature 0 (or one too small to divide by) means greedy."""
    logits = logits.float()
    if temperature < MIN_TEMPERATURE:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the ones before it already cover top_p; the first always stays
        drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))
