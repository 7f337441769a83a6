"""Size presets for the char-LSTM.

`auto` picks `small` on a CPU and `large` on a GPU. `small` is tuned for what a
laptop CPU does in minutes (benchmarks/charlstm_cpu_quality.py): on two cores
short windows and a high learning rate take many steps in the time, and with
each core training its own share of the batch (finetune.cores) a batch of 64
at width 256 fits 3,500 steps in 2 minutes, which beats the 6,000 steps the
narrower 2x192 at batch 32 took on one share (1.383 nats on tiny-shakespeare
against 1.426); a strong weight decay suits the high learning rate of a run
that short, and so does letting that rate decay all the way to 0 (1.357
against 1.383 at a floor of a tenth). A third layer or a width of 384 costs
more steps than it gains in two minutes (1.471 and 1.380). `large` is
the 3x1024 network char-rnn made famous, for a GPU; `medium` stays under 10M
parameters.
"""

from dataclasses import dataclass, replace

from corpora import UserError
from corpora.suggest import did_you_mean

from .options import CharOptions


@dataclass(frozen=True)
class CharHParams:
    layers: int
    hidden: int
    dropout: float
    seq_len: int
    batch_size: int
    lr: float
    max_steps: int
    warmup_steps: int
    eval_every: int
    sample_every: int
    checkpoint_every: int | None = None  # None: at every evaluation
    eval_units: int | None = None  # None: FinetuneConfig.eval_chars
    weight_decay: float = 0.01  # AdamW's, on the matrices and the embedding
    min_lr_ratio: float = 0.1  # where the cosine ends, a share of lr


PRESETS: dict[str, CharHParams] = {
    "tiny": CharHParams(2, 128, 0.0, 64, 32, 3e-3, 1000, 20, 100, 250),
    "small": CharHParams(2, 256, 0.0, 32, 64, 1.2e-2, 10000, 50, 500, 500, weight_decay=0.15,
                         min_lr_ratio=0.0),
    "medium": CharHParams(3, 512, 0.2, 128, 64, 2e-3, 20000, 200, 500, 1000),
    "large": CharHParams(3, 1024, 0.25, 256, 256, 1e-3, 20000, 200, 500, 1000),
}


def resolve(options: CharOptions, device_type: str,
            presets: dict[str, CharHParams] = PRESETS) -> tuple[str, CharHParams]:
    """The preset named (or chosen for the device) with the user's overrides on top; the char transformer
    passes its own table."""
    size = options.size
    if size == "auto":
        size = "large" if device_type == "cuda" else "small"
    if size not in presets:
        raise UserError(f"unknown --size {size!r}: {did_you_mean(size, ['auto', *presets])}choose one of auto, "
                        f"{', '.join(presets)}")
    overridable = ("layers", "hidden", "dropout", "seq_len", "batch_size", "lr")
    hp = replace(presets[size], **{k: v for k in overridable if (v := getattr(options, k)) is not None})
    if min(hp.layers, hp.hidden, hp.seq_len, hp.batch_size) < 1:
        raise UserError("--layers, --hidden, --seq-len and --batch-size must be at least 1")
    if not 0 <= hp.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {hp.dropout}")
    if hp.lr <= 0:
        raise UserError(f"--lr must be positive, got {hp.lr}")
    return size, hp
