"""Character streams for truncated BPTT, as char-rnn feeds them.

The training text is cut into `batch_size` contiguous streams; step i takes
the i-th window of `seq_len` characters from every stream, so the LSTM state
at the end of one batch is the right start for the next. Each epoch shifts the
windows by a seeded offset so the model does not always see the same cuts.
"""

import torch

from corpora import Corpus, UserError

from .model import Vocab

# Put before every document: the model learns what a document start looks
# like, and an unconditional sample is primed with it.
DOC_START = "\n\n"
SPLIT = (0.90, 0.05, 0.05)


def corpus_text(corpus: Corpus) -> str:
    return "".join(DOC_START + d.text for d in corpus.documents)


def author_lengths(corpus: Corpus) -> list[int]:
    """The characters of each author's run of documents in corpus_text (one run for one author's corpus)."""
    lengths, at = [], 0
    for _, count in corpus.authors():
        lengths.append(sum(len(DOC_START) + len(d.text) for d in corpus.documents[at : at + count]))
        at += count
    return lengths


def split_points(n: int | list[int]) -> dict[str, list]:
    """Contiguous train/val/test character ranges, 90/5/5; for several authors' texts one after another (their
    lengths), each author's own 90/5/5, every split a list of those ranges (see `cut`)."""
    if isinstance(n, list) and len(n) == 1:
        n = n[0]
    if isinstance(n, int):
        a = int(n * SPLIT[0])
        b = int(n * (SPLIT[0] + SPLIT[1]))
        return {"train": [0, a], "val": [a, b], "test": [b, n]}
    split: dict[str, list] = {"train": [], "val": [], "test": []}
    start = 0
    for length in n:
        for name, (a, b) in split_points(length).items():
            split[name].append([start + a, start + b])
        start += length
    return split


def ranges(split: list) -> list[list[int]]:
    """A split's ranges: one [a, b] (one author's text), or a list of them (several authors', see split_points)."""
    return [split] if split and isinstance(split[0], int) else split


def cut(seq: "str | torch.Tensor", split: list) -> "str | torch.Tensor":
    """The part of a text (or its ids) a split's ranges hold, joined."""
    pieces = [seq[a:b] for a, b in ranges(split)]
    return "".join(pieces) if isinstance(seq, str) else torch.cat(pieces)


class CharData:
    def __init__(self, text: str, vocab: Vocab, seq_len: int, batch_size: int, authors: list[int] | None = None):
        """`authors`: the length of each author's text, one after another in `text`, each split on its own."""
        self.vocab = vocab
        self.seq_len = seq_len
        self.batch_size = batch_size
        ids = torch.tensor(vocab.encode(text), dtype=torch.long)
        self.split = split_points(authors or len(ids))
        self.ids = {name: cut(ids, ranges) for name, ranges in self.split.items()}
        need = batch_size * seq_len + seq_len + 1
        if len(self.ids["train"]) < need:
            raise UserError(
                f"corpus too short for the sequence length: {len(self.ids['train'])} training characters, "
                f"need at least {need} for --batch-size {batch_size} x --seq-len {seq_len}; lower them or add text"
            )
        if len(self.ids["val"]) < seq_len + 1:
            raise UserError(
                f"corpus too short for the sequence length: the validation split has {len(self.ids['val'])} "
                f"characters, need at least {seq_len + 1}; lower --seq-len or add text"
            )
        self.stream_len = (len(self.ids["train"]) - 1 - seq_len) // batch_size
        self.steps_per_epoch = self.stream_len // seq_len

    def epoch_offset(self, seed: int, epoch: int) -> int:
        if epoch == 0:
            return 0
        g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
        return int(torch.randint(0, self.seq_len, (1,), generator=g))

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T) for window `index` of `epoch`."""
        o = self.epoch_offset(seed, epoch)
        B, L, T = self.batch_size, self.stream_len, self.seq_len
        base = self.ids["train"][o : o + B * L + 1]
        x = base[:-1].view(B, L)[:, index * T : (index + 1) * T]
        y = base[1:].view(B, L)[:, index * T : (index + 1) * T]
        return x, y

    def eval_streams(self, split: str, max_chars: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A split cut into parallel streams (B', L') for a stateful evaluation pass."""
        return eval_streams(self.ids[split], self.batch_size, self.seq_len, max_chars)

    def text(self, split: str, max_chars: int | None = None) -> str:
        """A split's text (its first max_chars + 1 characters: what an evaluation of max_chars reads)."""
        ids = self.ids[split] if max_chars is None else self.ids[split][: max_chars + 1]
        return self.vocab.decode(ids.tolist())


def eval_streams(ids: torch.Tensor, batch_size: int, seq_len: int, max_chars: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of a text's first max_chars (+1) ids, cut into parallel streams (B', L'): how training
    measures its validation loss, and `assistant eval` any text."""
    ids = ids[: max_chars + 1]
    streams = max(1, min(batch_size, (len(ids) - 1) // seq_len))
    L = (len(ids) - 1) // streams
    return ids[: streams * L].view(streams, L), ids[1 : streams * L + 1].view(streams, L)
