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

from corpora import UserError

from ..charlstm import presets as charlstm_presets
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


def heads(hidden: int) -> int:
    return max(1, hidden // HEAD_WIDTH)


def resolve(options: CharOptions, device_type: str) -> tuple[str, CharHParams]:
    """The char-LSTM's resolution over this kind's table, and a width its heads divide."""
    size, hp = charlstm_presets.resolve(options, device_type, PRESETS)
    if hp.hidden % heads(hp.hidden):
        raise UserError(f"--hidden must be a multiple of its {heads(hp.hidden)} attention heads "
                        f"(one per {HEAD_WIDTH} of width), got {hp.hidden}")
    return size, hp
