"""The model directory: what `finetune` writes and every front end reads, owned here and nowhere else.

A model directory holds `config.json` (the card: what the model is, what it
was trained on, how training went), the weights its kind loads, the resumable
state in `last/`, and the training logs. `Card` is config.json read into
typed fields; the keys a kind adds for itself (a char model's vocabulary, a
GPT-2's transformers configuration, which must stay at the top level for
`from_pretrained`) are kept in `extra` and written back as they were.

Directories written by earlier releases are migrated as they are read (see
`_migrate`), so they load, generate and resume.
"""

import json
import os
import socket
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from corpora import UserError
from corpora.files import write_text
from corpora.home import models_dir
from corpora.suggest import did_you_mean

from . import registry

if TYPE_CHECKING:
    from corpora.index import CorpusIndex
    from corpora.load import Corpus

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
HISTORY = "history.jsonl"
SAMPLES = "samples.jsonl"
LOSS_CURVE = "loss.svg"
LAST = "last"
CHECKPOINT = "checkpoint.safetensors"
MERGED = "merged"  # a LoRA adapter folded into its base
GHOSTWRITING = "ghostwriting"
# The checkpoints a directory can hold, and the folder of each one's weights: the ghostwriting checkpoint (the best
# style among those that do not copy), the best validation loss (the directory itself), and the end of the last run.
CHECKPOINTS = {GHOSTWRITING: GHOSTWRITING, "best-val": "", "last": LAST}
# the key of config.json's `result` that says which step each checkpoint's weights are of
CHECKPOINT_STEPS = {GHOSTWRITING: "ghostwriting_step", "best-val": "best_step", "last": "steps"}
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class CorpusRecord:
    """The corpus a model was trained on, exactly: its checksum is of the cleaned documents."""

    name: str
    source: str
    checksum: str
    documents: int | None = None
    characters: int | None = None
    encoding: str | None = None  # --encoding, for the files that are not UTF-8
    unwrap: str = "off"  # how hard-wrapped lines were joined (corpora.unwrap.SETTINGS): a record without it, never

    def find(self) -> "tuple[Corpus | None, str]":
        """This very corpus, read as the model read it, from this machine only; else None and why not."""
        from corpora.load import find_trained_corpus
        from corpora.unwrap import SETTINGS

        return find_trained_corpus(self.name, self.source, self.checksum, self.encoding, SETTINGS[self.unwrap])


