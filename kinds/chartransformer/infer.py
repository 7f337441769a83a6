"""The char transformer loaded for writing: the char-LSTM's decoder over this kind's model.

A prompt longer than the model's block keeps only its end (see WindowCursor).
"""

import torch

from contract.modeldir import Card

from ..charlstm.infer import CharDecoder
from .model import CharGPT, CharGPTConfig


def load(card: Card, device: torch.device) -> CharDecoder:
    return CharDecoder.from_card(card, device, CharGPT(CharGPTConfig(**card.architecture)))
