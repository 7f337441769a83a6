"""Removing and renaming the writer's trained models, with the sample store kept right.

A sample names the model that wrote it by name and by directory (see
`Store.rename_model`). A renamed model takes its samples along: they list,
show, filter and check under the new name. A removed model's samples stay,
since they are the writer's text; they keep the model's name and lose only the
pointer to its directory, so that a new model trained under the same name does
not inherit them. A model still training is neither renamed nor removed: its
run writes into that directory.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from contract import modeldir
from contract.modeldir import Card
from corpora import UserError

from .samples.store import Store


@dataclass(frozen=True)
class Model:
    """A model of the data directory as rm and rename see it: where it is, what it is, what it wrote."""

    path: Path
    card: Card | None  # None: its config.json is damaged, and it can only be removed
    samples: int  # how many samples in the store it wrote
    bytes: int  # its size on disk

    def describe(self) -> str:
        """`pkd-char (char, trained on pkd, 2.4 MB)`: enough to be sure it is the one meant."""
        what = [self.card.kind] if self.card else ["damaged"]
        if self.card and self.card.corpus:
            what.append(f"trained on {self.card.corpus.name}")
        return f"{self.path.name} ({', '.join([*what, _size(self.bytes)])})"


def find(name: str, store: Store) -> Model:
    """The model of this name, refused while it is training."""
    path = modeldir.local(name)
    try:
        card: Card | None = modeldir.read(path)
    except UserError:
        card = None
    if card is not None and card.status == "running":
        pid = card.result.get("pid")
        raise UserError(f"{name} is training now{f' (process {pid})' if pid else ''}: stop it first (Ctrl-C keeps what it "
                        "has learned)")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return Model(path, card, store.model_samples(path), size)


def remove(model: Model, store: Store) -> None:
    """Delete the model's directory; its samples stay in the store, no longer pointing at it."""
    store.forget_model_path(model.path)
    try:
        shutil.rmtree(model.path)
    except OSError as e:
        raise UserError(f"cannot remove {model.path}: {e.strerror}") from None


def rename(model: Model, new: str, store: Store) -> Path:
    """Rename the model's directory and its config.json's name, and move its samples to the new name, all or nothing."""
    if model.card is None:
        raise UserError(f"{model.path}/config.json is damaged: a damaged model can be removed, not renamed")
    if not modeldir.is_plain_name(new):
        raise UserError(f"{new!r} must be a plain name (no '/' or '..')")
    target = model.path.with_name(new)
    if target.exists():
        raise UserError(f"there is already a model {new!r}: remove it first (assistant models rm {new}) or pick another name")
    try:
        os.rename(model.path, target)
    except OSError as e:
        raise UserError(f"cannot rename {model.path} to {new}: {e.strerror}") from None
    try:
        modeldir.write(modeldir.moved(model.card, target))
        store.rename_model(model.card.name, model.path, target)
    except BaseException:
        os.rename(target, model.path)  # as it was: the old name, its config.json, its samples
        modeldir.write(model.card)
        raise
    return target


def _size(n: int) -> str:
    """Bytes as a writer reads a file's size: 812 bytes, 2.4 MB."""
    if n < 1000:
        return f"{n} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6)):
        if n < scale * 1000:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e9:.1f} GB"
