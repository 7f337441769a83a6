"""GPT-2's fast CPU decoding (kinds.gpt2.fast): the same tokens as Hugging Face's forward, streamed or whole."""

from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from assistant import load_model
from kinds.gpt2.fast import KVCache
from kinds.gpt2.generate import PlainCache, generate_ids, new_cache, precision_for


def tiny_gpt2(n_positions: int = 48) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=n_positions)).eval()


def ids(model: GPT2LMHeadModel, prime: list[int], n: int, temperature: float, seed: int = 0, **kwargs) -> list[int]:
    stream = generate_ids(model, prime, torch.Generator().manual_seed(seed), model.config.n_positions, temperature,
                          **kwargs)
    return [next(stream) for _ in range(n)]


def test_fast_and_plain_paths_choose_the_same_tokens_past_the_context_window():
    model = tiny_gpt2()
    assert isinstance(new_cache(model), KVCache) and isinstance(new_cache(model, fast=False), PlainCache)
    prime = list(range(1000, 1030))
    for temperature in (0.0, 1.0):  # 100 tokens in a window of 48: the cache is rebuilt on the way
        assert ids(model, prime, 100, temperature) == ids(model, prime, 100, temperature, fast=False)


def test_a_model_in_training_takes_the_plain_path():
    model = tiny_gpt2().train()
    assert isinstance(new_cache(model), PlainCache)


def test_streaming_writes_what_the_whole_call_writes(gpt2_base: Path):
    model = load_model(gpt2_base, "cpu")
    assert isinstance(new_cache(model.decoder.model), KVCache)
    streamed = "".join(model.stream("ROMEO:", max_new_tokens=40, seed=5, temperature=0.9))
    assert streamed == model.generate("ROMEO:", max_new_tokens=40, seed=5, temperature=0.9) and streamed


def test_each_device_writes_in_its_precision(monkeypatch: pytest.MonkeyPatch):
    """A GPU with bf16 holds bf16 weights; MPS keeps float32 weights under fp16 autocast; the CPU float32."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision_for(torch.device("cuda")) == (torch.bfloat16, None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision_for(torch.device("cuda")) == (torch.float32, None)
    assert precision_for(torch.device("mps")) == (torch.float32, torch.float16)
    assert precision_for(torch.device("cpu")) == (torch.float32, None)


def test_bf16_weights_take_the_fast_path_with_the_plain_paths_tokens(gpt2_base: Path):
    """The GPU's bf16 weights, on the CPU: the static cache and Hugging Face's forward choose the same tokens."""
    model = load_model(gpt2_base, "cpu", "none").decoder.model.to(torch.bfloat16)
    assert isinstance(new_cache(model), KVCache)
    prime = list(range(2000, 2020))
    assert ids(model, prime, 30, 0.0) == ids(model, prime, 30, 0.0, fast=False)


def test_the_fixed_shape_step_a_cuda_graph_replays_gives_the_variable_shape_steps_tokens():
    """The step CUDA records as a graph (one token, attention over the whole cache, later positions masked), run
    eagerly on the CPU: the same logits as the step that attends to the written positions only, past the window."""
    model = tiny_gpt2()
    static, variable = KVCache(model, static_steps=True), KVCache(model, static_steps=False)
    assert KVCache(model).static_steps is False  # a CPU steps in variable shapes unless told
    for cache in (static, variable):
        cache.feed(list(range(1000, 1010)))
    for token in range(2000, 2030):
        a, b = static.feed([token]), variable.feed([token])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert static.ids == variable.ids
    static.keep([*static.ids[:5], 7, 8])  # an edit: the positions after it are masked again, not read
    variable.keep([*variable.ids[:5], 7, 8])
    torch.testing.assert_close(static.feed([7]), variable.feed([7]), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as training's samples run: float32 weights, bf16 products
        static, variable = KVCache(model, static_steps=True), KVCache(model, static_steps=False)
        static.feed([1, 2, 3])
        variable.feed([1, 2, 3])
        torch.testing.assert_close(static.feed([4]), variable.feed([4]), rtol=0.02, atol=0.02)
    prime = list(range(1000, 1030))
    stream = generate_ids(model, prime, torch.Generator().manual_seed(0), 48, 0.0, cache=KVCache(model, static_steps=True))
    assert [next(stream) for _ in range(100)] == ids(model, prime, 100, 0.0, fast=False)
