"""A small GPT over characters, in the shape of nanoGPT's.

Token and position embeddings -> pre-LayerNorm blocks (causal self-attention,
GELU MLP) -> final LayerNorm -> logits through the token embedding itself.
Tying the output to the embedding saves vocab x width parameters and, for a
character vocabulary, costs nothing in quality. The same module trains in
`finetune` and generates in `assistant`; the vocabulary is the char-LSTM's
(`kinds.charlstm.model.Vocab`).
"""

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from contract.sampling import sampled_ids

HEAD_WIDTH = 64  # width of one attention head: heads = hidden // HEAD_WIDTH, as in GPT-2
INIT_STD = 0.02


@dataclass(frozen=True)
class CharGPTConfig:
    """What config.json's "architecture" holds: enough to rebuild the module before loading its weights."""

    vocab_size: int
    block_size: int  # the longest context, in characters: position embeddings exist for this many
    layers: int
    hidden: int
    heads: int
    dropout: float

    def to_json(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: CharGPTConfig):
        super().__init__()
        self.heads = config.heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden)
        self.proj = nn.Linear(config.hidden, config.hidden)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        # the fused kernel (flash attention on a GPU) masks the future itself: no T x T mask is kept
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)): pre-LN keeps a deep stack trainable without warm-up tricks."""

    def __init__(self, config: CharGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.hidden)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden, 4 * config.hidden),
            nn.GELU(),
            nn.Linear(4 * config.hidden, config.hidden),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, config: CharGPTConfig):
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.hidden)
        self.pos = nn.Embedding(config.block_size, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.hidden)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02), zero biases, and the projections that add into the residual
        stream scaled down by sqrt(2 x layers), so the stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for residual in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(residual.weight, std=INIT_STD / math.sqrt(2 * self.config.layers))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) with T <= block_size -> logits (B, T, V), each position seeing only those before it."""
        length = ids.size(1)
        if length > self.config.block_size:
            raise ValueError(f"a sequence of {length} characters is longer than the block size {self.config.block_size}")
        x = self.drop(self.tok(ids) + self.pos(torch.arange(length, device=ids.device)))
        for block in self.blocks:
            x = block(x)
        # the output layer is the embedding matrix: one tensor in the state dict, as safetensors wants
        return F.linear(self.ln_f(x), self.tok.weight)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def cursor(self, prime: list[int], *, prefix: None = None, keep: int = 0) -> "WindowCursor":
        """The model after `prime`, for contract.loop (see WindowCursor); it keeps no prefix and rewinds any length."""
        return WindowCursor(self, prime)

    def generate_ids(
        self,
        prime: list[int],
        generator: torch.Generator,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
    ) -> Iterator[int]:
        """Sampled ids for as long as the caller asks (see contract.sampling.sampled_ids)."""
        return sampled_ids(WindowCursor(self, prime), generator, temperature, top_k, top_p)


class WindowCursor:
    """The char transformer after a prime: each step reads the last block_size ids (see contract.sampling.Cursor).

    The prime must not be empty: the model has no start token, only the
    text before the first character it writes. There is no cache of keys
    and values: a character model's window is short, and with learned
    positions a window that slides must be recomputed anyway; so a rewind
    is only dropping ids.
    """

    def __init__(self, model: CharGPT, prime: list[int]):
        if not prime:
            raise ValueError("a char transformer needs at least one id to start from")
        self.model, self.prompt_ids, self.context = model, list(prime), list(prime)
        self.logits = self._read()

    @torch.no_grad()
    def _read(self) -> torch.Tensor:
        window = self.context[-self.model.config.block_size :]
        return self.model(torch.tensor([window], device=self.model.tok.weight.device))[0, -1]

    def feed(self, token: int) -> torch.Tensor:
        self.context.append(token)
        self.logits = self._read()
        return self.logits

    def rewind(self, n: int) -> torch.Tensor:
        del self.context[len(self.context) - n :]
        self.logits = self._read()
        return self.logits
