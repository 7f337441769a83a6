"""The char-LSTM loaded for writing: the decoder the generation API streams from."""

from collections.abc import Iterator

import torch
from safetensors.torch import load_file

from contract.modeldir import WEIGHTS, Card
from contract.sampling import Sampling, warn_dropped

from .model import CharLSTM, CharLSTMConfig, Prefix, Vocab


class CharDecoder:
    """Any char model whose `generate_ids` yields next ids after a prime: the char-LSTM, the char transformer."""

    def __init__(self, card: Card, device: torch.device, model: torch.nn.Module):
        self.vocab = Vocab(card.extra["vocab"])
        self.prime = card.extra["prime"]
        self.model = model
        self.model.load_state_dict(load_file(str(card.weights(WEIGHTS)), device="cpu"))
        self.model.to(device).eval()
        self.device = device

    def encode(self, text: str) -> list[int]:
        """One id per character the model knows, as a prompt is read: typographic ones mapped, unknown ones left out."""
        return self.vocab.encode_lenient(text)[0]

    def new_state(self) -> Prefix | None:
        """The char-LSTM's state after the last prompt, to start the next one from (the char transformer: none)."""
        return Prefix() if isinstance(self.model, CharLSTM) else None

    def pieces(self, prompt: str, sampling: Sampling, generator: torch.Generator,
               state: Prefix | None = None) -> Iterator[str]:
        ids, dropped = self.vocab.encode_lenient(prompt)
        warn_dropped(dropped)
        # the state after the document start, then the prompt: like a text the model has read from its beginning
        prime = self.vocab.encode(self.prime) + ids
        reuse = {"prefix": state} if state is not None else {}
        for next_id in self.model.generate_ids(prime, generator, sampling.temperature, sampling.top_k, sampling.top_p,
                                               **reuse):
            yield self.vocab.chars[next_id]


def load(card: Card, device: torch.device) -> CharDecoder:
    return CharDecoder(card, device, CharLSTM(CharLSTMConfig(**card.architecture)))
