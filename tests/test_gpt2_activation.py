"""GPT-2 trains with torch's fused tanh GELU in place of transformers' gelu_new: the same loss and gradients."""

import copy

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from kinds.gpt2.activation import fuse_gelu


@pytest.mark.parametrize("lora", [False, True])
def test_fused_gelu_gives_the_plain_loss_and_gradients(lora: bool):
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=300, n_positions=64, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    plain = GPT2LMHeadModel(config)
    if lora:
        from peft import LoraConfig, get_peft_model

        plain = get_peft_model(plain, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn", "c_proj"],
                                                 fan_in_fan_out=True))
        for name, p in plain.named_parameters():  # lora_B starts at zero: give it weights, so that lora_A has a gradient
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
    fused = copy.deepcopy(plain)
    fuse_gelu((fused.get_base_model() if lora else fused).transformer)
    assert all(type(m).__name__ != "NewGELUActivation" for m in fused.modules())
    assert fused.state_dict().keys() == plain.state_dict().keys()  # nothing to save changes
    x = torch.randint(0, config.vocab_size, (2, 48))
    losses = [model(input_ids=x, labels=x).loss for model in (plain, fused)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=1e-6)
    trained = [(name, p, q) for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True)
               if p.requires_grad]
    assert any("lora_A" in name for name, _, _ in trained) == lora
    for name, p, q in trained:
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-7, msg=name)
