"""The model kinds ghostwriter trains and writes with: one entry each.

A kind is a package under `kinds/` with three modules:

- `options.py`: its command-line options as a dataclass (standard library only),
  with `validate()`, `prepared()` and `resumed(card, new)`;
- `train.py`: `make_adapter(corpus, options, seed, device, world)`, the training
  core's adapter (see `finetune.adapter.Adapter`; `world`: this process's rank, see finetune.distributed);
- `infer.py`: `load(card, device)`, a decoder for the generation API (see
  `contract.sampling.Decoder`).

Its entry below gives the one name it has on the command line (`--model NAME`)
and in config.json (`"kind"`), the weight files that make a directory of it
loadable, and the views it supports. Adding a kind is one package and one line.

The table names each kind's modules by their import path and imports them only
when asked (`options`, `train()`, `infer()`, `view()`), so that this module,
below training and the kinds in the package order, imports none of them.
"""

import importlib
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

from corpora import UserError
from corpora.suggest import did_you_mean


@dataclass(frozen=True)
class Kind:
    name: str  # --model NAME and config.json "kind"
    help: str  # what it is, for --help
    package: str  # holds train.py and infer.py, and the views
    options_class: str  # "module:Class", the options dataclass the CLI fills from flags (torch-free)
    weights: tuple[str, ...]  # files (or folders) of a model directory, any of which it loads from
    # the views it supports, each a module of its package: "evaluate" (its loss on any text, for `assistant eval`),
    # "cells" (an LSTM's cell states), "export" (a GGUF file for llama.cpp and the engines on it, `assistant export`)
    views: frozenset[str] = frozenset()
    aliases: tuple[str, ...] = ()  # older spellings of its name in config.json files, read as this one

    @property
    def options(self) -> type:
        """The options dataclass (importing it imports no torch)."""
        module, name = self.options_class.split(":")
        return getattr(importlib.import_module(module), name)

    def train(self) -> ModuleType:
        """The module with `make_adapter` (imports torch)."""
        return importlib.import_module(f"{self.package}.train")

    def infer(self) -> ModuleType:
        """The module with `load` (imports torch)."""
        return importlib.import_module(f"{self.package}.infer")

    def view(self, name: str, model: str) -> ModuleType:
        """The module of one of its `views` (imports torch); a one-line error naming the kinds that have it when this
        one has not (`model` names the model asked about)."""
        if name not in self.views:
            having = ", ".join(k.name for k in KINDS.values() if name in k.views)
            raise UserError(f"{model} is a {self.name} model: {VIEWS[name]} are for {having} models")
        return importlib.import_module(f"{self.package}.{name}")

    def make_options(self, flags: dict[str, Any]) -> Any:
        """This kind's options from the kind-specific flags the user gave; a flag it does not take is an error."""
        known = {f.name for f in fields(self.options)}
        if stray := [f"--{k.replace('_', '-')}" for k in flags if k not in known]:
            raise UserError(f"{', '.join(stray)} {'is' if len(stray) == 1 else 'are'} not for --model {self.name} models")
        return self.options(**flags)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("gpt2", "GPT-2 retrained (all weights or LoRA)", "kinds.gpt2", "kinds.gpt2.options:GPT2Options",
         ("model.safetensors", "adapter_model.safetensors", "merged"), frozenset({"evaluate", "export"})),
    Kind("char", "a character-level LSTM", "kinds.charlstm", "kinds.charlstm.options:CharOptions", ("model.safetensors",),
         frozenset({"evaluate", "cells"}), aliases=("char-lstm",)),
    Kind("char-transformer", "a small character-level transformer (nanoGPT's)", "kinds.chartransformer",
         "kinds.charlstm.options:CharOptions", ("model.safetensors",), frozenset({"evaluate"})),
)}
VIEWS = {"evaluate": "evaluations", "cells": "cell pictures", "export": "GGUF exports"}  # each view's name in an error
ALIASES = {alias: k.name for k in KINDS.values() for alias in (k.name, *k.aliases)}


def get(name: str) -> Kind:
    """The kind by its name (or an older spelling of it); a one-line error naming the known ones otherwise."""
    if name not in ALIASES:
        raise UserError(f"unknown --model {name!r}: {did_you_mean(name, ALIASES)}choose {', '.join(KINDS)}")
    return KINDS[ALIASES[name]]
