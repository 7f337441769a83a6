"""A GPT-2's loss on its own splits or any text, per token and per character, measured as training measures it.

The splits are the model's own: the corpus tokenized again (from the token
cache) and cut as its card records, validation and test halving the held-out
tenth (a directory from before test splits validated on all of it, and has
none). The loss is summed over the same blocks training validates with.
"""

import numpy as np
import torch
import torch.nn.functional as F

from contract.modeldir import Card
from corpora import Corpus

from ..scoring import Passage, Score
from .data import by_author, eval_blocks, tokenize
from .infer import GPT2Decoder


def splits(decoder: GPT2Decoder, card: Card, corpus: Corpus) -> dict[str, Passage]:
    """The model's train, val and test tokens (test only when its card records one), with their text."""
    split = card.split or {}
    train, val, test, _ = by_author(tokenize(corpus, decoder.tokenizer), split.get("how", "contiguous"), corpus,
                                    "test_tokens" in split)
    parts = {"train": train, "val": val, **({"test": test} if "test_tokens" in split else {})}
    return {name: _passage(decoder, ids) for name, ids in parts.items()}


def read(decoder: GPT2Decoder, card: Card, corpus: Corpus) -> Passage:
    """Another corpus as this model reads it: every document after <|endoftext|>, as in training."""
    return _passage(decoder, tokenize(corpus, decoder.tokenizer).ids)


@torch.no_grad()
def score(decoder: GPT2Decoder, card: Card, passage: Passage, max_units: int) -> tuple[Score, str]:
    """The loss on the passage's first max_units tokens, in the blocks training validates with."""
    ids = torch.from_numpy(passage.units[: max_units + 1].astype(np.int64))
    device = next(decoder.model.parameters()).device
    total, count = 0.0, 0
    for x, y in eval_blocks(ids, card.hparams["block_size"], card.hparams["micro_batch"], max_units):
        logits = decoder.model(input_ids=x.to(device)).logits
        total += float(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.to(device).reshape(-1),
                                       reduction="sum"))
        count += y.numel()
    text = decoder.tokenizer.decode(ids.tolist(), skip_special_tokens=True)
    chars = len(decoder.tokenizer.decode(ids[1 : count + 1].tolist(), skip_special_tokens=True))
    return Score(total, count, max(1, chars), "token"), text


def _passage(decoder: GPT2Decoder, ids: np.ndarray) -> Passage:
    return Passage(decoder.tokenizer.decode(ids.tolist(), skip_special_tokens=True), ids)
