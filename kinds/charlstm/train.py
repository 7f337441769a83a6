"""The char-LSTM as a model kind of the training core."""

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from contract.modeldir import WEIGHTS
from contract.sampling import Sampling
from corpora import Corpus
from finetune.adapter import evaluating
from finetune.amount import TextAmounts
from finetune.checkpoint import save_tensors
from finetune.cores import Cores, shares_for
from finetune.device import cpu_autocast, cpu_bf16, describe_cpu_bf16
from finetune.distributed import SINGLE, World
from finetune.memory import Smaller

from . import presets
from .data import DOC_START, CharData, author_lengths, corpus_text
from .infer import CharDecoder
from .model import CharLSTM, CharLSTMConfig, State, Vocab
from .options import CharOptions
from .presets import CharHParams

EVAL_CHUNK = 512


def make_adapter(corpus: Corpus, options: CharOptions, seed: int, device: torch.device,
                 world: World = SINGLE) -> "CharLSTMAdapter":
    size, hp = presets.resolve(options, device.type)
    return CharLSTMAdapter(corpus, size, hp, seed, device, world, cpu_bf16(device, options.cpu_bf16))


def smaller_batch(hp: CharHParams) -> Smaller:
    """Less memory for a char model: its batch shapes the streams its state is carried along, so a new run."""
    return Smaller([], [f"a smaller --batch-size (this run's is {hp.batch_size})", f"--seq-len (this run's is {hp.seq_len})"])


