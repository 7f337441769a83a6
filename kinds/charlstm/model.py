"""The character-level LSTM and its vocabulary.

embedding -> multi-layer LSTM (dropout between layers) -> linear, as in
char-rnn. The same module trains in `finetune` and generates in `assistant`.
"""

import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from contract.sampling import Sampling, sample_next, sampled_ids

State = tuple[torch.Tensor, torch.Tensor]

# Typographic characters a prompt often has and a plain-text corpus lacks.
_FALLBACKS = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "--", "\u2013": "-",
    "\u2026": "...", "\u00a0": " ", "\t": "    ", "\r": "",
}


class Vocab:
    """Characters <-> ids; the order is sorted so it is the same on every run."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text]

    def encode_lenient(self, text: str) -> tuple[list[int], list[str]]:
        """Ids for text, mapping typographic characters and dropping what is unknown."""
        ids: list[int] = []
        dropped: list[str] = []
        for c in text:
            if c in self.index:
                ids.append(self.index[c])
                continue
            if c in _FALLBACKS:
                mapped = _FALLBACKS[c]
            else:
                mapped = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or c
            if all(m in self.index for m in mapped):
                ids.extend(self.index[m] for m in mapped)
            elif c.lower() in self.index:
                ids.append(self.index[c.lower()])
            elif c.upper() in self.index:
                ids.append(self.index[c.upper()])
            else:
                dropped.append(c)
        return ids, dropped

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class Prefix:
    """A session's last prime and the LSTM's state after it: a prime that goes on from it feeds only what is new.

    Only the state right after the prime is kept, not after the text generated
    from it: the next prompt of a writer typing at the end is the last one plus
    what they typed, not plus what the model wrote.
    """

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.state: State | None = None
        self.last: torch.Tensor | None = None  # the logits after the last id

    def read(self, model: "CharLSTM", prime: list[int]) -> tuple[torch.Tensor, State]:
        """The logits after `prime` and the state, from what is kept where `prime` starts with it."""
        n = len(self.ids)
        if self.state is not None and self.last is not None and prime[:n] == self.ids and n <= len(prime):
            if n == len(prime):
                return self.last, self.state
            logits, state = model(torch.tensor([prime[n:]], device=self.last.device), self.state)
        else:
            logits, state = model(torch.tensor([prime], device=model.embed.weight.device))
        self.ids, self.state, self.last = list(prime), state, logits[0, -1]
        return self.last, state


@dataclass(frozen=True)
class CharLSTMConfig:
    vocab_size: int
    layers: int
    hidden: int
    dropout: float

    def to_json(self) -> dict:
        return asdict(self)


class CharLSTM(nn.Module):
    def __init__(self, config: CharLSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.hidden,
            config.hidden,
            config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> logits (B, T, V) and the state after the last step."""
        out, state = self.lstm(self.drop(self.embed(ids)), state)
        return self.head(self.drop(out)), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate_batch(self, primes: list[list[int]], n: int, generator: torch.Generator,
                       sampling: Sampling) -> list[list[int]]:
        """`n` sampled ids after each prime, all streams stepped together: what an evaluation of many samples needs."""
        device = self.embed.weight.device
        states, last = [], []
        for prime in primes:  # primes differ in length: each is read on its own, then the streams go on as one batch
            logits, (h, c) = self(torch.tensor([prime], device=device))
            states.append((h, c))
            last.append(logits[0, -1])
        state = (torch.cat([h for h, _ in states], dim=1), torch.cat([c for _, c in states], dim=1))
        logits = torch.stack(last)
        out: list[list[int]] = [[] for _ in primes]
        for _ in range(n):
            ids = [sample_next(row, generator, sampling.temperature, sampling.top_k, sampling.top_p) for row in logits]
            for row, next_id in zip(out, ids, strict=True):
                row.append(next_id)
            step, state = self(torch.tensor(ids, device=device)[:, None], state)
            logits = step[:, -1]
        return out

    def cursor(self, prime: list[int], *, prefix: Prefix | None = None, keep: int = 0) -> "LSTMCursor":
        """The model after `prime`, for contract.loop (see LSTMCursor)."""
        return LSTMCursor(self, prime, prefix=prefix, keep=keep)

    def generate_ids(
        self,
        prime: list[int],
        generator: torch.Generator,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        *,
        fast: bool = True,
        prefix: Prefix | None = None,
    ) -> Iterator[int]:
        """Sampled ids after the prime for as long as the caller asks (see contract.sampling.sampled_ids)."""
        return sampled_ids(LSTMCursor(self, prime, fast=fast, prefix=prefix), generator, temperature, top_k, top_p)


class LSTMCursor:
    """The char-LSTM after a prime, stepped one character at a time (see contract.sampling.Cursor).

    The prime goes in one pass; then, on a CPU in eval mode, each step takes
    the fused single-step path (kinds.charlstm.fast), unless `fast` is False:
    the plain path, one nn.LSTM call per character, kept as the reference it
    is tested and measured against. A `prefix` keeps the state after the
    prime for the next prompt, and starts from the one it kept where it can
    (see Prefix). A rewind restores a kept state: the last `keep` steps' are
    kept (nothing when 0, so a stream that never rewinds copies nothing).
    """

    def __init__(self, model: CharLSTM, prime: list[int], *, fast: bool = True, prefix: Prefix | None = None,
                 keep: int = 0):
        self.model, self.prompt_ids, self.keep = model, list(prime), keep
        self.device = model.embed.weight.device
        with torch.inference_mode():
            if prefix is not None:
                self.logits, self.state = prefix.read(model, prime)
            else:
                logits, self.state = model(torch.tensor([prime], device=self.device))
                self.logits = logits[0, -1]
        self.stepper = None
        if fast and self.device.type == "cpu" and not model.training:
            from .fast import Stepper, fused

            self.stepper = Stepper(fused(model.embed, model.lstm, model.head), self.state)
        self.kept: list[tuple[object, torch.Tensor]] = []  # (state, logits) before each of the last `keep` steps

    def feed(self, token: int) -> torch.Tensor:
        if self.keep:
            self.kept = [*self.kept[-(self.keep - 1) :], self._snapshot()] if self.keep > 1 else [self._snapshot()]
        with torch.inference_mode():
            if self.stepper is not None:
                self.logits = self.stepper.step(token)
            else:
                logits, self.state = self.model(torch.tensor([[token]], device=self.device), self.state)
                self.logits = logits[0, -1]
        return self.logits

    def rewind(self, n: int) -> torch.Tensor:
        if n > len(self.kept):
            raise ValueError(f"cannot rewind {n} characters: {len(self.kept)} kept")
        state, logits = self.kept[-n]
        del self.kept[len(self.kept) - n :]
        if self.stepper is not None:
            self.stepper.restore(state)  # type: ignore[arg-type]
        else:
            self.state = state  # type: ignore[assignment]
        self.logits = logits
        return logits

    def _snapshot(self) -> tuple[object, torch.Tensor]:
        state = self.stepper.snapshot() if self.stepper is not None else self.state
        return state, self.logits.clone()
