"""A char model's loss on its own splits or any text, measured as training measures its validation loss.

Both char kinds (the LSTM, the transformer) read the same text and splits;
each measures with its own `train.split_loss`, the function its adapter
validates with, over the same parallel streams.
"""

import torch

from contract import registry
from contract.modeldir import Card
from corpora import Corpus

from ..scoring import Passage, Score
from .data import corpus_text, cut, eval_streams
from .infer import CharDecoder


def splits(decoder: CharDecoder, card: Card, corpus: Corpus) -> dict[str, Passage]:
    """The model's train, val and test text, cut where training cut it (character offsets in its card)."""
    text = corpus_text(corpus)
    ids = torch.tensor(decoder.vocab.encode(text), dtype=torch.long)  # its own corpus: every character in the vocabulary
    return {name: Passage(cut(text, split), cut(ids, split)) for name, split in (card.split or {}).items()}


def read(decoder: CharDecoder, card: Card, corpus: Corpus) -> Passage:
    """Another corpus, as this model reads it: typographic characters mapped, ones it never saw left out."""
    return _passage(decoder, corpus_text(corpus))


def score(decoder: CharDecoder, card: Card, passage: Passage, max_units: int) -> tuple[Score, str]:
    """The loss on the passage's first max_units characters, in the streams training validates with."""
    xs, ys = eval_streams(passage.units, card.hparams["batch_size"], card.hparams["seq_len"], max_units)
    total, count = registry.get(card.kind).train().split_loss(decoder.model, xs, ys, decoder.device,
                                                               card.hparams["seq_len"])
    return Score(total, count, count), decoder.vocab.decode(passage.units[: max_units + 1].tolist())


def _passage(decoder: CharDecoder, text: str) -> Passage:
    ids, dropped = decoder.vocab.encode_lenient(text)
    return Passage(decoder.vocab.decode(ids), torch.tensor(ids, dtype=torch.long), len(dropped))
