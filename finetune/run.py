"""`finetune(config)`: from a corpus name to a trained model directory.

Resolves the model directory (refusing to overwrite without --resume or
--force), merges a resumed run's saved settings with the new bounds, builds
the model kind's adapter, checks the loss before the first step (a
fine-tuning run must not start from random weights) and hands it to the
training core.
"""

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import torch

from corpora import Corpus, UserError, load_corpus
from corpora.home import models_dir

from . import checkpoint as ckpt
from . import device as devices
from .adapter import Adapter
from .charlstm import presets
from .charlstm.adapter import CharLSTMAdapter
from .config import CharOptions, FinetuneConfig, GPT2Options
from .progress import Reporter
from .trainer import Plan, Summary, Trainer

FORMAT_VERSION = 1


class Schedule(Protocol):
    """The numbers a kind's presets give the plan when the user gives none."""

    lr: float
    max_steps: int
    warmup_steps: int
    eval_every: int
    sample_every: int
    checkpoint_every: int | None  # None: at every evaluation
    eval_units: int | None  # a kind's cap on the validation units per evaluation


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

    --max-steps and --max-time count from the start of the first run. Given
    again, either replaces both saved limits: `--resume --max-steps 900` after
    a run limited to 30 s trains to step 900, whatever the old time limit.

    The architecture and batch shape cannot change under a checkpoint: they are
    pinned to what the run resolved on its first device. The learning rate can
    change, which is how a diverged run is rescued.
    """
    old = dict(saved["training"])
    hp = saved["hparams"]
    if old["model"] == "char":
        old["char"] = CharOptions(size=saved["size"], **{
            k: hp[k] for k in ("layers", "hidden", "dropout", "seq_len", "batch_size", "lr")
        })
        old["gpt2"] = GPT2Options()
    else:
        pinned = {"block_size": hp["block_size"], "micro_batch": hp["micro_batch"], "lr": hp["lr"],
                  "batch_tokens": hp["block_size"] * hp["micro_batch"] * hp["grad_accum"]}
        old["gpt2"] = GPT2Options(**{**old["gpt2"], **pinned, "compile": new.gpt2.compile})
        old["char"] = CharOptions()
    lr = new.char.lr if old["model"] == "char" else new.gpt2.lr
    if lr is not None:
        old[old["model"]].lr = lr
    old["out"] = Path(old["out"]) if old.get("out") else None
    cfg = FinetuneConfig(**old)
    bounds = {k: getattr(new, k) for k in ("target_loss", "target_on") if getattr(new, k) is not None}
    if new.max_steps is not None or new.max_time is not None:  # the new limits replace the old ones, not add to them
        bounds.update(max_steps=new.max_steps, max_time=new.max_time)
    return replace(cfg, **bounds, stop_on_overfit=cfg.stop_on_overfit or new.stop_on_overfit,
                   device=new.device, resume=True, force=False)


def make_plan(cfg: FinetuneConfig, hp: Schedule) -> Plan:
    max_steps = cfg.max_steps
    if max_steps is None and cfg.max_time is None:
        max_steps = hp.max_steps
    eval_every = cfg.eval_every or hp.eval_every
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else hp.warmup_steps
    if max_steps is not None:
        warmup = min(warmup, max(1, max_steps // 10))
    return Plan(
        lr=hp.lr, max_steps=max_steps, max_time=cfg.max_time, warmup_steps=max(1, warmup),
        eval_every=eval_every, eval_units=min(cfg.eval_chars, hp.eval_units or cfg.eval_chars),
        sample_every=cfg.sample_every or hp.sample_every,
        sample_units=cfg.sample_chars, checkpoint_every=cfg.checkpoint_every or hp.checkpoint_every or eval_every,
        target_loss=cfg.target_loss, target_on=cfg.target_on or "train", stop_on_overfit=cfg.stop_on_overfit,
        overfit_patience=cfg.overfit_patience, grad_clip=cfg.grad_clip, weight_decay=cfg.weight_decay,
        min_lr_ratio=cfg.min_lr_ratio, seed=cfg.seed,
    )


def make_adapter(config: FinetuneConfig, corpus: Corpus, device: torch.device) -> tuple[Adapter, Schedule]:
    """The model kind's adapter, and the schedule numbers it brings."""
    if config.model == "char":
        size, hp = presets.resolve(config.char, device.type)
        return CharLSTMAdapter(corpus, size, hp, config.seed, device), hp
    from .gpt2.adapter import GPT2Adapter

    adapter = GPT2Adapter(corpus, config.gpt2, config.seed, device)
    return adapter, adapter.hp


def finetune(config: FinetuneConfig, reporter: Reporter | None = None) -> Summary:
    config.validate()
    if config.model == "gpt2":  # a local base by its absolute path: the model then loads from any directory
        from .gpt2.base import base_location

        config = replace(config, gpt2=replace(config.gpt2, base=base_location(config.gpt2.base)))
    reporter = reporter or Reporter()
    device = devices.pick_device(config.device)
    corpus = load_corpus(config.corpus, config.encoding)
    path = model_path(config, corpus)
    check_model_dir(path, config.resume, config.force)
    if config.resume:
        saved = ckpt.read_json(path / ckpt.CONFIG)
        if saved["corpus"]["checksum"] != corpus.checksum:
            if saved["corpus"]["name"] != corpus.name:  # a renamed folder keeps its checksum and resumes
                raise UserError(f"{path.name} was trained on corpus {saved['corpus']['name']!r}, not {corpus.name!r}: "
                                "resume it with that corpus, or train a new model with --name")
            raise UserError(
                f"corpus {corpus.name!r} has changed since {path.name} was trained (checksum differs); "
                "train a new model instead of resuming"
            )
        config = merge_resumed(saved, config)
    devices.prepare(device)
    torch.manual_seed(config.seed)
    adapter, hp = make_adapter(config, corpus, device)
    if config.resume and saved.get("base_weights") not in (None, adapter.describe().get("base_weights")):
        raise UserError(f"base {config.gpt2.base!r} has changed since {path.name} was trained: its LoRA adapter only "
                        "fits the weights it was trained on; train a new model instead of resuming")
    plan = make_plan(config, hp)
    start_val = None
    if not config.resume:
        reporter.message(f"{adapter.headline()}; corpus {corpus.name} ({corpus.chars:,} characters), on {device}, into {path}")
        start_val = adapter.evaluate("val", plan.eval_units)
        reporter.message(f"Before training: validation loss {start_val:.3f} nats/{adapter.unit}.")
        adapter.check_start(start_val)
    make_model_dir(path, config.force)
    header = {
        **adapter.describe(),
        "format": FORMAT_VERSION,
        "kind": adapter.kind,
        "name": path.name,
        "created": saved["created"] if config.resume else dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "corpus": {"name": corpus.name, "source": corpus.source, "checksum": corpus.checksum,
                   "documents": len(corpus.documents), "characters": corpus.chars},
        "training": config.to_json(),
        "plan": {k: v for k, v in plan.__dict__.items()},
        "device": str(device),
    }
    trainer = Trainer(adapter, path, plan, device, reporter, header)
    if config.resume:
        trainer.resume()
    summary = trainer.run(start_val)
    adapter.finish(path)
    return summary
