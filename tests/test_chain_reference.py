"""The chain the loop runs (compiled, on numpy) gives what the plain processors give on torch vectors.

contract.processors keeps each processor twice: the plain functions on a
torch vector (test_samplers checks them against hand-computed vectors) and
the chain, one compiled pass (contract.compiled) over a buffer of the ids
that follows the text as tokens are written and taken back, ranking the
tokens once for all the cutters. These tests hold the second to the first:
step by step on random scores, through rewinds, and as a seeded sample of
both kinds, token for token.
"""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant.generation import load_model
from contract import processors as p
from contract.loop import REPLACEMENT, tokens
from contract.processors import Context, chain
from contract.sampling import Sampling

FULL = Sampling(temperature=0.8, logit_bias=(("rain", 1.0), ("the", -2.0)), repetition_penalty=1.3,
                repetition_range=64, presence_penalty=0.2, frequency_penalty=0.1, dry_multiplier=0.8, top_k=40,
                top_p=0.95, min_p=0.05, typical_p=0.95)


def reference(logits: torch.Tensor, context: Context, s: Sampling, decoder) -> torch.Tensor:
    """The chain as the plain functions compute it, from all the ids, each step anew."""
    x = logits.float().clone()
    if s.logit_bias:
        x = p.LogitBias(s.logit_bias, decoder)(x, context)
    recent = context.ids[-s.repetition_range :] if s.repetition_range else context.ids
    if s.repetition_penalty != 1:
        x = p.repetition_penalty(x, recent, s.repetition_penalty)
    if s.presence_penalty or s.frequency_penalty:
        x = p.presence_frequency(x, recent, s.presence_penalty, s.frequency_penalty)
    if s.dry_multiplier:
        x = p.dry_penalty(x, context.ids[-s.dry_range :] if s.dry_range else context.ids, s.dry_multiplier, s.dry_base,
                          s.dry_allowed_length, p.breaker_ids(decoder, s.dry_breakers))
    if s.temperature != 1:
        x = x / s.temperature
    x = p.top_k_filter(x, s.top_k)
    x = p.top_p_filter(x, s.top_p)
    if s.min_p is not None:
        x = p.min_p_filter(x, s.min_p)
    if s.typical_p is not None:
        x = p.typical_filter(x, s.typical_p)
    return x


@pytest.mark.parametrize("settings", [
    {},
    {"dry_allowed_length": 0, "dry_range": 9, "repetition_range": 5},
    {"dry_allowed_length": 1, "dry_breakers": ("a",), "top_k": 3, "min_p": 0.3},
    {"dry_allowed_length": 3, "dry_base": 2.5, "top_k": None, "top_p": 0.6, "typical_p": 0.4},
    {"repetition_range": 0, "repetition_penalty": 0.8, "frequency_penalty": -0.5, "top_k": 200, "top_p": None},
])
def test_the_chain_matches_the_plain_processors_through_rewinds(trained_model: Path, settings: dict):
    decoder = load_model(trained_model, "cpu").decoder
    sampling = Sampling(**{**FULL.__dict__, **settings})
    vocabulary = len(decoder.token_texts())
    alphabet = decoder.encode('ab "\n:')  # a few ids, breakers among them, so the text repeats itself often
    rng = random.Random(0)
    context = Context(decoder.encode("a rain, a bab"), "", "x")
    processors = chain(sampling, decoder)
    processors.start(context)
    for step in range(300):
        logits = torch.randn(vocabulary, generator=torch.Generator().manual_seed(step)) * 3
        logits[rng.randrange(vocabulary)] = float("-inf")
        expected = reference(logits, context, sampling, decoder)
        assert np.array_equal(processors(logits, context), expected.numpy()), step
        if rng.random() < 0.15 and len(context.text) > 3:  # a banned phrase takes some back
            n = rng.randint(1, 3)
            del context.ids[-n:]
            context.text = context.text[:-n]
            processors.pop(n, context)
        else:
            token = rng.choice(alphabet)
            context.ids.append(token)
            context.text += decoder.decode([token])
            processors.push(context)


def test_top_k_over_a_large_vocabulary_matches(gpt2_base: Path):
    decoder = load_model(gpt2_base, "cpu").decoder
    sampling = Sampling(temperature=0.7, top_k=50, top_p=0.9, typical_p=0.9)
    context = Context(decoder.encode("The rain"), "", "x")
    processors = chain(sampling, decoder)
    processors.start(context)
    for step in range(4):
        logits = torch.randn(len(decoder.token_texts()), generator=torch.Generator().manual_seed(step)) * 4
        logits[:7] = logits[7]  # ties with the k-th stay
        assert np.array_equal(processors(logits, context), reference(logits, context, sampling, decoder).numpy())


def reference_ids(decoder, prompt: str, sampling: Sampling, seed: int, n: int) -> list[int]:
    """A seeded sample the plain way: the plain chain over all the ids at every step, then the same draw."""
    cursor = decoder.start(prompt)
    context = Context(list(cursor.prompt_ids), "", prompt[-1:])
    generator = torch.Generator().manual_seed(seed)
    logits, written, waiting = cursor.logits, [], []
    for _ in range(n):
        token = p.draw(reference(logits, context, sampling, decoder), generator)
        written.append(token)
        waiting.append(token)
        text = decoder.decode(waiting)
        if not text.endswith(REPLACEMENT):
            context.text += text
            waiting = []
        context.ids.append(token)
        logits = cursor.feed(token)
    return written


@pytest.mark.parametrize("kind", ["char", "gpt2"])
def test_a_seeded_sample_with_the_full_chain_is_the_plain_ones(kind: str, trained_model: Path, gpt2_base: Path):
    decoder = load_model(trained_model if kind == "char" else gpt2_base, "cpu").decoder
    n = 200 if kind == "char" else 30
    for seed in range(2):
        stream = tokens(decoder, "The robot", FULL, torch.Generator().manual_seed(seed))
        assert [next(stream).id for _ in range(n)] == reference_ids(decoder, "The robot", FULL, seed, n)
