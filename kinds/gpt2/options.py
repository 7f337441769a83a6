"""GPT-2's command-line options: the base, the shape of a new model, the batch, LoRA (standard library only)."""

from dataclasses import dataclass, fields, replace
from typing import Any

from corpora import UserError

LORA_SHAPE = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets")


@dataclass
class GPT2Options:
    """GPT-2 base, architecture (from scratch only), batch shape and LoRA; None takes the default for the device."""

    base: str = "gpt2"
    from_scratch: bool = False
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    block_size: int | None = None
    batch_tokens: int | None = None
    micro_batch: int | None = None
    lr: float | None = None
    dropout: float | None = None
    split: str = "contiguous"
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "c_attn,c_proj"
    merge: bool = False
    compile: bool | None = None  # None: on for CUDA
    grad_checkpointing: bool = False
    cpu_bf16: bool | None = None  # a CPU's matrix products in bf16 (autocast), None: where it has bf16 in hardware
    test_split: bool = True  # half the held-out tenth is kept for testing; False: a run started before that, resumed

    @property
    def lora_modules(self) -> list[str]:
        """--lora-targets as a list of module names."""
        return [t.strip() for t in self.lora_targets.split(",") if t.strip()]

    def prepared(self) -> "GPT2Options":
        """A local base by its absolute path: the model then loads from any directory."""
        from .base import base_location

        return replace(self, base=base_location(self.base))

    @classmethod
    def resumed(cls, card: Any, new: "GPT2Options") -> "GPT2Options":
        """The saved run's options with its step pinned (block size and tokens per step); --lr, --compile,
        --cpu-bf16 (the products' precision: weights stay float32; not given again, the saved choice) may change.

        So may how a step is cut into passes, which changes no number, only the memory a pass takes: --micro-batch
        given again (a divisor of the step's blocks), --grad-checkpointing turned on, and under --micro-batch auto
        the card is measured again, so a run resumed on a smaller card, or on a CPU, takes what that one holds.
        """
        hp, saved = card.hparams, card.training["options"]
        blocks = hp["micro_batch"] * hp["grad_accum"]
        micro = new.micro_batch if new.micro_batch is not None else saved.get("micro_batch")
        if micro is not None and blocks % micro:
            divisors = ", ".join(str(d) for d in range(1, blocks + 1) if blocks % d == 0)
            raise UserError(f"--micro-batch {micro} does not divide this run's step of {blocks} blocks: "
                            f"give one of {divisors}")
        pinned = {"block_size": hp["block_size"], "micro_batch": micro,
                  "lr": new.lr if new.lr is not None else hp["lr"], "batch_tokens": hp["block_size"] * blocks,
                  "grad_checkpointing": saved.get("grad_checkpointing", False) or new.grad_checkpointing}
        return cls(**{**saved, **pinned, "compile": new.compile,
                      **({"cpu_bf16": new.cpu_bf16} if new.cpu_bf16 is not None else {}),
                      "test_split": "test_tokens" in (card.split or {})})

    def validate(self) -> None:
        if not self.from_scratch and (arch := [f for f in ("n_layer", "n_embd", "n_head") if getattr(self, f) is not None]):
            raise UserError(f"--{arch[0].replace('_', '-')} shapes a new model: it needs --from-scratch (a base keeps its shape)")
        if self.from_scratch and self.lora:
            raise UserError("--lora adapts a trained base; a model trained --from-scratch trains all its weights")
        if self.merge and not self.lora:
            raise UserError("--merge merges a LoRA adapter into its base: it needs --lora")
        defaults = {f.name: f.default for f in fields(self)}
        if not self.lora and (stray := [k for k in LORA_SHAPE if getattr(self, k) != defaults[k]]):
            raise UserError(f"--{stray[0].replace('_', '-')} shapes a LoRA adapter: it needs --lora")
        for flag, value in (("--n-layer", self.n_layer), ("--n-embd", self.n_embd), ("--n-head", self.n_head),
                            ("--block-size", self.block_size), ("--batch-tokens", self.batch_tokens),
                            ("--micro-batch", self.micro_batch), ("--lora-r", self.lora_r)):
            if value is not None and value < 1:
                raise UserError(f"{flag} must be at least 1, got {value}")
        if self.n_embd is not None and self.n_head is not None and self.n_embd % self.n_head:
            raise UserError(f"--n-embd {self.n_embd} must be a multiple of --n-head {self.n_head}")
        if self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise UserError("--lora-alpha must be positive and --lora-dropout in [0, 1)")
        if not self.lora_modules:
            raise UserError("--lora-targets needs at least one module name, e.g. c_attn,c_proj")
        if self.merge and "lm_head" in self.lora_modules:
            raise UserError("--merge cannot fold a LoRA adapter on lm_head into GPT-2: lm_head shares its weights with "
                            "the token embeddings, which would change too; drop --merge or lm_head")
        if self.split not in ("contiguous", "document"):
            raise UserError(f"--split must be 'contiguous' or 'document', got {self.split!r}")
        if self.lr is not None and self.lr <= 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")
