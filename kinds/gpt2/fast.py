"""GPT-2 decoding on a CPU without Hugging Face's per-call machinery.

A decode step of GPT-2 small reads 500 MB of weights and does little else, yet
through `GPT2LMHeadModel.forward` it also pays for a growing DynamicCache
(a `cat` of every layer's keys and values per token), mask building, output
objects and, on the prompt, logits for every position. Here the same weights
run in plain torch ops:

- the keys and values live in one tensor per model allocated once per
  generation (n_layer x heads x n_ctx x head size), written in place;
- a chunk of new tokens (the prompt, or one token) goes through in one pass,
  attending to everything cached before it, and only its last position
  reaches the output layer;
- the cache knows the ids it holds, so a caller can keep the longest common
  prefix of the next prompt and feed only what is new (`keep`).

The arithmetic is GPT-2's own (its LayerNorms are called as they are, and
its tanh GELU is torch's fused one), so greedy tokens are the plain path's
(tests/test_gpt2_fast.py).
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


def supports(model: nn.Module) -> bool:
    """Whether `model` is a plain GPT-2 in eval mode, with the attention variants this path implements."""
    from transformers import GPT2LMHeadModel

    if not isinstance(model, GPT2LMHeadModel) or model.training:
        return False
    config = model.config
    return bool(config.scale_attn_weights) and not config.scale_attn_by_inverse_layer_idx \
        and not config.reorder_and_upcast_attn


class KVCache:
    """One generation's keys and values, and the ids they were computed from."""

    def __init__(self, model: nn.Module):
        config = model.config
        self.model = model
        self.transformer = model.transformer
        self.heads, self.n_ctx = config.n_head, config.n_positions
        self.head_size = config.n_embd // config.n_head
        p = next(model.parameters())
        shape = (config.n_layer, self.heads, self.n_ctx, self.head_size)
        self.k = torch.empty(shape, dtype=p.dtype, device=p.device)
        self.v = torch.empty(shape, dtype=p.dtype, device=p.device)
        self.ids: list[int] = []
        act = model.transformer.h[0].mlp.act
        # GPT-2's gelu_new written out is five elementwise passes; torch's tanh GELU is the same function in one
        self.act = partial(F.gelu, approximate="tanh") if type(act).__name__ == "NewGELUActivation" else act

    def keep(self, ids: list[int]) -> list[int]:
        """Keep the cached prefix `ids` starts with (at least one id short of it), drop the rest; the ids to feed."""
        common = 0
        for cached, new in zip(self.ids, ids[:-1], strict=False):
            if cached != new:
                break
            common += 1
        del self.ids[common:]
        return ids[common:]

    @torch.inference_mode()
    def feed(self, ids: list[int]) -> torch.Tensor:
        """Run `ids` after the cached ones; the logits (vocab,) after the last of them."""
        start, n = len(self.ids), len(ids)
        if start + n > self.n_ctx:
            raise ValueError(f"{start + n} positions do not fit GPT-2's context of {self.n_ctx}")
        t = self.transformer
        device = self.k.device
        x = t.wte(torch.tensor(ids, device=device)) + t.wpe.weight[start : start + n]
        # a chunk of n attends to all that is cached and, causally, to itself; one token needs no mask
        mask = None if n == 1 else torch.ones(n, start + n, dtype=torch.bool, device=device).tril(diagonal=start)
        embd = x.shape[-1]
        for layer, block in enumerate(t.h):
            attn, mlp = block.attn, block.mlp
            qkv = attn.c_attn(block.ln_1(x))
            q, k, v = (part.view(n, self.heads, self.head_size).transpose(0, 1) for part in qkv.split(embd, dim=1))
            self.k[layer, :, start : start + n] = k
            self.v[layer, :, start : start + n] = v
            y = F.scaled_dot_product_attention(q, self.k[layer, :, : start + n], self.v[layer, :, : start + n],
                                               attn_mask=mask)
            x = x + attn.c_proj(y.transpose(0, 1).reshape(n, embd))
            x = x + mlp.c_proj(self.act(mlp.c_fc(block.ln_2(x))))
        self.ids.extend(ids)
        return self.model.lm_head(t.ln_f(x[-1:]))[0]  # 2-D: int8 layers take no 1-D input