@dataclass
class Card:
    """config.json, typed. `path` is None for a GPT-2 base used as it is (no directory of ours)."""

    kind: str
    name: str
    path: Path | None = None
    format: int | None = None  # None: not written by finetune (a bare base)
    created: str | None = None
    code_version: str | None = None
    corpus: CorpusRecord | None = None
    split: dict | None = None
    architecture: dict | None = None
    size: str | None = None
    parameters: int | None = None
    hparams: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # the FinetuneConfig, options under "options"
    plan: dict = field(default_factory=dict)
    device: str | None = None
    result: dict = field(default_factory=dict)  # the run's summary, or its progress while it runs
    extra: dict = field(default_factory=dict)  # the kind's own keys
    checkpoint: str = "best-val"  # whose weights a loader reads (not in config.json: chosen when loading)

    def corpus_index(self) -> "CorpusIndex | None":
        """The suffix-array index of the corpus the model was trained on, for the memorization check; None without one."""
        if self.corpus is None or not self.corpus.checksum:
            return None
        from corpora.index import corpus_index

        return corpus_index(self.corpus.name, self.corpus.source, self.corpus.checksum, self.corpus.encoding,
                            self.corpus.unwrap)

    def file(self, name: str) -> Path:
        if self.path is None:
            raise UserError(f"{self.name} is a base, not a model directory: it has no {name}")
        return self.path / name

    def weights(self, name: str) -> Path:
        """A weight file of the checkpoint this card is for (see `at`)."""
        return self.file(CHECKPOINTS[self.checkpoint]) / name

    @property
    def has_weights(self) -> bool:
        """Whether there is anything to load yet (a run stopped before its first evaluation has none)."""
        return self.path is not None and any(self.weights(f).exists() for f in registry.get(self.kind).weights)

    def checkpoints(self) -> list[str]:
        """The checkpoints this directory holds weights for."""
        return [name for name in CHECKPOINTS if replace(self, checkpoint=name).has_weights]

    def at(self, checkpoint: str | None) -> "Card":
        """This card for one of its checkpoints; None: the ghostwriting one when there is one, else best-val."""
        held = self.checkpoints()
        if checkpoint is None:
            checkpoint = GHOSTWRITING if GHOSTWRITING in held else "best-val"
        elif checkpoint not in CHECKPOINTS:
            raise UserError(f"unknown checkpoint @{checkpoint}: {did_you_mean(checkpoint, CHECKPOINTS)}"
                            f"choose @{', @'.join(CHECKPOINTS)}")
        elif checkpoint not in held:
            raise UserError(f"{self.name} has no @{checkpoint} checkpoint" + (f" (it has @{', @'.join(held)})" if held else ""))
        return replace(self, checkpoint=checkpoint)

    @property
    def step(self) -> int | None:
        """The training step of the weights this card loads (see `at`); None for a base, or a card that does not say."""
        if self.path is None:
            return None
        return self.result.get(CHECKPOINT_STEPS[self.checkpoint])

    @property
    def label(self) -> str:
        """`NAME@CHECKPOINT`, the name that loads these very weights again; a base's is its name."""
        return checkpoint_label(self.name, None if self.path is None else self.checkpoint, None)

    @property
    def corpus_name(self) -> str | None:
        """The corpus a sample's row records (a blend's: its parts')."""
        return self.corpus.name if self.corpus else None

    @property
    def named(self) -> str:
        """`NAME@CHECKPOINT, step N`: which weights a front end is writing with (or measuring), said in full."""
        return checkpoint_label(self.name, None if self.path is None else self.checkpoint, self.step)

    @property
    def status(self) -> str | None:
        """Why training stopped, or `running`; a run whose process is gone reads `killed (--resume)`, one that
        never beat its starting weights says `untrained` (its model writes noise)."""
        reason = self.result.get("stop_reason")
        if reason == "running" and self.result.get("host") == socket.gethostname() and not _alive(self.result.get("pid")):
            return "killed (--resume)"
        if reason not in (None, "running") and self.untrained:
            return f"{reason}, " + ("unchanged base (best at step 0)" if self.extra.get("init") == "pretrained"
                                    else "UNTRAINED (best at step 0)")
        return reason

    @property
    def untrained(self) -> bool:
        """Training ran but never beat the weights it started from, so those are the model."""
        return bool(self.result.get("steps")) and self.result.get("best_step") == 0

    def to_json(self) -> dict:
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_SAVED}
        own["corpus"] = None if self.corpus is None else self.corpus.__dict__
        return {**self.extra, **{k: v for k, v in own.items() if v is not None}}


NOT_SAVED = {"path", "extra", "checkpoint"}


def checkpoint_label(name: str, checkpoint: str | None, step: int | None) -> str:
    """`NAME@CHECKPOINT, step N`, as much of it as is known: how every front end names the weights that wrote."""
    return name + (f"@{checkpoint}" if checkpoint else "") + (f", step {step}" if step is not None else "")


def _alive(pid: int | None) -> bool:
    if not pid:
        return True  # written before pids were kept: no way to tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        pass
    return True


def from_json(data: dict, path: Path | None) -> Card:
    """A card from config.json's contents (migrated from older releases)."""
    data = _migrate(dict(data))
    own = {f.name for f in fields(Card)} - NOT_SAVED
    values = {k: v for k, v in data.items() if k in own}
    if isinstance(values.get("corpus"), dict):
        values["corpus"] = CorpusRecord(**values["corpus"])
    if path is not None:  # a directory's name is the model's, as `models` lists it, even when copied or moved by hand
        values["name"] = path.resolve().name
    return Card(**values, path=path, extra={k: v for k, v in data.items() if k not in own})


def _migrate(data: dict) -> dict:
    """config.json as this release writes it, from any earlier release's.

    Release 0.1 spelled the char-LSTM `char-lstm` (the command line said
    `char`), and kept both kinds' options in `training.char` and `training.gpt2`.
    """
    if "kind" in data and data["kind"] in registry.ALIASES:
        data["kind"] = registry.ALIASES[data["kind"]]
    training = data.get("training")
    if isinstance(training, dict) and "options" not in training and training.get("model") in training:
        training = {k: v for k, v in training.items() if k not in ("char", "gpt2")} | {"options": training[training["model"]]}
        data["training"] = training
    return data


