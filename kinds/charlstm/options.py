"""A char model's command-line options: a size preset and what overrides it (standard library only).

The char-LSTM and the char transformer share them: each kind has its own presets.
"""

from dataclasses import dataclass
from typing import Any


@dataclass
class CharOptions:
    """Architecture and batch shape; None takes the size preset's value."""

    size: str = "auto"
    layers: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    seq_len: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    cpu_bf16: bool | None = None  # a CPU's matrix products in bf16 (autocast), None: where it has bf16 in hardware

    def validate(self) -> None:
        """Checked when the preset is resolved (presets.resolve), where the final values are known."""

    def prepared(self) -> "CharOptions":
        return self

    @classmethod
    def resumed(cls, card: Any, new: "CharOptions") -> "CharOptions":
        """The options a run resolved on its first device (a checkpoint fixes its shape); only --lr and the
        precision (--cpu-bf16, which leaves the weights float32; not given again, the saved choice) may change."""
        hp = card.hparams
        saved = {k: hp[k] for k in ("layers", "hidden", "dropout", "seq_len", "batch_size", "lr")}
        bf16 = new.cpu_bf16 if new.cpu_bf16 is not None else card.training["options"].get("cpu_bf16")
        return cls(size=card.size, **{**saved, "lr": new.lr if new.lr is not None else hp["lr"]}, cpu_bf16=bf16)
