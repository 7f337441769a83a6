"""GPT-2 models behind the generation API: fine-tuned ones, LoRA adapters, and plain bases.

A fine-tuned model directory loads with `from_pretrained`; a LoRA directory
loads its merged copy when there is one, else its base plus the adapter. A
name that is no trained model (`gpt2`) loads that base as it is, so a writer
can compare the fine-tuned model with vanilla GPT-2.
"""

import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from corpora import UserError
from finetune.gpt2 import base as bases
from finetune.gpt2.adapter import MERGED
from finetune.gpt2.generate import TextDecoder, generate_ids

from .generation import Params, TextModel

ADAPTER_CONFIG = "adapter_config.json"


class GPT2Model(TextModel):
    kind = "gpt2"

    def __init__(self, path: Path, config: dict, device: torch.device):
        super().__init__(path, config, device)
        source = str(path / MERGED) if (path / MERGED).is_dir() else str(path)
        if "format" not in config:  # a base as it is
            model, source = bases.load_pretrained(config["base"], {}), config["base"]
        elif (path / ADAPTER_CONFIG).is_file() and source == str(path):
            from peft import PeftModel

            base = bases.load_pretrained(config["base"], {})
            if config.get("base_weights") not in (None, bases.weights_fingerprint(base)):
                warnings.warn(f"base {config['base']!r} has changed since {path.name} was trained: its LoRA adapter "
                              "was fitted to other weights, and what it writes will be off", stacklevel=2)
            with bases.quiet_transformers():
                model = PeftModel.from_pretrained(base, str(path))
        elif (Path(source) / "model.safetensors").is_file():
            model = bases.load_pretrained(source, {})
        else:
            raise UserError(f"{path} has no weights yet: its training was stopped before the first evaluation")
        self.model = model.to(device).eval()
        self.tokenizer = bases.load_tokenizer(source)
        self.n_ctx = model.config.n_positions

    @classmethod
    def base(cls, name: str, device: torch.device, no_model: str) -> "GPT2Model":
        """A GPT-2 base by hub name or save_pretrained directory, untouched by ghostwriter."""
        try:
            return cls(Path(name), {"kind": cls.kind, "name": name, "base": name}, device)
        except UserError as e:
            reason = e.reason if isinstance(e, bases.BaseUnavailable) else str(e)
            raise UserError(f"{no_model}; nor a GPT-2 base on the Hugging Face hub or in its cache ({reason})") from None

    def _pieces(self, prompt: str, params: Params, generator: torch.Generator) -> Iterator[str]:
        eos = self.tokenizer.eos_token_id
        # <|endoftext|> first, as before every training document: the prompt reads as the start of a text
        prime = [eos, *self.tokenizer.encode(prompt)]
        decoder = TextDecoder(self.tokenizer)
        for token in generate_ids(self.model, prime, generator, self.n_ctx, params.temperature, params.top_k, params.top_p):
            if token == eos:
                return
            yield decoder.push(token)