class CharLSTMAdapter:
    unit = "char"
    # Under autocast, torch runs cuDNN's LSTM in float16 whatever dtype is asked for,
    # so say so: the core then scales the loss as float16 needs.
    cuda_dtype = torch.float16
    ghostwriting_samples = 32  # written side by side in one batch: 64 samples cost little more than 32
    grad_accum = 1
    chars_per_unit = 1.0

    def __init__(self, corpus: Corpus, size: str, hp: CharHParams, seed: int, device: torch.device,
                 world: World = SINGLE, bf16: bool = False, shares: int | None = None):
        text = corpus_text(corpus)
        self.vocab = Vocab.from_text(text)
        self.data = CharData(text, self.vocab, hp.seq_len, hp.batch_size, author_lengths(corpus))
        self.size = size
        self.hp = self.schedule = hp
        self.seed = seed
        self.device = device
        self.model = CharLSTM(CharLSTMConfig(len(self.vocab), hp.layers, hp.hidden, hp.dropout)).to(device)
        self.units_per_step = hp.batch_size * hp.seq_len
        self.world = world
        self.streams = world.rows(hp.batch_size, "--batch-size")  # this rank's streams, with their LSTM state
        self.epoch = 0
        self.index = 0
        self.state: State | None = None
        self.bf16 = bf16  # training's products on a CPU; validation stays float32, the loss a writer reads exact
        # On a CPU each core takes a share of the streams (finetune.cores; a rank under torchrun has one thread).
        # Not with dropout: the shares would draw its masks from the one generator in whatever order they ran.
        if shares is None:
            shares = shares_for(device, len(range(hp.batch_size)[self.streams])) if hp.dropout == 0 else 1
        self.cores = Cores(shares)

    def fit_memory(self, world: World) -> None:
        """A char model's batch is its preset's: small enough for any device, nothing to measure."""

    def less_memory(self) -> Smaller:
        return smaller_batch(self.hp)

    def headline(self) -> str:
        hp = self.hp
        return (f"Training a {self.size} char-LSTM ({hp.layers}x{hp.hidden}, {self.model.num_parameters():,} parameters) "
                f"on {len(self.data.ids['train']):,} characters, vocabulary {len(self.vocab)}{describe_cpu_bf16(self.bf16)}")

    def check_start(self, val_loss: float) -> None:
        """A char-LSTM always starts from random weights: any first loss is right."""

    def finish(self, directory: Path) -> None:
        """model.safetensors is all a char model needs."""

    def train_loss(self) -> torch.Tensor:
        if self.index >= self.data.steps_per_epoch:
            self.epoch, self.index, self.state = self.epoch + 1, 0, None
        x, y = (t[self.streams].to(self.device, non_blocking=True) for t in self.data.batch(self.seed, self.epoch, self.index))
        n = self.cores.n
        xs, ys = x.chunk(n), y.chunk(n)
        starts: list[State | None] = [None] * n
        if self.state is not None:
            starts = list(zip(self.state[0].chunk(n, 1), self.state[1].chunk(n, 1), strict=True))
        ends: dict[int, State] = {}  # each share's state after the window

        def share_loss(i: int) -> torch.Tensor:
            with cpu_autocast(self.bf16):
                logits, (h, c) = self.model(xs[i], starts[i])
            ends[i] = (h.detach(), c.detach())
            return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), ys[i].reshape(-1))

        loss = self.cores.loss(share_loss, [p for p in self.model.parameters() if p.requires_grad])
        self.state = (torch.cat([ends[i][0] for i in range(n)], 1), torch.cat([ends[i][1] for i in range(n)], 1))
        self.index += 1
        return loss

    def evaluate(self, split: str, max_units: int) -> float:
        """The split's streams shared out between the cores as in training, their sums added in a fixed order."""
        xs, ys = (torch.tensor_split(t, self.cores.n) for t in self.data.eval_streams(split, max_units))

        def share(i: int) -> tuple[float, int]:
            return split_loss(self.model, xs[i], ys[i], self.device, self.hp.seq_len) if len(xs[i]) else (0.0, 0)

        with evaluating(self.model):  # here, not in each thread: a thread putting the model back would race another
            parts = self.cores.map(share)
        return sum(total for total, _ in parts) / sum(count for _, count in parts)

    def sample(self, n_units: int, seed: int) -> str:
        generator = torch.Generator().manual_seed(seed)
        ids = self.model.generate_ids(self.vocab.encode(DOC_START), generator, temperature=0.8)
        with evaluating(self.model):
            return self.vocab.decode([next(ids) for _ in range(n_units)])

    def text(self, split: str, max_units: int | None = None) -> str:
        return self.data.text(split, max_units)

    def write(self, prompts: list[str], n_units: int, seed: int, sampling: Sampling) -> list[str]:
        """Continuations of each prompt (an empty one: an unconditional sample), written side by side in one batch."""
        generator = torch.Generator().manual_seed(seed)
        primes = [self.vocab.encode(DOC_START) + self.vocab.encode_lenient(p)[0] for p in prompts]
        with evaluating(self.model):
            return [self.vocab.decode(ids) for ids in self.model.generate_batch(primes, n_units, generator, sampling)]

    def decoder(self) -> CharDecoder:
        return CharDecoder(self.vocab, DOC_START, self.model)

    def data_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        # float32 on disk: a GPU run's float16 state must feed a CPU LSTM after resume; every stream's, whatever
        # the world size, so that a run resumes on any number of processes
        state = () if self.state is None else self.state
        tensors = {k: self.world.gather_rows(t.float(), 1) for k, t in zip("hc", state, strict=False)}
        return tensors, {"epoch": self.epoch, "index": self.index}

    def load_data_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.epoch, self.index = meta["epoch"], meta["index"]
        self.state = ((tensors["h"][:, self.streams].float().to(self.device),
                       tensors["c"][:, self.streams].float().to(self.device)) if "h" in tensors else None)

    def describe(self) -> dict:
        return describe_char_model(self)

    def amounts(self) -> TextAmounts:
        return char_amounts(self)

    def save_weights(self, directory: Path) -> None:
        save_tensors(self.model.state_dict(), directory / WEIGHTS)


@torch.no_grad()
def split_loss(model: CharLSTM, xs: torch.Tensor, ys: torch.Tensor, device: torch.device, seq_len: int) -> tuple[float, int]:
    """Summed cross-entropy over streams (B, L), read in order with the state carried, in eval mode, and the count."""
    total, count, state = 0.0, 0, None
    with evaluating(model):
        for i in range(0, xs.size(1), EVAL_CHUNK):
            x = xs[:, i : i + EVAL_CHUNK].to(device)
            y = ys[:, i : i + EVAL_CHUNK].to(device)
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
            count += y.numel()
    return total, count


def char_amounts(adapter: Any) -> TextAmounts:
    """A char model (the char transformer's too) learns from random weights: every character of its splits counts."""
    ids = adapter.data.ids
    return TextAmounts(len(ids["train"]), len(ids["val"]), adapter.model.num_parameters(), from_scratch=True)


def describe_char_model(adapter: Any) -> dict:
    """config.json's keys for a char model (the char transformer's too): what rebuilds it and reads its vocabulary."""
    return {
        "architecture": adapter.model.config.to_json(),
        "size": adapter.size,
        "parameters": adapter.model.num_parameters(),
        "vocab": adapter.vocab.chars,
        "prime": DOC_START,
        "split": adapter.data.split,
        "hparams": asdict(adapter.hp),
    }
