"""GPT-2 written through llama.cpp (llama-cpp-python, an optional extra): its GGUF export as the forward pass.

Only the forward pass moves. Ids go in and the next token's logits come out;
the tokenizer, the sampler (contract.sampling), the sliding context window
(kinds.gpt2.generate.generate_ids), and above them stop strings, recording
and the copy check stay ghostwriter's, so a sample keeps every setting and
guarantee it has on the torch path.

It drives llama.cpp through its C API (the `llama_cpp` module's bindings of
llama.h), not llama-cpp-python's `Llama` class, for two reasons: that class
samples by itself, and it cannot turn off llama.cpp's extra CPU weight
layouts, which crashed llama-cpp-python 0.3.36 on q8_0 and q4_0 files on an
AMX CPU (this project's development machine).

One llama.cpp context holds the keys and values of the last ids it was fed;
each request keeps the longest prefix it shares with them and feeds the
rest, so the next prompt of a writer who typed on costs only the new tokens,
as the torch path's session cache does, and two generations that interleave
only cost each other recomputation.
"""

import logging
import threading
from pathlib import Path

import numpy as np
import torch

from corpora import UserError

from .base import load_tokenizer
from .infer import GPT2Decoder

INSTALL = "pip install 'ghostwriter[llamacpp]'"


def library():
    """The `llama_cpp` module (llama.h's bindings); a one-line error saying how to install it where it is not."""
    try:
        import llama_cpp
    except ImportError:
        raise UserError(f"--backend llama.cpp needs llama-cpp-python, which is not installed: {INSTALL}") from None
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its log callback prints llama.cpp's every line
    return llama_cpp


class Engine:
    """A llama.cpp model and context over one GGUF file, fed ids and answering the next token's logits."""

    def __init__(self, path: Path, n_ctx: int, threads: int):
        lib = self.lib = library()
        lib.llama_backend_init()
        params = lib.llama_model_default_params()
        params.use_extra_bufts = False  # see the module's docstring
        self.model = lib.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise UserError(f"llama.cpp cannot load {path}")
        context = lib.llama_context_default_params()
        context.n_ctx, context.n_batch, context.n_ubatch = n_ctx, n_ctx, min(n_ctx, 512)
        context.n_threads = context.n_threads_batch = threads
        self.ctx = lib.llama_init_from_model(self.model, context)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise UserError(f"llama.cpp cannot make a context of {n_ctx} tokens for {path}")
        self.n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model))
        self.held: list[int] = []  # the ids whose keys and values the context holds, in order
        self.lock = threading.Lock()

    def logits(self, ids: list[int]) -> torch.Tensor:
        """The logits after `ids` (float32, one per token of the vocabulary)."""
        with self.lock:
            same = 0
            for a, b in zip(self.held, ids, strict=False):
                if a != b:
                    break
                same += 1
            same = min(same, len(ids) - 1)  # the last id is fed again at least, for its logits
            self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.ctx), -1, same, -1)
            del self.held[same:]
            new = ids[same:]
            batch = (self.lib.llama_token * len(new))(*new)
            if self.lib.llama_decode(self.ctx, self.lib.llama_batch_get_one(batch, len(new))) != 0:
                self.held.clear()
                self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
                raise RuntimeError(f"llama.cpp could not decode {len(new)} tokens")
            self.held.extend(new)
            row = self.lib.llama_get_logits_ith(self.ctx, -1)
            return torch.from_numpy(np.ctypeslib.as_array(row, shape=(self.n_vocab,)).copy())

    def __del__(self) -> None:
        lib = getattr(self, "lib", None)
        if lib is not None and getattr(self, "ctx", None):
            lib.llama_free(self.ctx)
            lib.llama_model_free(self.model)


class EngineCache:
    """kinds.gpt2.generate's Cache over an Engine: the ids of one generation, whose logits the engine computes."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.ids: list[int] = []

    def keep(self, ids: list[int]) -> list[int]:
        self.ids = []  # the engine keeps what it can of them itself
        return ids

    def feed(self, ids: list[int]) -> torch.Tensor:
        self.ids.extend(ids)
        return self.engine.logits(self.ids)


class LlamaCppDecoder(GPT2Decoder):
    """GPT2Decoder with llama.cpp as its forward pass (the tokenizer is the model's own)."""

    def __init__(self, path: Path, tokenizer_source: str, n_ctx: int, threads: int, precision: str):
        self.model = None
        self.tokenizer = load_tokenizer(tokenizer_source)
        self.n_ctx = n_ctx
        self._texts = None
        self.engine = Engine(path, n_ctx, threads)
        self.precision = f"llama.cpp {precision}"

    def new_state(self) -> EngineCache:
        return EngineCache(self.engine)

    def quantize(self, card, mode: str) -> None:
        """The file's type was chosen when it was written (see assistant.export.engine_file)."""
