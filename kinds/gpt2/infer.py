"""GPT-2 loaded for writing: fine-tuned models, LoRA adapters, and plain bases.

A fine-tuned model directory loads with `from_pretrained`; a LoRA directory
loads its merged copy when there is one, else its base plus the adapter. A
name that is no trained model (`gpt2`) loads that base as it is, so a writer
can compare the fine-tuned model with vanilla GPT-2.
"""

import sys
import warnings
from pathlib import Path

import torch

from contract.modeldir import ADAPTER_CONFIG, MERGED, Card
from corpora import UserError

from . import base as bases
from . import quantize as int8
from .generate import Cache, GPT2Cursor, new_cache, precision_for


class GPT2Decoder:
    def __init__(self, model: torch.nn.Module, tokenizer_source: str, device: torch.device):
        weights, autocast = precision_for(device)
        self.model = model.to(device=device, dtype=weights).eval()
        self.tokenizer = bases.load_tokenizer(tokenizer_source)
        self.n_ctx = model.config.n_positions
        self._texts: list[str] | None = None
        self.precision = str(autocast or weights).removeprefix("torch.") + (" autocast" if autocast else "")

    @classmethod
    def over(cls, model: torch.nn.Module, tokenizer, n_ctx: int) -> "GPT2Decoder":
        """A decoder over a model as it stands (a training run's, for its ghostwriting evaluation): its weights are
        neither moved nor cast, as writing's own decoder casts them (bf16 on a GPU), which would change what is
        being trained."""
        decoder = cls.__new__(cls)
        decoder.model, decoder.tokenizer, decoder.n_ctx, decoder._texts = model, tokenizer, n_ctx, None
        decoder.precision = str(next(model.parameters()).dtype).removeprefix("torch.")
        return decoder

    def quantize(self, card: Card, mode: str) -> None:
        """Write in int8 where `mode` asks for it and the model's check allows it (see kinds.gpt2.quantize).

        "auto" takes int8 on a CPU whenever the check passes and stays float32
        otherwise; "int8" refuses, with the reason, where it cannot be had.
        """
        if mode == "none":
            return
        demanded = mode == "int8"
        check = self._int8_check(card, demanded)
        if check is None:
            return
        if not check.passed:
            if demanded:
                raise UserError(f"{card.name} cannot write in int8: {check.describe()}; it writes in float32 "
                                "without --quantize int8")
            return
        self.model = int8.to_int8(self.model)
        self.precision = "int8"

    def _int8_check(self, card: Card, demanded: bool) -> int8.Int8Check | None:
        """The checkpoint's recorded check, measured now if it has none; None (or, demanded, an error) without one."""
        def unavailable(why: str) -> None:
            if demanded:
                raise UserError(f"--quantize int8: {why}")

        device = next(self.model.parameters()).device
        if device.type != "cpu":
            return unavailable(f"int8 is for writing on a CPU, and {card.name} is on {device}; use --device cpu")
        if not int8.available():
            return unavailable("this build of torch has no quantized engine (fbgemm, x86 or qnnpack)")
        if card.path is None or card.corpus is None:
            return unavailable(f"{card.name} has no corpus of its own to check int8's loss on; it writes in float32")
        folder = card.weights("")
        check = int8.read_record(folder)
        if check is not None:
            return check
        corpus, missing = card.corpus.find()
        if corpus is None:
            return unavailable(f"{missing}, and int8 is checked on the model's own validation text")
        ids = int8.validation_ids(corpus, self.tokenizer, card.split)
        print(f"checking {card.name} in int8 against float32 on {len(ids) - 1:,} validation tokens "
              "(once for these weights)", file=sys.stderr, flush=True)
        check = int8.measure(self.model, ids, int8.weights_key(folder))
        int8.record(folder, check)
        return check

    def new_state(self) -> Cache:
        """A KV cache that keeps the prefix shared with the next prompt (see generate_ids)."""
        return new_cache(self.model)

    @property
    def end_id(self) -> int:
        return self.tokenizer.eos_token_id

    def start(self, prompt: str, state: Cache | None = None, keep: int = 0) -> GPT2Cursor:
        """GPT-2 after the prompt; it rewinds as far as asked (the cache holds every position)."""
        # <|endoftext|> first, as before every training document: the prompt reads as the start of a text
        prime = [self.end_id, *self.tokenizer.encode(prompt)]
        return GPT2Cursor(self.model, prime, self.n_ctx, state if state is not None else self.new_state())

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, clean_up_tokenization_spaces=False)

    def token_texts(self) -> list[str]:
        if self._texts is None:
            self._texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))],
                                                      clean_up_tokenization_spaces=False)
        return self._texts


def load(card: Card, device: torch.device) -> GPT2Decoder:
    """A model directory's GPT-2 at the card's checkpoint: merged/, base plus adapter, or its own weights."""
    try:
        return _load(card, device)
    except bases.BaseUnavailable as e:  # a LoRA adapter's base: not to be had now
        raise e.for_writing() from None


def tokenizer_source(card: Card) -> str:
    """The folder whose tokenizer the card's checkpoint writes with: its merged copy's, or its own."""
    path = card.weights("")
    return str(path / MERGED if (path / MERGED).is_dir() else path)


def _load(card: Card, device: torch.device) -> GPT2Decoder:
    path = card.weights("")
    if (path / MERGED).is_dir():
        return GPT2Decoder(bases.load_pretrained(str(path / MERGED), {}), tokenizer_source(card), device)
    if (path / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        base_name = card.extra["base"]
        base = bases.load_pretrained(base_name, {})
        if card.extra.get("base_weights") not in (None, bases.weights_fingerprint(base)):
            warnings.warn(f"base {base_name!r} has changed since {card.name} was trained: its LoRA adapter "
                          "was fitted to other weights, and what it writes will be off", stacklevel=2)
        with bases.quiet_transformers():
            model = PeftModel.from_pretrained(base, str(path))
        return GPT2Decoder(model, str(path), device)
    return GPT2Decoder(bases.load_pretrained(str(path), {}), str(path), device)


def load_base(name: str, device: torch.device) -> tuple[Card, GPT2Decoder]:
    """A GPT-2 base by hub name or save_pretrained directory, untouched by ghostwriter, and a card for it."""
    try:
        decoder = GPT2Decoder(bases.load_pretrained(name, {}), name, device)
    except bases.BaseUnavailable as e:
        raise e.for_writing() from None
    return Card(kind="gpt2", name=name, path=Path(name) if Path(name).is_dir() else None, extra={"base": name}), decoder
