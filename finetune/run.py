"""`finetune(config)`: from a corpus name to a trained model directory.

Resolves the model directory (refusing to overwrite without --resume or
--force), merges a resumed run's saved settings with the new bounds, builds
the model kind's adapter, checks the loss before the first step (a
fine-tuning run must not start from random weights) and hands it to the
training core.
"""

import datetime as dt
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from contract import modeldir, registry
from contract.modeldir import Card
from corpora import Corpus, UserError, load_corpus
from corpora import unwrap as unwrapping
from corpora.authors import card_tags
from corpora.home import models_dir
from corpora.load import listing
from corpora.ngram import NGramModel

from . import amount, distributed, memory
from . import device as devices
from .adapter import Adapter, Schedule
from .checkpoint import checkpoint_state
from .config import FinetuneConfig
from .ghostwriting.evaluate import Ghostwriting
from .plan import Plan, RunState, check_unfinished
from .progress import Reporter
from .summary import Summary
from .trainer import Trainer


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
    if not path.exists() and (above := next((p for p in path.parents if p.exists()), None)) and not above.is_dir():
        raise UserError(f"cannot create {path}: {above} is a file, not a directory")
    exists = path.exists() and any(path.iterdir())
    if resume:
        if not (path / modeldir.LAST / modeldir.CHECKPOINT).exists():
            raise UserError(f"nothing to resume in {path}: it has no last/ checkpoint")
        checkpoint_state(path / modeldir.LAST / modeldir.CHECKPOINT)  # a damaged one is refused before any work
        if modeldir.read(path).format != modeldir.FORMAT_VERSION:
            raise UserError(f"{path} was written by another version of ghostwriter (format differs); cannot resume it")
    elif exists:
        if not force:
            raise UserError(
                f"model directory {path} already exists: pass --resume to continue training it, "
                "--force to start over, or --name to train a new one"
            )
        if not (path / modeldir.CONFIG).exists():
            raise UserError(f"{path} is not a ghostwriter model directory; refusing to delete it with --force")


def make_model_dir(path: Path, force: bool) -> None:
    """Only once every input has been checked: start over (--force) or create."""
    if force and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def merge_resumed(card: Card, new: FinetuneConfig) -> FinetuneConfig:
    """The saved run's settings, with any bound (and --lr) given again on the command line.

    --max-steps and --max-time count from the start of the first run. Given
    again, either replaces both saved limits: `--resume --max-steps 900` after
    a run limited to 30 s trains to step 900, whatever the old time limit.

    The architecture and a step's size cannot change under a checkpoint: the
    kind's options pin them to what the run resolved on its first device. The
    learning rate can change, which is how a diverged run is rescued, and so
    can how a GPT-2 step is cut into passes, which is how one that ran out of
    memory is.
    """
    old = dict(card.training)
    kind = registry.get(card.kind)
    old["options"] = kind.options.resumed(card, new.options if isinstance(new.options, kind.options) else kind.options())
    old["model"] = kind.name
    old["out"] = Path(old["out"]) if old.get("out") else None
    cfg = FinetuneConfig(**old)
    bounds = {k: getattr(new, k) for k in ("target_loss", "target_on") if getattr(new, k) is not None}
    if new.max_steps is not None or new.max_time is not None:  # the new limits replace the old ones, not add to them
        bounds.update(max_steps=new.max_steps, max_time=new.max_time)
    return replace(cfg, **bounds, stop_on_overfit=cfg.stop_on_overfit or new.stop_on_overfit,
                   device=new.device, fsdp=new.fsdp, resume=True, force=False)


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
        overfit_patience=cfg.overfit_patience, grad_clip=cfg.grad_clip,
        weight_decay=hp.weight_decay if cfg.weight_decay is None else cfg.weight_decay,
        min_lr_ratio=hp.min_lr_ratio if cfg.min_lr_ratio is None else cfg.min_lr_ratio,
        seed=cfg.seed, ghostwriting_every=cfg.ghostwriting_every,
        max_copying=cfg.max_copying, stop_on_copying=cfg.stop_on_copying,
    )


def check_same_corpus(saved: Card, corpus: Corpus, path: Path) -> None:
    """A run resumes only on the text it was trained on: its checkpoint's data position points into that text."""
    assert saved.corpus is not None
    if saved.corpus.checksum != corpus.checksum:
        if saved.corpus.name != corpus.name:  # a renamed folder keeps its checksum and resumes
            raise UserError(f"{path.name} was trained on corpus {saved.corpus.name!r}, not {corpus.name!r}: "
                            "resume it with that corpus, or train a new model with --name")
        raise UserError(
            f"corpus {corpus.name!r} has changed since {path.name} was trained (checksum differs); "
            "train a new model instead of resuming"
        )


