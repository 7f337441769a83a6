"""`finetune(config)`: from a corpus name to a trained model directory.

Resolves the model directory (refusing to overwrite without --resume or
--force), merges a resumed run's saved settings with the new bounds, builds
the model kind's adapter and hands it to the training core.
"""

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from corpora import Corpus, UserError, load_corpus
from corpora.home import models_dir

from . import checkpoint as ckpt
from . import device as devices
from .charlstm import presets
from .charlstm.adapter import CharLSTMAdapter
from .config import CharOptions, FinetuneConfig
from .progress import Reporter
from .trainer import Plan, Summary, Trainer

FORMAT_VERSION = 1
KIND_OF_MODEL = {"char": "char-lstm"}


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ghostwriter")
    except PackageNotFoundError:
        return "unknown"


def model_path(config: FinetuneConfig, corpus: Corpus) -> Path:
    if config.out is not None:
        return Path(config.out).expanduser()
    return models_dir() / (config.name or f"{corpus.name}-{config.model}")


def check_model_dir(path: Path, resume: bool, force: bool) -> None:
    """Refuse to touch an existing model unless told how (resume or start over); changes nothing."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a model directory")
    exists = path.exists() and any(path.iterdir())
    if resume:
        if not (path / ckpt.LAST / ckpt.CHECKPOINT).exists():
            raise UserError(f"nothing to resume in {path}: it has no last/ checkpoint")
        config = path / ckpt.CONFIG
        if not config.exists() or ckpt.read_json(config).get("format") != FORMAT_VERSION:
            raise UserError(f"{path} was written by another version of ghostwriter (format differs); cannot resume it")
    elif exists:
        if not force:
            raise UserError(
                f"model directory {path} already exists: pass --resume to continue training it, "
                "--force to start over, or --name to train a new one"
            )
        if not (path / ckpt.CONFIG).exists():
            raise UserError(f"{path} is not a ghostwriter model directory; refusing to delete it with --force")


def make_model_dir(path: Path, force: bool) -> None:
    """Only once every input has been checked: start over (--force) or create."""
    if force and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def merge_resumed(saved: dict, new: FinetuneConfig) -> FinetuneConfig:
    """The saved run's settings, with any bound (and --lr) given again on the command line.

    The architecture and batch shape cannot change under a checkpoint; the
    learning rate can, which is how a diverged run is rescued.
    """
    old = dict(saved["training"])
    old["char"] = CharOptions(size=saved["size"], **{
        k: saved["hparams"][k] for k in ("layers", "hidden", "dropout", "seq_len", "batch_size", "lr")
    })
    if new.char.lr is not None:
        old["char"].lr = new.char.lr
    old["out"] = Path(old["out"]) if old.get("out") else None
    cfg = FinetuneConfig(**old)
    bounds = {
        k: getattr(new, k) for k in ("max_steps", "max_time", "target_loss", "target_on") if getattr(new, k) is not None
    }
    return replace(cfg, **bounds, stop_on_overfit=cfg.stop_on_overfit or new.stop_on_overfit,
                   device=new.device, resume=True, force=False)


def make_plan(cfg: FinetuneConfig, hp: presets.CharHParams) -> Plan:
    max_steps = cfg.max_steps
    if max_steps is None and cfg.max_time is None:
        max_steps = hp.max_steps
    eval_every = cfg.eval_every or hp.eval_every
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else hp.warmup_steps
    if max_steps is not None:
        warmup = min(warmup, max(1, max_steps // 10))
    return Plan(
        lr=hp.lr, max_steps=max_steps, max_time=cfg.max_time, warmup_steps=max(1, warmup),
        eval_every=eval_every, eval_units=cfg.eval_chars, sample_every=cfg.sample_every or hp.sample_every,
        sample_units=cfg.sample_chars, checkpoint_every=cfg.checkpoint_every or eval_every,
        target_loss=cfg.target_loss, target_on=cfg.target_on or "train", stop_on_overfit=cfg.stop_on_overfit,
        overfit_patience=cfg.overfit_patience, grad_clip=cfg.grad_clip, weight_decay=cfg.weight_decay,
        min_lr_ratio=cfg.min_lr_ratio, seed=cfg.seed,
    )


def finetune(config: FinetuneConfig, reporter: Reporter | None = None) -> Summary:
    config.validate()
    reporter = reporter or Reporter()
    device = devices.pick_device(config.device)
    corpus = load_corpus(config.corpus, config.encoding)
    path = model_path(config, corpus)
    check_model_dir(path, config.resume, config.force)
    if config.resume:
        saved = ckpt.read_json(path / ckpt.CONFIG)
        if saved["corpus"]["checksum"] != corpus.checksum:
            raise UserError(
                f"corpus {corpus.name!r} has changed since {path.name} was trained (checksum differs); "
                "train a new model instead of resuming"
            )
        config = merge_resumed(saved, config)
    devices.prepare(device)
    size, hp = presets.resolve(config.char, device.type)
    torch.manual_seed(config.seed)
    adapter = CharLSTMAdapter(corpus, size, hp, config.seed, device)
    plan = make_plan(config, hp)
    make_model_dir(path, config.force)
    header = {
        "format": FORMAT_VERSION,
        "kind": adapter.kind,
        "name": path.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "corpus": {"name": corpus.name, "source": corpus.source, "checksum": corpus.checksum,
                   "documents": len(corpus.documents), "characters": corpus.chars},
        **adapter.describe(),
        "training": config.to_json(),
        "plan": {k: v for k, v in plan.__dict__.items()},
        "device": str(device),
    }
    if config.resume:
        header["created"] = saved["created"]
    trainer = Trainer(adapter, path, plan, device, reporter, header)
    if config.resume:
        trainer.resume()
    else:
        reporter.message(
            f"Training a {size} char-LSTM ({hp.layers}x{hp.hidden}, {adapter.model.num_parameters():,} parameters) "
            f"on {corpus.name} ({corpus.chars:,} characters, vocabulary {len(adapter.vocab)}) on {device}, into {path}"
        )
    return trainer.run(resumed=config.resume)
