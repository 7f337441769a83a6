"""A corpus as GPT-2 tokens: tokenized once, cached, split, and packed into blocks.

Documents are joined with `<|endoftext|>` before each one, so the model learns
what the start of a text looks like and an unconditional sample starts from
that token. The token array is cached (uint16, keyed by the corpus checksum and
the tokenizer) so a second run starts at once.
"""

import hashlib
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from corpora import Corpus, UserError
from corpora.files import replacing
from corpora.home import corpora_cache_dir

HELD_OUT = 0.10  # validation and test, half each


def tokenizer_fingerprint(tokenizer) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    ids: np.ndarray  # uint16, every document preceded by <|endoftext|>
    starts: np.ndarray  # int64 offset of each document's <|endoftext|>


def tokenize(corpus: Corpus, tokenizer) -> Tokens:
    """The corpus's tokens, from the cache when this corpus met this tokenizer before."""
    if len(tokenizer) > 2**16:
        raise UserError(f"the tokenizer has {len(tokenizer):,} tokens; the token cache holds at most 65,536")
    cache = corpora_cache_dir() / "tokens" / f"{corpus.checksum[:20]}-{tokenizer_fingerprint(tokenizer)[:20]}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as saved:
                return Tokens(saved["ids"], saved["starts"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged (or not ours): a cache, so made again
            pass
    eos = tokenizer.eos_token_id
    encoded = tokenizer([d.text for d in corpus.documents], add_special_tokens=False)["input_ids"]
    lengths = np.array([len(ids) + 1 for ids in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = np.fromiter((t for doc in encoded for t in (eos, *doc)), dtype=np.uint16, count=int(lengths.sum()))
    with replacing(cache) as tmp, tmp.open("wb") as f:  # closed before it is renamed into place
        np.savez(f, ids=ids, starts=starts)
    return Tokens(ids, starts)


def held_out(tokens: Tokens, how: str, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Training tokens and the held-out tenth: the last tenth of the stream, or every tenth document (named)."""
    if how == "contiguous":
        cut = int(len(tokens.ids) * (1 - HELD_OUT))
        return tokens.ids[:cut], tokens.ids[cut:], []
    n = len(names)
    if n < 2:
        raise UserError("--split document needs a corpus of at least two documents; use --split contiguous")
    k = max(1, round(n * HELD_OUT))
    held_docs = sorted({(j + 1) * n // k - 1 for j in range(k)})
    ends = [*tokens.starts[1:].tolist(), len(tokens.ids)]
    pieces = {i: tokens.ids[tokens.starts[i] : ends[i]] for i in range(n)}
    train = np.concatenate([pieces[i] for i in range(n) if i not in held_docs])
    held = np.concatenate([pieces[i] for i in held_docs])
    return train, held, [names[i] for i in held_docs]


def val_test(held: np.ndarray, test: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The held-out tokens as validation (the first half) and test (the second half, which training never reads).

    A directory written before test splits were kept (its split records no `test_tokens`) validated on all of them.
    """
    cut = len(held) // 2 if test else len(held)
    return held[:cut], held[cut:]


def by_author(tokens: Tokens, how: str, corpus: Corpus,
              test: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Train, validation and test tokens and the held-out documents, each author's run of documents split on its own
    (held_out, val_test) and the splits joined, so that every author has validation text (corpora.authors)."""
    names = [d.name for d in corpus.documents]
    runs, at, parts = corpus.authors(), 0, []
    for _, count in runs:
        begin = int(tokens.starts[at])
        end = int(tokens.starts[at + count]) if at + count < len(names) else len(tokens.ids)
        own = tokens if len(runs) == 1 else Tokens(tokens.ids[begin:end], tokens.starts[at : at + count] - begin)
        train, held, docs = held_out(own, how, names[at : at + count])
        parts.append((train, *val_test(held, test), docs))
        at += count
    train, val, test_ids = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return train, val, test_ids, [d for p in parts for d in p[3]]


def split_tokens(tokens: Tokens, how: str, corpus: Corpus) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Train and validation tokens, 90/5 (the last 5% is the test split), and the held-out documents."""
    train, val, _, docs = by_author(tokens, how, corpus)
    return train, val, docs


class TokenData:
    """Packed blocks of `block_size` tokens for training, in a seeded order per epoch."""

    def __init__(self, corpus: Corpus, tokenizer, block_size: int, micro_batch: int, split: str, test: bool = True):
        train, val, test_ids, val_docs = by_author(tokenize(corpus, tokenizer), split, corpus, test)
        if len(train) <= 2 * block_size:  # a whole block in every epoch, whatever the grid's shift
            raise UserError(
                f"corpus too short for --block-size {block_size}: {len(train):,} training tokens; lower --block-size or add text"
            )
        if len(val) < 2:
            raise UserError("the validation split is empty: the corpus is too short; add text")
        self.block_size = block_size
        self.train = torch.from_numpy(train.astype(np.int64))
        self.val = torch.from_numpy(val.astype(np.int64))
        self.micro_batch = min(micro_batch, (len(train) - block_size) // block_size)
        val_chars = len(tokenizer.decode(val.tolist(), skip_special_tokens=True))
        self.chars_per_token = val_chars / len(val)
        self._order: tuple[int, int, torch.Tensor] | None = None
        self.split = {"how": split, "train_tokens": len(train), "val_tokens": len(val),
                      **({"test_tokens": len(test_ids)} if test else {}), "val_documents": val_docs,
                      "chars_per_token": round(self.chars_per_token, 4)}

    def to(self, device: torch.device) -> None:
        """Keep the tokens where the model is: a batch is then gathered there, with no copy per step."""
        self.train, self.val = self.train.to(device), self.val.to(device)
        self._order = None

    def epoch_order(self, seed: int, epoch: int) -> tuple[int, torch.Tensor]:
        """A shift of the block grid (none in the first epoch) and a block order, both from the seed."""
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
            offset = 0 if epoch == 0 else int(torch.randint(0, self.block_size, (1,), generator=g))
            blocks = (len(self.train) - 1 - offset) // self.block_size
            self._order = (epoch, offset, torch.randperm(blocks, generator=g).to(self.train.device))
        return self._order[1], self._order[2]

    def steps_per_epoch(self, seed: int, epoch: int) -> int:
        return len(self.epoch_order(seed, epoch)[1]) // self.micro_batch

    def block_starts(self, seed: int, epoch: int, index: int) -> torch.Tensor:
        """Where the blocks of micro-batch `index` of `epoch` start in the training tokens."""
        offset, order = self.epoch_order(seed, epoch)
        return offset + order[index * self.micro_batch : (index + 1) * self.micro_batch] * self.block_size

    def rows(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the blocks that start at `starts`."""
        rows = self.train[starts[:, None] + torch.arange(self.block_size + 1, device=starts.device)]
        return rows[:, :-1], rows[:, 1:]

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rows(self.block_starts(seed, epoch, index))

    def text(self, split: str, tokenizer, max_tokens: int | None = None) -> str:
        """A split's text (its first max_tokens + 1 tokens: what an evaluation of max_tokens reads)."""
        ids = self.train if split == "train" else self.val
        return tokenizer.decode((ids if max_tokens is None else ids[: max_tokens + 1]).tolist(), skip_special_tokens=True)

    def eval_blocks(self, split: str, max_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The split (up to max_tokens) as batches of whole blocks, the last one possibly shorter."""
        return eval_blocks(self.train if split == "train" else self.val, self.block_size, self.micro_batch, max_tokens)


def eval_blocks(ids: torch.Tensor, block_size: int, micro_batch: int, max_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Tokens (up to max_tokens) as batches of whole blocks, the last one possibly shorter: how training measures its
    validation loss, and `assistant eval` any text."""
    ids = ids[: max_tokens + 1]
    T = block_size
    full = (len(ids) - 1) // T
    batches = []
    for i in range(0, full, micro_batch):
        n = min(micro_batch, full - i)
        rows = torch.stack([ids[(i + j) * T : (i + j + 1) * T + 1] for j in range(n)])
        batches.append((rows[:, :-1], rows[:, 1:]))
    rest = ids[full * T :]
    if len(rest) > 1:
        batches.append((rest[None, :-1], rest[None, 1:]))
    return batches