def check_same_base(saved: Card, adapter: Adapter, options: Any, path: Path) -> None:
    """A LoRA adapter resumes only on the frozen weights it was trained on (a char model records none)."""
    if saved.extra.get("base_weights") not in (None, adapter.describe().get("base_weights")):
        raise UserError(f"base {options.base!r} has changed since {path.name} was trained: its LoRA adapter only "
                        "fits the weights it was trained on; train a new model instead of resuming")


def ghostwriting(config: FinetuneConfig, corpus: Corpus, card: Card, adapter: Adapter, saved: Card | None,
                 reporter: Reporter) -> Ghostwriting | None:
    """The run's ghostwriting evaluation, its description kept in the card; None when switched off.

    A base (a pretrained GPT-2) writes reference samples before it is trained: the
    style classifier learns that the base's own voice is not the author's. They
    are kept in the card, so that a resumed run judges by the same classifier.
    """
    if config.ghostwriting_every == 0:
        return None
    options = config.ghostwriting(adapter.ghostwriting_samples)
    base_samples = ((saved.extra.get("ghostwriting") or {}).get("base_samples") if saved is not None else None)
    if base_samples is None and card.extra.get("init") == "pretrained":
        units = max(1, round(options.chars / adapter.chars_per_unit))
        base_samples = adapter.write([""] * options.samples, units, config.seed, options.sampling)
    evaluation = Ghostwriting(corpus, card.corpus_index(), options, config.seed, base_samples)
    card.extra["ghostwriting"] = {**evaluation.describe(), "base_samples": base_samples}
    accuracy = evaluation.style_accuracy
    reporter.message(f"Ghostwriting evaluation: {len(evaluation.prompts)} prompted and {options.samples} unconditional "
                     + (f"samples every {config.ghostwriting_every} evaluation(s); " if config.ghostwriting_every
                        else "samples, as often as keeps it under a tenth of the training time; ")
                     + (f"the style classifier recognises {accuracy['author']:.0%} of held-out author passages and "
                        f"{accuracy['reference']:.0%} of other writing"
                        + (f" ({', '.join(accuracy['left_out_references'])} left out of that writing: it shares passages "
                           "with the training text)" if accuracy.get("left_out_references") else "") if accuracy
                        else f"style not measured ({evaluation.style_note})"))
    return evaluation


def ngram_baseline(adapter: Adapter, eval_units: int, reporter: Reporter) -> dict:
    """The Kneser-Ney n-gram model of `assistant eval`, fitted on the training text (its n chosen on validation) and
    scored on the validation text the run measures: the figure a model must beat to have learnt more than counting.
    It takes seconds, against the minutes of training it judges."""
    started = time.monotonic()
    model = NGramModel.fit(adapter.text("train"), adapter.text("val"))
    nats, count = model.nats(adapter.text("val", eval_units))
    figure = {"order": model.order, "val_per_char": round(nats / count, 4)}
    reporter.message(f"Baseline: a {model.order}-gram model (Kneser-Ney) gives {figure['val_per_char']:.3f} nats/char on "
                     f"the validation text ({time.monotonic() - started:.1f} s); the model must beat it to write better "
                     "than counting.", style="dim")
    return figure


def make_card(path: Path, config: FinetuneConfig, corpus: Corpus, adapter: Adapter, plan: Plan, device: torch.device,
              saved: Card | None) -> Card:
    """config.json as the run starts: what the model is, the corpus exactly, the settings and plan it runs with.

    A resumed run keeps the date its model was first created. The settings are saved as resolved (a preset's
    weight decay and learning-rate floor in place of None), so a resume keeps them when a later version's presets
    change.
    """
    return modeldir.from_json({
        **adapter.describe(),
        "format": modeldir.FORMAT_VERSION,
        "kind": config.model,
        "name": path.name,
        "created": saved.created if saved is not None else dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "corpus": {"name": corpus.name, "source": corpus.source, "checksum": corpus.checksum,
                   "documents": len(corpus.documents), "characters": corpus.chars, "encoding": config.encoding,
                   "unwrap": unwrapping.setting(config.unwrap)},
        "training": replace(config, weight_decay=plan.weight_decay, min_lr_ratio=plan.min_lr_ratio).to_json(),
        "plan": dict(plan.__dict__),
        "device": str(device),
        **({"authors": tags} if (tags := card_tags(corpus, config.author_tags)) else {}),
    }, path)


