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
  prefix of the next prompt and feed only what is new (`keep`);
- on CUDA a one-token step runs as a CUDA graph: the step is written in fixed
  shapes (the token and its position in small device tensors, attention over
  the whole cache with the positions not yet written masked out), captured
  once per cache and replayed for every token, so the GPU does not wait on
  Python to launch a layer's kernels one by one. The same fixed-shape step
  runs eagerly on a CPU in the tests, against the variable-shape one.

The arithmetic is GPT-2's own (its LayerNorms are called as they are, and
its tanh GELU is torch's fused one), so greedy tokens are the plain path's
(tests/test_gpt2_fast.py).
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .activation import fused


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

    def __init__(self, model: nn.Module, static_steps: bool | None = None):
        config = model.config
        self.model = model
        self.transformer = model.transformer
        self.heads, self.n_ctx = config.n_head, config.n_positions
        self.head_size = config.n_embd // config.n_head
        p = next(model.parameters())
        shape = (config.n_layer, self.heads, self.n_ctx, self.head_size)
        # one-token steps in fixed shapes: on CUDA (replayed as a graph) unless told; on a CPU only when told (tests)
        self.static_steps = p.device.type == "cuda" if static_steps is None else static_steps
        # those read the unwritten positions too (weighted 0, and 0 x NaN is NaN), so their cache starts at zeros;
        # the others' need not (zeroing GPT-2 small's 75 MB cost a CPU generation 15-20 ms)
        new = torch.zeros if self.static_steps else torch.empty
        self.k = new(shape, dtype=p.dtype, device=p.device)
        self.v = new(shape, dtype=p.dtype, device=p.device)
        self.ids: list[int] = []
        self._token = torch.zeros(1, dtype=torch.long, device=p.device)
        self._position = torch.zeros((), dtype=torch.long, device=p.device)
        self._positions = torch.arange(self.n_ctx, device=p.device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._logits: torch.Tensor | None = None
        self.act = fused(model.transformer.h[0].mlp.act)  # gelu_new's five elementwise passes as one

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
        if n == 1 and self.static_steps:
            return self._step(ids[0])
        device = self.k.device
        # a chunk of n attends to all that is cached and, causally, to itself; one token needs no mask
        mask = None if n == 1 else torch.ones(n, start + n, dtype=torch.bool, device=device).tril(diagonal=start)
        logits = self._blocks(torch.tensor(ids, device=device), torch.arange(start, start + n, device=device), start + n,
                              mask)
        self.ids.extend(ids)
        return logits[0]

    def _blocks(self, ids: torch.Tensor, where: torch.Tensor, seen: int, mask: torch.Tensor | None) -> torch.Tensor:
        """`ids` at cache positions `where` through every block, each attending to the first `seen` cached positions
        under `mask`; the logits after the last, (1, vocab). Both kinds of step run it: the variable-shape one and the
        fixed-shape one a CUDA graph replays."""
        t = self.transformer
        x = t.wte(ids) + t.wpe(where)
        n, embd = x.shape
        for layer, block in enumerate(t.h):
            attn, mlp = block.attn, block.mlp
            qkv = attn.c_attn(block.ln_1(x))
            q, k, v = (part.view(n, self.heads, self.head_size).transpose(0, 1) for part in qkv.split(embd, dim=1))
            # under autocast (training's samples) the products are bf16 and the cache holds the weights' dtype
            self.k[layer].index_copy_(1, where, k.to(self.k.dtype))
            self.v[layer].index_copy_(1, where, v.to(self.v.dtype))
            y = F.scaled_dot_product_attention(q, self.k[layer, :, :seen], self.v[layer, :, :seen], attn_mask=mask)
            x = x + attn.c_proj(y.transpose(0, 1).reshape(n, embd))
            x = x + mlp.c_proj(self.act(mlp.c_fc(block.ln_2(x))))
        return self.model.lm_head(t.ln_f(x[-1:]))  # 2-D: int8 layers take no 1-D input

    def _step(self, token: int) -> torch.Tensor:
        """One token through the fixed-shape step: a CUDA graph's replay on a GPU (captured at the first), else eager."""
        self._token.fill_(token)
        self._position.fill_(len(self.ids))
        if self.k.device.type != "cuda":
            logits = self._static_step()
        else:
            if self._graph is None:
                try:
                    self._capture()
                except RuntimeError as e:  # a GPU or driver that cannot capture: the variable-shape steps still write
                    warnings.warn(f"GPT-2 steps without a CUDA graph ({str(e).splitlines()[0]})", stacklevel=2)
                    self._graph, self.static_steps = None, False
                    return self.feed([token])
            self._graph.replay()
            logits = self._logits
        self.ids.append(token)
        return logits[0].clone()  # the graph's output is overwritten by the next replay

    def _capture(self) -> None:
        """Record the step as a CUDA graph, after one run on a side stream that picks its kernels and workspaces.

        Both runs write the keys and values of the position the next token takes, which that token then overwrites.
        Under autocast the graph reads autocast's cached casts of the weights, which last as long as its context:
        a cache made inside one (training's samples) is used up inside it.
        """
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._static_step()
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._logits = self._static_step()

    def _static_step(self) -> torch.Tensor:
        """The token in `_token` at position `_position`, in shapes that do not change from one step to the next."""
        visible = (self._positions <= self._position).view(1, self.n_ctx)  # the positions written so far, and this one
        return self._blocks(self._token, self._position.view(1), self.n_ctx, visible)
