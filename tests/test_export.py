"""`assistant export`: the tests' tiny GPT-2 (real tokenizer) as GGUF, read back with the gguf package's own reader.

Where llama-cpp-python is installed, the files are also run in llama.cpp and
checked against ghostwriter's own float32 path; elsewhere those tests skip.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from assistant.cli.export import QUANT_HELP
from assistant.export import export
from corpora import UserError
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.gpt2.export import QUANTS
from kinds.gpt2.options import GPT2Options

from .conftest import CORPORA, GPT2_TOKENIZER, run_cli

GPT2_NAMES = {f"blk.{i}.{part}.{p}" for i in range(2) for part in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm",
                                                                      "ffn_up", "ffn_down") for p in ("weight", "bias")}
GPT2_NAMES |= {"token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias"}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny models write on one thread (ASSISTANT_THREADS, which load_model reads): threads that wait for each other
    by spinning, as llama.cpp's do, took 130 ms a token of the tiny model on a busy 2-core machine where one took
    1.5 ms. torch's own count is put back afterwards, for the tests that follow."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("ASSISTANT_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def _fields(path: Path) -> tuple[dict, dict]:
    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items()}, {t.name: t for t in reader.tensors}


def _dequantized(tensor) -> np.ndarray:
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(tensor.data.shape[0], -1)


def test_an_f16_export_reads_back_with_its_architecture_tensors_tokenizer_and_metadata(gpt2_base: Path, tmp_path: Path):
    done = export(str(gpt2_base), quant="f16", out=tmp_path / "base.gguf")
    fields, tensors = _fields(done.path)
    model = AutoModelForCausalLM.from_pretrained(gpt2_base)
    config = model.config
    assert fields["general.architecture"] == "gpt2" and fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16
    assert (fields["gpt2.block_count"], fields["gpt2.embedding_length"], fields["gpt2.attention.head_count"],
            fields["gpt2.context_length"], fields["gpt2.feed_forward_length"]) == (2, 64, 2, config.n_positions, 256)

    assert set(tensors) == GPT2_NAMES  # the output layer is tied to the embedding: llama.cpp reads token_embd for it
    assert list(tensors["token_embd.weight"].shape) == [64, 50257]  # ggml's order: the row length first
    assert list(tensors["blk.0.attn_qkv.weight"].shape) == [64, 192]  # (out, in) rows, Conv1D's (in, out) transposed
    assert list(tensors["blk.1.ffn_down.weight"].shape) == [256, 64]
    matrices = {n for n in GPT2_NAMES if n.endswith(".weight") and "norm" not in n and n != "position_embd.weight"}
    assert {n for n, t in tensors.items() if t.tensor_type == gguf.GGMLQuantizationType.F16} == matrices
    weights = model.transformer.h[0].attn.c_attn.weight.detach().t().numpy()
    np.testing.assert_array_equal(tensors["blk.0.attn_qkv.weight"].data, weights.astype(np.float16))
    np.testing.assert_array_equal(tensors["position_embd.weight"].data, model.transformer.wpe.weight.detach().numpy())

    tokens, merges = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.merges"]
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    assert len(tokens) == 50257 and tokens[50256] == "<|endoftext|>" and tokens[262] == "Ġthe"
    assert fields["tokenizer.ggml.token_type"][50256] == gguf.TokenType.CONTROL
    assert set(fields["tokenizer.ggml.token_type"][:50256]) == {gguf.TokenType.NORMAL}
    assert len(merges) == 50000 and merges[0] == "Ġ t"
    assert fields["tokenizer.ggml.bos_token_id"] == fields["tokenizer.ggml.eos_token_id"] == 50256
    assert fields["tokenizer.ggml.add_bos_token"] is True  # <|endoftext|> before a prompt, as ghostwriter writes

    card = json.loads((gpt2_base / "config.json").read_text())
    assert fields["general.name"] == "base" and fields["general.dataset.0.name"] == card["corpus"]["name"]
    assert fields["ghostwriter.corpus_checksum"] == card["corpus"]["checksum"]
    assert fields["ghostwriter.checkpoint"] == "best-val" and "trained from scratch" in fields["general.description"]
    assert fields["ghostwriter.best_val_loss"] == pytest.approx(card["result"]["best_val"])
    assert fields["general.sampling.temp"] == pytest.approx(0.8) and fields["general.sampling.top_k"] == 0
    assert fields["general.sampling.top_p"] == 1.0 and fields["general.sampling.penalty_repeat"] == 1.0

    modelfile = done.modelfile.read_text()
    assert done.modelfile == tmp_path / "base.Modelfile" and "FROM ./base.gguf\n" in modelfile
    assert f"PARAMETER num_ctx {config.n_positions}\n" in modelfile and "PARAMETER temperature 0.8\n" in modelfile
    assert "PARAMETER top_k 0\n" in modelfile and 'TEMPLATE """{{ .Prompt }}"""' in modelfile
    readme = done.readme.read_text()
    assert all(command in readme for command in ("ollama create base -f base.Modelfile", "lms import base.gguf",
                                                 "koboldcpp --model base.gguf", "llama-server -m base.gguf"))


def test_quantized_exports_round_their_matrices_and_keep_the_output_layer_at_8_bits(gpt2_base: Path, tmp_path: Path):
    model = AutoModelForCausalLM.from_pretrained(gpt2_base)
    wte = model.transformer.wte.weight.detach().numpy()
    up = model.transformer.h[1].mlp.c_fc.weight.detach().t().numpy()
    q8 = export(str(gpt2_base), quant="q8_0", out=tmp_path / "q8.gguf")
    fields, tensors = _fields(q8.path)
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0 and q8.quant == "q8_0"
    assert tensors["blk.1.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.1.ffn_up.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    np.testing.assert_allclose(_dequantized(tensors["blk.1.ffn_up.weight"]), up, atol=np.abs(up).max() / 127)
    q4 = export(str(gpt2_base), quant="q4_0", out=tmp_path / "q4.gguf")
    _, tensors = _fields(q4.path)
    assert tensors["blk.1.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q4_0
    assert tensors["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0  # it is the output layer too
    np.testing.assert_allclose(_dequantized(tensors["token_embd.weight"]), wte, atol=np.abs(wte).max() / 127)
    assert q4.bytes < q8.bytes
    for name in QUANTS:  # --help names every file type without importing gguf
        assert name in QUANT_HELP


def _lora(gpt2_base: Path, pkd_slice: Path, out: Path) -> None:
    options = GPT2Options(base=str(gpt2_base), block_size=32, micro_batch=4, batch_tokens=256, lr=3e-2, lora=True)
    finetune(FinetuneConfig(corpus=str(pkd_slice), out=out, max_steps=3, eval_every=3, sample_every=1000, seed=7,
                            ghostwriting_every=0, options=options), Reporter())


def test_a_lora_model_exports_merged_into_its_base(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    _lora(gpt2_base, pkd_slice, tmp_path / "lora")
    assert not (tmp_path / "lora" / "merged").exists()  # trained without --merge: the export merges it
    done = export(f"{tmp_path / 'lora'}@last", quant="f32", out=tmp_path / "lora.gguf")  # the trained adapter
    _, tensors = _fields(done.path)
    base = AutoModelForCausalLM.from_pretrained(gpt2_base).transformer.h
    adapter = load_file(tmp_path / "lora" / "last" / "adapter_model.safetensors")
    config = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    for i, module, name in ((0, "attn.c_attn", "attn_qkv"), (1, "attn.c_proj", "attn_output"), (1, "mlp.c_proj", "ffn_down")):
        prefix = f"base_model.model.transformer.h.{i}.{module}"
        a, b = adapter[f"{prefix}.lora_A.weight"], adapter[f"{prefix}.lora_B.weight"]
        assert b.abs().max() > 0  # trained
        weight = base[i].get_submodule(module).weight.detach().t()  # (out, in)
        merged = tensors[f"blk.{i}.{name}.weight"].data
        np.testing.assert_allclose(merged, (weight + scale * b @ a).numpy(), rtol=0, atol=1e-6)
        assert not np.allclose(merged, weight.numpy(), rtol=0, atol=1e-6)
    untouched = base[0].mlp.c_fc.weight.detach().t().numpy()  # not a LoRA target: the base's
    np.testing.assert_array_equal(tensors["blk.0.ffn_up.weight"].data, untouched)


def test_a_char_model_is_refused_in_one_line(parrot: Path, tmp_path: Path):
    result = run_cli("export", str(parrot), "-o", str(tmp_path / "parrot.gguf"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "is a char model (a character-level LSTM)" in result.stderr
    assert "GGUF engines" in result.stderr and not (tmp_path / "parrot.gguf").exists()


def test_export_mistakes_are_one_line_errors(gpt2_base: Path, tmp_path: Path):
    mine = tmp_path / "notes.gguf"
    mine.write_text("my notes")
    with pytest.raises(UserError, match="exists and is not a GGUF file"):
        export(str(gpt2_base), quant="f16", out=mine)
    assert mine.read_text() == "my notes"
    with pytest.raises(UserError, match="unknown --quant 'q9'"):
        export(str(gpt2_base), quant="q9")
    with pytest.raises(UserError, match="unknown --format 'onnx'"):
        export(str(gpt2_base), fmt="onnx")
    result = run_cli("export", str(gpt2_base), "--quant", "q4_k_m", "-o", str(tmp_path / "x.gguf"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--quant q4_K_M is not available" in result.stderr and "llama-quantize" in result.stderr


def test_the_cli_writes_name_gguf_here_and_says_how_to_run_it(gpt2_base: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    result = run_cli("export", str(gpt2_base), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "base.gguf").is_file() and (tmp_path / "base.Modelfile").is_file()
    assert "wrote base.gguf (base, @best-val, q8_0)" in result.stderr
    assert "ollama create base -f base.Modelfile" in result.stderr
    monkeypatch.chdir(tmp_path)
    assert export(str(gpt2_base), quant="f16").path == Path("base-f16.gguf")  # another type: another file
    assert export(f"{gpt2_base}@best-val").path == Path("base.gguf")  # the default checkpoint: the same file, again
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no partial file left


# ---- through llama.cpp (llama-cpp-python), where it is installed ----------------------------------------------------
HELD_OUT = (CORPORA / "austen" / "persuasion.txt").read_text()[60_000:64_000]  # the base trained on [5_000:35_000]


def _engine(path: Path, n_ctx: int = 1024):
    """On one thread, as the `one_thread` fixture says."""
    pytest.importorskip("llama_cpp")
    from kinds.gpt2.llamacpp import Engine, EngineCache

    return EngineCache(Engine(path, n_ctx, 1))


@pytest.fixture(scope="module")
def wide_random_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 base of random weights ten times GPT-2's initial scale, with the real tokenizer: its greedy text is
    many different tokens, where the tests' trained GPT-2 (40 steps) writes a run of newlines."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("wide-random")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=128, initializer_range=0.1)).save_pretrained(path)
    AutoTokenizer.from_pretrained(GPT2_TOKENIZER).save_pretrained(path)
    return path


def test_llama_cpp_writes_the_f16_file_greedily_as_ghostwriter_writes_in_float32(wide_random_gpt2: Path, tmp_path: Path):
    from assistant import load_model
    from kinds.gpt2.generate import generate_ids

    f16 = export(str(wide_random_gpt2), quant="f16", out=tmp_path / "f16.gguf").path
    ours = load_model(str(wide_random_gpt2), "cpu", "none")  # on one thread (the one_thread fixture)
    for prompt in ("The robot walked", "so the old man", "Anne Elliot was"):
        prime = [50256, *ours.decoder.tokenizer.encode(prompt)]
        mine = generate_ids(ours.decoder.model, prime, torch.Generator(), ours.decoder.n_ctx, temperature=0)
        theirs = generate_ids(None, prime, torch.Generator(), ours.decoder.n_ctx, temperature=0, cache=_engine(f16))
        expected = [next(mine) for _ in range(32)]
        assert [next(theirs) for _ in range(32)] == expected and len(set(expected)) > 10  # words, not one token again
    prime = [50256, *ours.decoder.tokenizer.encode("The robot walked")]  # 300 tokens: past the context of 128, twice
    mine = generate_ids(ours.decoder.model, prime, torch.Generator().manual_seed(1), 128, temperature=1.0)
    theirs = generate_ids(None, prime, torch.Generator().manual_seed(1), 128, temperature=1.0, cache=_engine(f16, 128))
    assert [next(theirs) for _ in range(300)] == [next(mine) for _ in range(300)]


def test_the_llama_cpp_backend_writes_what_the_torch_one_writes(gpt2_base: Path, tmp_path: Path):
    from assistant import load_model

    pytest.importorskip("llama_cpp")
    model = tmp_path / "model"
    shutil.copytree(gpt2_base, model)
    ours = load_model(str(model), "cpu", "none")
    through = load_model(str(model), "cpu", "none", backend="llama.cpp")  # its f32 file, written once
    assert through.precision == "llama.cpp f32" and (model / "llama.cpp-f32.gguf").is_file()
    for seed in range(3):  # ghostwriter's own sampler and generator: the same seed, the same text
        kwargs = {"max_new_tokens": 40, "temperature": 1.0, "seed": seed}
        assert through.generate("Anne Elliot", **kwargs) == ours.generate("Anne Elliot", **kwargs)
    session = through.session()
    assert through.generate("Anne", max_new_tokens=10, seed=3, session=session) == ours.generate("Anne", max_new_tokens=10,
                                                                                                 seed=3)
    quantized = load_model(str(model), "cpu", backend="llama.cpp")
    assert quantized.precision == "llama.cpp q8_0"


def test_the_llama_cpp_backend_says_what_it_needs(gpt2_base: Path, wide_random_gpt2: Path, parrot: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    from assistant import load_model

    with pytest.raises(UserError, match="writes with a model you trained"):
        load_model(str(wide_random_gpt2), "cpu", backend="llama.cpp")
    with pytest.raises(UserError, match="is a char model"):
        load_model(str(parrot), "cpu", backend="llama.cpp")
    with pytest.raises(UserError, match="unknown backend 'vllm'"):
        load_model(str(gpt2_base), "cpu", backend="vllm")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as where llama-cpp-python is not installed
    monkeypatch.setenv("ASSISTANT_BACKEND", "llama.cpp")
    with pytest.raises(UserError, match=r"needs llama-cpp-python, which is not installed: pip install 'ghostwriter\[llamacpp\]'"):
        load_model(str(gpt2_base), "cpu")


def test_llama_cpp_at_q8_0_agrees_on_the_top_token_at_95_percent_of_500_held_out_positions(gpt2_base: Path,
                                                                                          tmp_path: Path):
    from transformers import AutoTokenizer

    cache = _engine(export(str(gpt2_base), quant="q8_0", out=tmp_path / "q8.gguf").path)
    model = AutoModelForCausalLM.from_pretrained(gpt2_base).eval()
    ids = [50256, *AutoTokenizer.from_pretrained(gpt2_base).encode(HELD_OUT)][:500]
    assert len(ids) == 500
    with torch.no_grad():
        ours = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).numpy()
    theirs = np.array([int(cache.feed([token]).argmax()) for token in ids])
    agreement = float((ours == theirs).mean())
    print(f"q8_0 top-1 agreement with float32: {agreement:.3f} over {len(ids)} positions")
    assert agreement >= 0.95
