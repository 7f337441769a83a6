"""Causal attention for training: SDPA told `is_causal`, never handed a mask.

transformers builds an attention mask tensor whenever it cannot prove at run
time that none is needed, and under torch.compile some versions (5.17, say)
never can: every layer then gets a materialized 1024 x 1024 mask, and SDPA,
given a mask, cannot use its flash kernel nor skip the masked half of the
work. Training and its evaluation feed full, unpadded blocks, so the mask is
always the plain causal one: this attention implementation drops the mask and
lets SDPA apply causality itself, on any transformers version. Sampling during
training goes through it too, correctly: one unpadded sequence, and a
single-token query (decoding) attends to the whole cache.
"""

from typing import Any

import torch
from transformers import AttentionInterface, AttentionMaskInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "ghostwriter_causal"


def causal_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention without the mask: SDPA applies causality for a query of more than one token."""
    return sdpa_attention_forward(module, query, key, value, None, **kwargs)


def no_mask(*args: Any, **kwargs: Any) -> None:
    """The mask builder for `causal_sdpa`: there is nothing to build."""
    return None


def use_causal_attention(model: PreTrainedModel) -> None:
    """Switch `model` (whose inputs are never padded) to `causal_sdpa`."""
    AttentionInterface.register(NAME, causal_sdpa)
    AttentionMaskInterface.register(NAME, no_mask)
    model.set_attn_implementation(NAME)
