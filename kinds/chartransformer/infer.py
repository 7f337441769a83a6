"""The char transformer loaded for writing: the decoder the generation API streams from."""

from collections.abc import Iterator

import torch
from safetensors.torch import load_file

from ..charlstm.model import Vocab
from ..modeldir import WEIGHTS, Card
from ..sampling import Sampling, warn_dropped
from .model import CharGPT, CharGPTConfig


class CharTransformerDecoder:
    def __init__(self, card: Card, device: torch.device):
        self.vocab = Vocab(card.extra["vocab"])
        self.prime = card.extra["prime"]
        self.model = CharGPT(CharGPTConfig(**card.architecture))
        self.model.load_state_dict(load_file(str(card.weights(WEIGHTS)), device="cpu"))
        self.model.to(device).eval()

    def pieces(self, prompt: str, sampling: Sampling, generator: torch.Generator) -> Iterator[str]:
        ids, dropped = self.vocab.encode_lenient(prompt)
        warn_dropped(dropped)
        # after a document start, as the model saw every text begin; a long prompt keeps only its last block
        prime = self.vocab.encode(self.prime) + ids
        for next_id in self.model.generate_ids(prime, generator, sampling.temperature, sampling.top_k, sampling.top_p):
            yield self.vocab.chars[next_id]


def load(card: Card, device: torch.device) -> CharTransformerDecoder:
    return CharTransformerDecoder(card, device)
