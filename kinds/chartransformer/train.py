"""The char transformer as a model kind of the training core.

Its data is the char-LSTM's (`kinds.charlstm.data`): the same document
separator, vocabulary, 90/5/5 split and windows, so the two kinds' losses on a
corpus are comparable number for number. The LSTM reads the windows as
streams carried from batch to batch; here each window is a sequence of its own,
and nothing is carried between batches but the data position.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from contract.modeldir import WEIGHTS
from contract.sampling import Sampling
from corpora import Corpus
from finetune.adapter import evaluating
from finetune.amount import TextAmounts
from finetune.checkpoint import save_tensors
from finetune.device import autocast, cpu_autocast, cpu_bf16, describe_cpu_bf16
from finetune.distributed import SINGLE, World
from finetune.memory import Smaller

from ..charlstm.data import DOC_START, CharData, author_lengths, corpus_text
from ..charlstm.infer import CharDecoder
from ..charlstm.model import Vocab
from ..charlstm.options import CharOptions
from ..charlstm.presets import CharHParams
from ..charlstm.train import char_amounts, describe_char_model, smaller_batch
from . import presets
from .model import CharGPT, CharGPTConfig


def make_adapter(corpus: Corpus, options: CharOptions, seed: int, device: torch.device,
                 world: World = SINGLE) -> "CharTransformerAdapter":
    size, hp = presets.resolve(options, device.type)
    return CharTransformerAdapter(corpus, size, hp, seed, device, world, cpu_bf16(device, options.cpu_bf16))


class CharTransformerAdapter:
    unit = "char"
    cuda_dtype = torch.bfloat16  # no loss scaling needed, and flash attention runs in it
    ghostwriting_samples = 16  # written one after another
    grad_accum = 1
    chars_per_unit = 1.0

    def __init__(self, corpus: Corpus, size: str, hp: CharHParams, seed: int, device: torch.device,
                 world: World = SINGLE, bf16: bool = False):
        text = corpus_text(corpus)
        self.vocab = Vocab.from_text(text)
        self.data = CharData(text, self.vocab, hp.seq_len, hp.batch_size, author_lengths(corpus))
        self.size = size
        self.hp = self.schedule = hp
        self.seed = seed
        self.device = device
        config = CharGPTConfig(len(self.vocab), hp.seq_len, hp.layers, hp.hidden, presets.heads(hp.hidden), hp.dropout)
        self.model = CharGPT(config).to(device)
        self.units_per_step = hp.batch_size * hp.seq_len
        self.windows = world.rows(hp.batch_size, "--batch-size")  # this rank's windows of every batch
        self.epoch = 0
        self.index = 0
        self.bf16 = bf16  # training's products on a CPU; validation stays float32, the loss a writer reads exact

    def fit_memory(self, world: World) -> None:
        """A char model's batch is its preset's: small enough for any device, nothing to measure."""

    def less_memory(self) -> Smaller:
        return smaller_batch(self.hp)

    def headline(self) -> str:
        c = self.model.config
        return (f"Training a {self.size} char transformer ({c.layers}x{c.hidden}, {c.heads} head(s), context {c.block_size}, "
                f"{self.model.num_parameters():,} parameters) on {len(self.data.ids['train']):,} characters, "
                f"vocabulary {len(self.vocab)}{describe_cpu_bf16(self.bf16)}")

    def check_start(self, val_loss: float) -> None:
        """It always starts from random weights: any first loss is right."""

    def finish(self, directory: Path) -> None:
        """model.safetensors is all it needs."""

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _loss(self.model, x, y, self.device)

    def train_loss(self) -> torch.Tensor:
        if self.index >= self.data.steps_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        x, y = self.data.batch(self.seed, self.epoch, self.index)
        self.index += 1
        with cpu_autocast(self.bf16):
            return self._loss(x[self.windows], y[self.windows])

    def evaluate(self, split: str, max_units: int) -> float:
        total, count = split_loss(self.model, *self.data.eval_streams(split, max_units), self.device, self.hp.seq_len)
        return total / count

    def sample(self, n_units: int, seed: int) -> str:
        generator = torch.Generator().manual_seed(seed)
        ids = self.model.generate_ids(self.vocab.encode(DOC_START), generator, temperature=0.8)
        with evaluating(self.model), autocast(self.device, self.cuda_dtype):
            return self.vocab.decode([next(ids) for _ in range(n_units)])

    def text(self, split: str, max_units: int | None = None) -> str:
        return self.data.text(split, max_units)

    def write(self, prompts: list[str], n_units: int, seed: int, sampling: Sampling) -> list[str]:
        """Continuations of each prompt (an empty one: an unconditional sample), one after the other."""
        generator = torch.Generator().manual_seed(seed)
        texts = []
        with evaluating(self.model), autocast(self.device, self.cuda_dtype):
            for prompt in prompts:
                prime = self.vocab.encode(DOC_START) + self.vocab.encode_lenient(prompt)[0]
                ids = self.model.generate_ids(prime, generator, sampling.temperature, sampling.top_k, sampling.top_p)
                texts.append(self.vocab.decode([next(ids) for _ in range(n_units)]))
        return texts

    def decoder(self) -> CharDecoder:
        return CharDecoder(self.vocab, DOC_START, self.model)

    def data_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Only the position: windows are independent, and dropout's randomness is the core's RNG state."""
        return {}, {"epoch": self.epoch, "index": self.index}

    def load_data_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.epoch, self.index = meta["epoch"], meta["index"]

    def describe(self) -> dict:
        return describe_char_model(self)

    def amounts(self) -> TextAmounts:
        return char_amounts(self)

    def save_weights(self, directory: Path) -> None:
        save_tensors(self.model.state_dict(), directory / WEIGHTS)


def _loss(model: CharGPT, x: torch.Tensor, y: torch.Tensor, device: torch.device, reduction: str = "mean") -> torch.Tensor:
    logits = model(x.to(device, non_blocking=True))
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.to(device, non_blocking=True).reshape(-1),
                           reduction=reduction)


@torch.no_grad()
def split_loss(model: CharGPT, xs: torch.Tensor, ys: torch.Tensor, device: torch.device, seq_len: int) -> tuple[float, int]:
    """Summed cross-entropy over streams (B, L) cut into block-size windows, each read from its own start as in
    training, in eval mode; and the count."""
    total, count = 0.0, 0
    with evaluating(model), autocast(device, CharTransformerAdapter.cuda_dtype):
        for i in range(0, xs.size(1), seq_len):
            y = ys[:, i : i + seq_len]
            total += float(_loss(model, xs[:, i : i + seq_len], y, device, "sum"))
            count += y.numel()
    return total, count
