"""Char-LSTM models behind the generation API."""

from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from corpora import UserError
from finetune.charlstm.adapter import WEIGHTS
from finetune.charlstm.model import CharLSTM, CharLSTMConfig, Vocab

from .generation import Params, TextModel, warn_dropped


class CharModel(TextModel):
    kind = "char-lstm"

    def __init__(self, path: Path, config: dict, device: torch.device):
        super().__init__(path, config, device)
        self.vocab = Vocab(config["vocab"])
        self.prime = config["prime"]
        self.model = CharLSTM(CharLSTMConfig(**config["architecture"]))
        weights = path / WEIGHTS
        if not weights.is_file():
            raise UserError(f"{path} has no {WEIGHTS} yet: its training was stopped before the first evaluation")
        self.model.load_state_dict(load_file(str(weights), device="cpu"))
        self.model.to(device).eval()

    def _pieces(self, prompt: str, params: Params, generator: torch.Generator) -> Iterator[str]:
        ids, dropped = self.vocab.encode_lenient(prompt)
        warn_dropped(dropped)
        # the state after the document start, then the prompt: like a text the model has read from its beginning
        prime = self.vocab.encode(self.prime) + ids
        for next_id in self.model.generate_ids(prime, generator, params.temperature, params.top_k, params.top_p):
            yield self.vocab.chars[next_id]