def read(path: Path) -> Card:
    """The card of the model directory at `path`; a one-line error when config.json is missing or damaged."""
    config = path / CONFIG
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is not a model directory: it has no {CONFIG}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{config} is damaged ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise UserError(f"{config} is not a ghostwriter model's (it names no kind)")
    try:
        card = from_json(data, path)
    except TypeError as e:  # a corpus record with keys of another program's
        raise UserError(f"{config} is damaged ({e})") from None
    wrong = [f.name for f in fields(Card) if f.default_factory is dict and not isinstance(getattr(card, f.name), dict)]
    if wrong:  # every reader takes these for objects: refused here, once
        raise UserError(f"{config} is damaged ({', '.join(wrong)} should be JSON objects)")
    return card


def write(card: Card) -> None:
    """config.json, atomically."""
    write_text(card.file(CONFIG), json.dumps(card.to_json(), indent=2, ensure_ascii=False) + "\n")


def find(name_or_path: str | Path) -> Path | None:
    """A model directory by path, or by name in the data directory; None when neither is one.

    The path is absolute: the sample store keeps it, and it must work from any directory.
    """
    path = Path(name_or_path).expanduser()
    candidates = (path, models_dir() / str(name_or_path)) if path.name == str(name_or_path) else (path,)
    for candidate in candidates:
        config = candidate / CONFIG
        if not config.is_file():
            continue
        try:
            if "kind" in json.loads(config.read_text(encoding="utf-8")):
                return candidate.resolve()
        except (OSError, ValueError) as e:
            raise UserError(f"{config} is damaged (not JSON: {e})") from None
    return None


def cards() -> list[Card]:
    """The models in the data directory whose config.json reads, by name (a damaged one is left out: see damaged())."""
    return [card for card in _scan() if isinstance(card, Card)]


def damaged() -> list[tuple[Path, str]]:
    """The model directories whose config.json does not read, with why: `assistant models` lists them, so that the
    writer sees the name taken and the space used, and can remove them."""
    return [found for found in _scan() if isinstance(found, tuple)]


def _scan() -> list[Card | tuple[Path, str]]:
    root = models_dir()
    found: list[Card | tuple[Path, str]] = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            found.append(read(path))
        except UserError as e:
            if (path / CONFIG).is_file():  # a folder of something else is not a model, damaged or not
                found.append((path, str(e)))
    return found


def names() -> list[str]:
    return [card.path.name for card in cards() if card.path is not None]


def is_plain_name(name: str) -> bool:
    """Whether `name` can name a model in the data directory: one path component, not `.` or `..`."""
    return Path(name).name == name and name not in ("", ".", "..")


def local(name: str) -> Path:
    """The directory of the model of this name in the data directory (a name, as `assistant models` lists it, not a
    path: removing and renaming act only on the writer's own models). Absolute, as the sample store records it."""
    path = models_dir() / name
    if not is_plain_name(name) or not (path / CONFIG).is_file():
        raise no_model(name)
    return path.resolve()


def moved(card: Card, path: Path) -> Card:
    """The card of a model directory moved to `path`: its name follows, and so does the training record's --name or
    --out, which a resumed run would otherwise write back."""
    training = dict(card.training)
    if training.get("name") is not None:
        training["name"] = path.name
    if training.get("out") is not None:
        training["out"] = str(path)
    return replace(card, name=path.name, path=path, training=training)


def no_model(name: str, others: tuple[str, ...] = ()) -> UserError:
    """The error for a name that is no model here: the nearest name (of these models or `others`) and the models there
    are, since the name is what the writer must type."""
    known = names()
    hint = did_you_mean(name, [*known, *others])
    models = f"your models: {', '.join(known)}" if known else "no models trained yet (see `assistant finetune`)"
    return UserError(f"no model {name!r}: {hint}{models}")


def newest() -> str:
    """The most recently trained model's name, for the REPL and the editor server when none is named."""
    found = cards()
    if not found:
        raise UserError("no models trained yet (see `assistant finetune`), or give a model directory")
    return max(found, key=lambda c: c.file(CONFIG).stat().st_mtime).file(CONFIG).parent.name