def finetune(config: FinetuneConfig, reporter: Reporter | None = None) -> Summary:
    """Train the model `config` asks for; every input is checked before the model directory is touched.

    Under torchrun every process runs this: each node's first rank fetches and tokenizes the corpus while the
    others wait, rank 0 alone prints and writes (see `distributed`).
    """
    config.validate()
    config = replace(config, options=config.options.prepared())
    world, device = distributed.start(config.device)
    try:
        return train(config, world, device, reporter or Reporter() if world.main else Reporter(Console(quiet=True)))
    finally:
        distributed.stop(world)


def train(config: FinetuneConfig, world: distributed.World, device: torch.device, reporter: Reporter) -> Summary:
    with world.node_main_first():
        corpus = load_corpus(config.corpus, config.encoding, config.unwrap, author_tags=config.author_tags)
    path = model_path(config, corpus)
    check_model_dir(path, config.resume, config.force)
    saved = modeldir.read(path) if config.resume else None
    if saved is not None:
        reading = (saved.training.get("encoding"), unwrapping.SETTINGS[saved.corpus.unwrap if saved.corpus else "off"])
        if reading != (config.encoding, config.unwrap):  # read as the run read it, whatever the flags say now
            with world.node_main_first():
                corpus = load_corpus(config.corpus, *reading, author_tags=config.author_tags)
        check_same_corpus(saved, corpus, path)
        config = replace(merge_resumed(saved, config), encoding=reading[0], unwrap=reading[1])
    devices.prepare(device)
    torch.manual_seed(config.seed)
    with world.node_main_first():
        adapter = registry.get(config.model).train().make_adapter(corpus, config.options, config.seed, device, world)
    adapter.fit_memory(world)  # after the barrier: a measure the ranks agree on is a collective
    if saved is not None:
        check_same_base(saved, adapter, config.options, path)
    plan = make_plan(config, adapter.schedule)
    if saved is not None:  # a finished run is refused here, before the ghostwriting evaluation's set-up and the rest
        check_unfinished(plan, RunState.of(checkpoint_state(path / modeldir.LAST / modeldir.CHECKPOINT)["run"]))
    if corpus.skipped:  # a writer's folder: say which files the model will not learn from, and why
        reporter.message(f"Left out of corpus {corpus.name}: {listing(corpus.skipped)}")
    for note in (corpus.reading(), corpus.unwrapping()):  # how its files were read: --encoding, joined lines
        if note:
            reporter.message(f"{note}.")
    start_val = None
    if saved is None:
        reporter.message(f"{adapter.headline()}; corpus {corpus.name} ({corpus.chars:,} characters), on {device}, into {path}")
        for warning in amount.before_training(adapter.amounts()):
            reporter.message(warning, style="yellow")
        try:
            start_val = adapter.evaluate("val", plan.eval_units)
        except RuntimeError as error:  # nothing written yet: the model directory is made after this
            if not memory.ran_out_of_memory(error):
                raise
            raise UserError(f"validation before training ran out of {device.type} memory: "
                            f"{memory.advice(adapter.less_memory(), checkpoint=False, written=False)}") from None
        reporter.message(f"Before training: validation loss {start_val:.3f} nats/{adapter.unit}.")
        adapter.check_start(start_val)
    try:
        if world.main:
            make_model_dir(path, config.force)
        world.barrier()
        card = make_card(path, config, corpus, adapter, plan, device, saved)
        evaluation = ghostwriting(config, corpus, card, adapter, saved, reporter)
        trainer = Trainer(adapter, card, plan, device, reporter, evaluation, world, config.fsdp)
        if saved is not None:
            trainer.resume()
        if world.main:
            trainer.baseline = ngram_baseline(adapter, plan.eval_units, reporter)
        world.seed(config.seed, trainer.state.step)
        summary = trainer.run(start_val)
        if world.main:
            adapter.finish(path)
    except OSError as e:  # a disk that filled up, a directory made read-only or taken away mid-run
        raise cannot_write(path, e) from None
    return summary


def cannot_write(path: Path, e: OSError) -> UserError:
    """A write that failed, said in one line, with what is left to resume from: every file is written whole
    (corpora.files), so the last checkpoint is the one before the failed write."""
    then = (f"the last checkpoint in {path / modeldir.LAST} is intact: make room (or make it writable) and continue "
            "with --resume" if (path / modeldir.LAST / modeldir.CHECKPOINT).is_file()
            else "make room (or make it writable, or choose another --out) and run it again")
    return UserError(f"cannot write {e.filename or path}: {e.strerror or e}; {then}")
