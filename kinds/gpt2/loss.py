"""GPT-2's next-token loss, with its output layer padded to a multiple of 64 rows on a GPU.

GPT-2's vocabulary has 50,257 tokens, an odd number: the rows of the logits
matrix are then not 16-byte aligned, and cuBLAS takes slower kernels for all
three matrix products of the output layer, about a third of GPT-2 small's
training FLOPs. nanoGPT pads the vocabulary to 50,304 for this and reports
it among its largest speed-ups. Here only the computation is padded, with zero
rows appended to the tied weight for the product, and the padded logits set to
-inf: the softmax gives them no weight, so the loss and the gradients are
those of the unpadded layer, and the saved model keeps GPT-2's shape. Masking
rather than cutting the padded logits off keeps the rows aligned for the
softmax too: on an H100 it trained 4% faster than the cut (461k against 443k
tokens/s).
"""

import torch
import torch.nn.functional as F


def next_token_loss(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor, pad_to: int = 1,
                    reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (nats) of `targets` under the logits `head(hidden)`, computed in float32."""
    if type(head) is torch.nn.Linear and head.bias is None and (pad := -head.out_features % pad_to):
        logits = F.linear(hidden, F.pad(head.weight, (0, 0, 0, pad))).float()
        real = torch.arange(logits.shape[-1], device=logits.device) < head.out_features
        logits = torch.where(real, logits, float("-inf"))
    else:  # unpadded, or a head that LoRA adapts (--lora-targets lm_head): its own forward adds the adapter
        logits = head(hidden).float()
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction=reduction)
