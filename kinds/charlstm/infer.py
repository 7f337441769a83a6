"""The char-LSTM loaded for writing: the decoder the generation API streams from."""

import torch
from safetensors.torch import load_file

from contract.modeldir import WEIGHTS, Card
from contract.sampling import Cursor, warn_dropped

from .model import CharLSTM, CharLSTMConfig, Prefix, Vocab


class CharDecoder:
    """A char model for writing, one character a token: the char-LSTM, the char transformer."""

    def __init__(self, vocab: Vocab, prime: str, model: torch.nn.Module):
        self.vocab, self.prime, self.model = vocab, prime, model
        self.device = next(model.parameters()).device

    @classmethod
    def from_card(cls, card: Card, device: torch.device, model: torch.nn.Module) -> "CharDecoder":
        """`model` with the card's weights, vocabulary and document start."""
        model.load_state_dict(load_file(str(card.weights(WEIGHTS)), device="cpu"))
        return cls(Vocab(card.extra["vocab"]), card.extra["prime"], model.to(device).eval())

    def encode(self, text: str) -> list[int]:
        """One id per character the model knows, as a prompt is read: typographic ones mapped, unknown ones left out."""
        return self.vocab.encode_lenient(text)[0]

    def new_state(self) -> Prefix | None:
        """The char-LSTM's state after the last prompt, to start the next one from (the char transformer: none)."""
        return Prefix() if isinstance(self.model, CharLSTM) else None

    end_id = None  # a character model writes on; only the length ends it

    def start(self, prompt: str, state: Prefix | None = None, keep: int = 0) -> Cursor:
        ids, dropped = self.vocab.encode_lenient(prompt)
        warn_dropped(dropped)
        # the state after the document start, then the prompt: like a text the model has read from its beginning
        prime = self.vocab.encode(self.prime) + ids
        return self.model.cursor(prime, prefix=state, keep=keep)

    def decode(self, ids: list[int]) -> str:
        return self.vocab.decode(ids)

    def token_texts(self) -> list[str]:
        return list(self.vocab.chars)


def load(card: Card, device: torch.device) -> CharDecoder:
    return CharDecoder.from_card(card, device, CharLSTM(CharLSTMConfig(**card.architecture)))
