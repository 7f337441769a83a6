"""A GPT-2 as one GGUF file: the format llama.cpp, and Ollama, LM Studio and KoboldCpp on top of it, load.

Written with the `gguf` package (llama.cpp's own Python writer, its
constants, its tensor-name map and its quantizers) the way llama.cpp's
`convert_hf_to_gguf.py` writes a `GPT2LMHeadModel`: architecture `gpt2`,
Hugging Face names mapped by the package's table for that architecture,
GPT-2's Conv1D weights transposed to the (out, in) layout of a Linear, and a
tied output layer left out (llama.cpp reads the token embedding for it). The
tokenizer goes in whole (tokens, token types, merges, special ids), so an
engine writes from the file alone.

Which types: norms, biases and the position embedding stay float32, as the
converter keeps them; the matrices take the file's type. At 4 and 5 bits the
token embedding, which is also the output layer, stays at q8_0: llama.cpp's
own quantizer keeps that layer at 6 bits or more too, since every next-token
choice goes through it. The k-quants (q4_K_M...) are not here: the package
can read them but quantizes to them only in llama.cpp's C code.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from corpora import UserError

Q = gguf.GGMLQuantizationType
F = gguf.LlamaFileType


@dataclass(frozen=True)
class Quant:
    """A file type: what its matrices are stored in, and how the file names it (`general.file_type`)."""

    name: str
    matrices: gguf.GGMLQuantizationType
    file_type: gguf.LlamaFileType

    @property
    def low_bits(self) -> bool:
        """Below 8 bits a matrix loses enough that the output layer is kept at q8_0."""
        return self.matrices in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1)


QUANTS = {q.name: q for q in (
    Quant("f32", Q.F32, F.ALL_F32), Quant("f16", Q.F16, F.MOSTLY_F16), Quant("bf16", Q.BF16, F.MOSTLY_BF16),
    Quant("q8_0", Q.Q8_0, F.MOSTLY_Q8_0), Quant("q5_1", Q.Q5_1, F.MOSTLY_Q5_1), Quant("q5_0", Q.Q5_0, F.MOSTLY_Q5_0),
    Quant("q4_1", Q.Q4_1, F.MOSTLY_Q4_1), Quant("q4_0", Q.Q4_0, F.MOSTLY_Q4_0),
)}
DEFAULT_QUANT = "q8_0"  # near float on every check, and llama.cpp's fastest type on a CPU
# llama.cpp's k-quant file types (LlamaFileType.MOSTLY_Q4_K_M -> q4_K_M): the gguf package cannot write them
K_QUANTS = ["q" + t.name.removeprefix("MOSTLY_Q") for t in F if "_K" in t.name and t.name.startswith("MOSTLY_Q")]
K_QUANT_WHY = ("the gguf package quantizes to k-quants only in llama.cpp's C code: export f16, then run llama.cpp's "
               "`llama-quantize FILE.gguf OUT.gguf {upper}`")

PRE_TOKENIZER = "gpt-2"  # llama.cpp's name for GPT-2's byte-level split (its tokenizer model is "gpt2")
ALWAYS_F32 = (gguf.MODEL_TENSOR.POS_EMBD,)  # as the converter keeps it, whatever the file type


def quant(name: str) -> Quant:
    """The file type of this name; a one-line error that names those there are, and says why a k-quant is not."""
    if name in QUANTS:
        return QUANTS[name]
    k = next((k for k in K_QUANTS if k.lower() == name.lower()), None)
    if k is not None:
        raise UserError(f"--quant {k} is not available: " + K_QUANT_WHY.format(upper=k.upper()))
    raise UserError(f"unknown --quant {name!r}: choose {', '.join(QUANTS)}")


def plain(model: nn.Module) -> nn.Module:
    """The GPT2LMHeadModel itself: a LoRA model (peft) is merged into its base first, on a copy."""
    if hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    return model


def tensors(model: nn.Module) -> Iterator[tuple[gguf.MODEL_TENSOR, str, np.ndarray]]:
    """Each weight under its GGUF name, as float32 in the layout llama.cpp reads."""
    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, config.n_layer)
    conv = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, Conv1D)}
    tied = model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    for name, tensor in model.state_dict().items():
        if name.endswith((".attn.bias", ".attn.masked_bias")) or (tied and name == "lm_head.weight"):
            continue  # the causal mask's buffers of older transformers; a tied output layer is the embedding
        found = names.get_type_and_name(name, try_suffixes=(".weight", ".bias"))
        if found is None:
            raise ValueError(f"GPT-2 weight {name!r} has no name in llama.cpp's GPT-2")
        array = tensor.detach().float().cpu()
        yield found[0], found[1], (array.t() if name in conv else array).contiguous().numpy()


def tensor_type(kind: gguf.MODEL_TENSOR, array: np.ndarray, quant: Quant) -> gguf.GGMLQuantizationType:
    if array.ndim <= 1 or kind in ALWAYS_F32:
        return Q.F32
    wanted = Q.Q8_0 if quant.low_bits and kind in (gguf.MODEL_TENSOR.TOKEN_EMBD, gguf.MODEL_TENSOR.OUTPUT) else quant.matrices
    block = gguf.GGML_QUANT_SIZES[wanted][0]
    return wanted if array.shape[-1] % block == 0 else Q.F16  # a row that blocks do not divide: f16, as the converter


def add_tokenizer(writer: gguf.GGUFWriter, tokenizer, vocab_size: int) -> None:
    """GPT-2's byte-level BPE as llama.cpp reads it: every token with its type, the merges, and <|endoftext|> as
    both ends. `add_bos_token` makes an engine put <|endoftext|> before a prompt, as ghostwriter does (a prompt
    reads as the start of a text, as every training document began)."""
    import json

    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    specials = {i for i, added in tokenizer.added_tokens_decoder.items() if added.special}
    tokens, types = [], []
    for i in range(vocab_size):  # a model wider than its tokenizer: padding tokens, as the converter names them
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        types.append(gguf.TokenType.CONTROL if i in specials else
                     gguf.TokenType.NORMAL if i in by_id else gguf.TokenType.USER_DEFINED)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZER)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(tokenizer.eos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def writer(path: Path, model: nn.Module, tokenizer, quant: Quant,
           progress: Callable[[int, int], None] = lambda done, total: None) -> gguf.GGUFWriter:
    """A GGUFWriter for `path` holding GPT-2's hyperparameters, tokenizer and (quantized) tensors; the caller adds
    its metadata and then `finish`es it. `progress(done, total)` after each tensor."""
    model = plain(model)
    config = model.config
    out = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2])
    out.add_block_count(config.n_layer)
    out.add_context_length(config.n_positions)
    out.add_embedding_length(config.n_embd)
    out.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
    out.add_head_count(config.n_head)
    out.add_layer_norm_eps(config.layer_norm_epsilon)
    out.add_file_type(quant.file_type)
    out.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(out, tokenizer, config.vocab_size)
    with torch.no_grad():
        weights = list(tensors(model))
    for done, (kind, name, array) in enumerate(weights, 1):
        qtype = tensor_type(kind, array, quant)
        data = gguf.quants.quantize(array, qtype)
        out.add_tensor(name, data, raw_dtype=qtype)
        progress(done, len(weights))
    return out


def finish(out: gguf.GGUFWriter) -> None:
    """Write the file: header, metadata, tensors."""
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()
