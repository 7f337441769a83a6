"""One character at a time through the char-LSTM, without nn.LSTM's per-call cost.

Generating calls the model once per character with one id. nn.LSTM on a CPU
hands each such call to oneDNN, which lays the weights out again every time:
at 2x512 a step cost about as much as reading the weights ten times over. Here
the weights are laid out once per model (see `fused`), and a step is one
matrix-vector product per layer on buffers allocated once per generation:

- layer 0's input product is a lookup: every character's embedding times
  W_ih, plus both biases, is computed ahead (a table of vocab x 4H rows);
- each later layer multiplies [input; h] by [W_ih W_hh] in one product;
- the gates are activated in place, and h is written straight into the
  buffer the next layer (and the next step) reads it from.

The arithmetic is the same as nn.LSTM's, summed in another order, so greedy
text comes out the same (tests/test_cells.py checks it against the plain path).
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Fused:
    """The weights of one model, laid out for single steps."""

    table: torch.Tensor  # (V, 4H): embedding @ W_ih0.T + b_ih0 + b_hh0
    w_hh0: torch.Tensor  # (4H, H)
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # layers 1.., each ((4H, 2H) [W_ih W_hh], (4H,) bias)
    head_w: torch.Tensor  # (V, H)
    head_b: torch.Tensor  # (V,)


def fused(embed: nn.Embedding, lstm: nn.LSTM, head: nn.Linear) -> Fused:
    """The model's weights fused for stepping, made once and again only when a weight has changed.

    It is kept on the LSTM module with the weights' storage and versions: a
    tensor's `_version` counts its in-place changes (an optimizer step, a
    load_state_dict), so the samples shown during training never step with
    stale weights, and a model loaded for writing fuses once.
    """
    params = [embed.weight, *lstm.parameters(), head.weight, head.bias]
    key = tuple((p.data_ptr(), p._version) for p in params)
    cached = lstm.__dict__.get("_fused_for_steps")
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.no_grad():
        w = {name: p.detach() for name, p in lstm.named_parameters()}
        table = embed.weight @ w["weight_ih_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]
        layers = tuple(
            (torch.cat([w[f"weight_ih_l{i}"], w[f"weight_hh_l{i}"]], dim=1).contiguous(),
             w[f"bias_ih_l{i}"] + w[f"bias_hh_l{i}"])
            for i in range(1, lstm.num_layers)
        )
        result = Fused(table.contiguous(), w["weight_hh_l0"].contiguous(), layers, head.weight.detach(),
                       head.bias.detach())
    lstm.__dict__["_fused_for_steps"] = (key, result)
    return result


class Stepper:
    """One generation's state and buffers: `step(id)` feeds one character and returns the next logits (a view)."""

    def __init__(self, weights: Fused, state: tuple[torch.Tensor, torch.Tensor]):
        self.w = weights
        h, c = state  # (layers, 1, H) each, as nn.LSTM returns them
        self.layers, self.hidden = h.shape[0], h.shape[-1]
        hid = self.hidden
        # xh[i] = [layer i-1's h; layer i's h] for layers 1.., the vector layer i's one product reads
        self.xh = [torch.empty(0)] + [torch.empty(2 * hid) for _ in range(1, self.layers)]
        self.h = [self.xh[1][:hid] if self.layers > 1 else torch.empty(hid)]
        self.h += [self.xh[i][hid:] for i in range(1, self.layers)]
        for i in range(self.layers):
            self.h[i].copy_(h[i, 0])
            if 0 < i < self.layers - 1:
                self.xh[i + 1][:hid].copy_(h[i, 0])
        self.c = [c[i, 0].clone() for i in range(self.layers)]
        self.gates = torch.empty(4 * hid)
        self.tanh_c = torch.empty(hid)
        self.logits = torch.empty(weights.head_w.shape[0])

    def step(self, token: int) -> torch.Tensor:
        w, gates = self.w, self.gates
        torch.addmv(w.table[token], w.w_hh0, self.h[0], out=gates)
        self._cell(0)
        for i, (weight, bias) in enumerate(w.layers, start=1):
            torch.addmv(bias, weight, self.xh[i], out=gates)
            self._cell(i)
        return torch.addmv(w.head_b, w.head_w, self.h[-1], out=self.logits)

    def snapshot(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Copies of each layer's h and c, for `restore`."""
        return [h.clone() for h in self.h], [c.clone() for c in self.c]

    def restore(self, state: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        """Back to a snapshot: written into the buffers the steps read."""
        for layer, (h, c) in enumerate(zip(*state, strict=True)):
            self.h[layer].copy_(h)
            self.c[layer].copy_(c)
            if 0 < layer < self.layers - 1:
                self.xh[layer + 1][: self.hidden].copy_(h)

    def _cell(self, layer: int) -> None:
        """The gates (i, f, g, o, as nn.LSTM orders them) into this layer's c and h, in place."""
        hid, gates = self.hidden, self.gates
        gates[: 2 * hid].sigmoid_()
        gates[3 * hid :].sigmoid_()
        gates[2 * hid : 3 * hid].tanh_()
        i, f, g, o = gates.view(4, hid)
        c = self.c[layer]
        c.mul_(f).addcmul_(i, g)
        torch.tanh(c, out=self.tanh_c)
        torch.mul(o, self.tanh_c, out=self.h[layer])
        if 0 < layer < self.layers - 1:  # a middle layer's h is also the next layer's input (2 layers need no copy)
            self.xh[layer + 1][: self.hidden].copy_(self.h[layer])
