"""Size presets for the char transformer, read from the char-LSTM's options.

The options mean here: `layers` transformer blocks, `hidden` the embedding
width, `seq_len` the block size (the longest context, and the training window),
`batch_size` windows per step. Heads are not an option: one per 64 of width,
as in GPT-2, so the width must divide evenly.

`auto` picks `small` on a CPU and `large` on a GPU. `tiny` trains in seconds
on two cores (the tests'). `small` won two-minute runs on one CPU core on the
PKD corpus: 2x128 with 16 windows a step at lr 6e-3 reached a validation loss
of 1.56 nats/char, nanoGPT's 4x128 "baby GPT" 1.90 (2.04 at its own lr 1e-3).
Shallow blocks take more steps in the same time, as small batches with a high
learning rate do for the char-LSTM's `small` (the machine was shared: rough
numbers). Its steps are small, so it evaluates on 50k characters. `large` is
the 6x384 network nanoGPT trains on Shakespeare's characters, for a GPU;
`medium` is as deep, narrower.
"""

from dataclasses import replace

from corpora import UserError

from ..charlstm.options import CharOptions
from ..charlstm.presets import CharHParams  # the same numbers, read as above
from .model import HEAD_WIDTH

# layers, hidden, dropout, seq_len (the block size), batch_size, lr, max_steps, warmup_steps, eval_every, sample_every
PRESETS: dict[str, CharHParams] = {
    "tiny": CharHParams(2, 64, 0.0, 64, 32, 3e-3, 1000, 20, 100, 250),
    "small": CharHParams(2, 128, 0.0, 64, 16, 6e-3, 5000, 100, 250, 500, eval_units=50_000),
    "medium": CharHParams(6, 256, 0.1, 256, 64, 1e-3, 5000, 100, 250, 500),
    "large": CharHParams(6, 384, 0.2, 256, 64, 1e-3, 5000, 100, 250, 500),
}
OVERRIDABLE = ("layers", "hidden", "dropout", "seq_len", "batch_size", "lr")


def heads(hidden: int) -> int:
    return max(1, hidden // HEAD_WIDTH)


def resolve(options: CharOptions, device_type: str) -> tuple[str, CharHParams]:
    """The preset named (or chosen for the device) with the user's overrides on top."""
    size = options.size
    if size == "auto":
        size = "large" if device_type == "cuda" else "small"
    if size not in PRESETS:
        raise UserError(f"unknown --size {size!r}: choose one of auto, {', '.join(PRESETS)}")
    hp = replace(PRESETS[size], **{k: v for k in OVERRIDABLE if (v := getattr(options, k)) is not None})
    if min(hp.layers, hp.hidden, hp.seq_len, hp.batch_size) < 1:
        raise UserError("--layers, --hidden, --seq-len and --batch-size must be at least 1")
    if hp.hidden % heads(hp.hidden):
        raise UserError(f"--hidden must be a multiple of its {heads(hp.hidden)} attention heads "
                        f"(one per {HEAD_WIDTH} of width), got {hp.hidden}")
    if not 0 <= hp.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {hp.dropout}")
    if hp.lr <= 0:
        raise UserError(f"--lr must be positive, got {hp.lr}")
    return size, hp
