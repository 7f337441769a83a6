"""`assistant samples ...`, `memorization`, `compare` and `repl`: the commands around the sample store.

Kept apart from cli.py so each front end stays small; `register(app)` adds
them. Like cli.py, heavy imports (torch, numpy, sqlite-utils, prompt-toolkit)
happen inside the commands, so `assistant --help` stays fast.
"""

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from corpora import UserError
from corpora.suggest import did_you_mean, nearest
from finetune.config import MAX_SEED

from .options import DeviceOpt, EvalSamplesOpt, JsonOpt, QuantizeOpt, out_option

if TYPE_CHECKING:
    from ..samples.store import Store

samples_app = typer.Typer(help="The samples you have written: list, read, tag, export, check for copying.",
                          no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DEFAULT_MIN_SPAN = 50  # characters copied verbatim from the corpus from which a sample is flagged


def _at_least(low: int):
    """A check run while the command line is read, so a bad count is one `error:` line before anything runs."""

    def check(param: typer.CallbackParam, value: int) -> int:
        if value < low:
            raise UserError(f"--{param.name.replace('_', '-')} must be at least {low}, got {value}")
        return value

    return check


MinSpanOpt = Annotated[int, typer.Option(help="Flag samples that copy at least this many characters of their corpus.",
                                         callback=_at_least(1))]
IdArg = Annotated[int, typer.Argument(help="Sample id (see `assistant samples list`).")]


def register(app: typer.Typer) -> None:
    app.add_typer(samples_app, name="samples")
    app.command()(memorization)
    app.command()(compare)
    app.command()(repl)


def _store():
    from ..samples.store import Store

    return Store()


@samples_app.command("fresh")
def samples_fresh() -> None:
    """Move a damaged sample store aside (kept, for whatever can be saved from it) and start an empty one."""
    from ..samples.store import set_aside

    out.print(Text(f"the damaged store was moved to {set_aside()}; a new, empty store takes its place"), soft_wrap=True)


@samples_app.command("list")
def samples_list(
    tag: Annotated[str | None, typer.Option(help="Only samples with this tag.")] = None,
    model: Annotated[str | None, typer.Option(help="Only samples by this model.")] = None,
    search: Annotated[str | None, typer.Option(help="Only samples whose prompt or text has these words.")] = None,
    since: Annotated[str | None, typer.Option(help="Only samples since a date or time, or an age: 30m, 12h, 7d.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOpt = False,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
) -> None:
    """The stored samples, newest first; those that copy their corpus are flagged."""
    from ..samples.views import jsonl, sample_table

    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    with _store() as store:
        found = store.find(tag=tag, model=model, search=search, since=since, limit=limit)
        nothing = None if found else _nothing_found(store, tag=tag, model=model, search=search, since=since)
    if as_json:
        sys.stdout.write(jsonl(found))
    elif found:
        out.print(sample_table(found, min_span, out))
    else:
        err.print(Text(nothing or ""), soft_wrap=True)


def _nothing_found(store: "Store", **filters: str | None) -> str:
    """What to say when no sample matches: the filters given, and a tag or model that no sample has at all (with the
    nearest, since a mistyped tag is the likeliest reason)."""
    given = [f"--{key} {shlex.quote(value)}" for key, value in filters.items() if value]
    if not given:
        return "no samples yet"
    said = [f"no samples match {' '.join(given)}"]
    for key, value, known in (("tag", filters.get("tag"), store.tag_names()), ("model", filters.get("model"),
                                                                               store.model_names())):
        if value and value not in known:
            close = nearest(value, known)
            said.append(f"no sample has the {key} {value!r}" + (f" (did you mean {close!r}?)" if close else "")
                        + (f"; the {key}s there are: {', '.join(known)}" if known else ""))
    return "; ".join(said)


@samples_app.command("show")
def samples_show(sample_id: IdArg, min_span: MinSpanOpt = DEFAULT_MIN_SPAN) -> None:
    """One sample: who wrote it, how, its tags and copied span, then its text (prompt dimmed)."""
    from ..samples.views import describe, sample_text

    with _store() as store:
        sample = store.get(sample_id)
    out.print(describe(sample, min_span))
    out.print()
    out.print(sample_text(sample), highlight=False)


@samples_app.command("tag")
def samples_tag(sample_id: IdArg, tags: Annotated[list[str], typer.Argument(help="Tags to add.")]) -> None:
    """Add tags to a sample."""
    with _store() as store:
        store.tag(sample_id, tags)
        out.print(f"#{sample_id}: {', '.join(store.get(sample_id).tags)}")


@samples_app.command("untag")
def samples_untag(sample_id: IdArg, tags: Annotated[list[str], typer.Argument(help="Tags to remove.")]) -> None:
    """Remove tags from a sample."""
    with _store() as store:
        removed = store.untag(sample_id, tags)
        left = store.get(sample_id).tags
    if missing := [t for t in dict.fromkeys(t.strip() for t in tags) if t not in removed]:
        err.print(Text(f"#{sample_id} had no tag {', '.join(map(repr, missing))}: nothing to remove"), soft_wrap=True)
    out.print(Text(f"#{sample_id}: {', '.join(left) or 'no tags'}"))


@samples_app.command("ghostwrite")
def samples_ghostwrite(
    sample_id: IdArg,
    anyway: Annotated[bool, typer.Option("--anyway", help="Publish it even though it copies its corpus.")] = False,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
) -> None:
    """Mark a sample as published (tag `ghostwritten`) and print its text, ready to paste; one that copies its corpus
    is refused unless you say --anyway."""
    from ..samples.publishing import ghostwrite, paste_text

    with _store() as store:
        sample, warning = ghostwrite(store, sample_id, min_span, anyway, "Pass --anyway")
    if warning:
        err.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False)
    sys.stdout.write(paste_text(sample))


@samples_app.command("rm")
def samples_rm(sample_ids: Annotated[list[int], typer.Argument(help="Sample ids.")]) -> None:
    """Delete samples (all or none: every id must exist)."""
    with _store() as store:
        count = store.delete(sample_ids)
    err.print(f"deleted {count} sample(s)")


@samples_app.command("export")
def samples_export(
    tag: Annotated[str | None, typer.Option(help="Only samples with this tag, e.g. ghostwritten.")] = None,
    model: Annotated[str | None, typer.Option(help="Only samples by this model.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown, txt (the texts alone, to paste into a manuscript) or "
                                                     "jsonl.")] = "markdown",
    out_file: Annotated[Path | None, out_option("Write here instead of to stdout.")] = None,
) -> None:
    """The samples, oldest first, as Markdown (who wrote each, from what prompt), plain text (the texts alone, a scene
    break between two) or JSON lines. Nothing to export is said, with exit status 1, and no file is written."""
    from ..samples.views import jsonl, markdown, plain_text

    formats = {"markdown": markdown, "txt": plain_text, "jsonl": jsonl}
    if fmt not in formats:
        raise UserError(f"unknown --format {fmt!r}: {did_you_mean(fmt, formats)}{', '.join(formats)}")
    with _store() as store:
        found = store.find(tag=tag, model=model, oldest_first=True)
        if not found:
            err.print(Text(f"nothing exported: {_nothing_found(store, tag=tag, model=model)}"), soft_wrap=True)
            raise typer.Exit(1)
    text = formats[fmt](found)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out_file}: {e.strerror}") from None


@samples_app.command("check")
def samples_check(
    sample_id: IdArg,
    context: Annotated[int, typer.Option(help="Characters of context each side.", callback=_at_least(0))] = 80,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
) -> None:
    """The longest passage a sample shares verbatim with its model's corpus, in context in both."""
    from ..samples.recording import check_stored
    from ..samples.views import check_view

    with _store() as store:
        sample = store.get(sample_id)
        span, index = check_stored(store, sample)
    out.print(check_view(sample, span, index, min_span, context), highlight=False)


def memorization(
    model: Annotated[str, typer.Argument(help="Model name or directory.")],
    n: Annotated[int, typer.Option("-n", help="Number of unconditional samples.")] = 50,
    length: Annotated[int, typer.Option("--length", "-l", help="Characters per sample.")] = 500,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Sampling temperature.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the first sample; the others follow.", min=0, max=MAX_SEED)] = 0,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not keep the samples in the sample store.")] = False,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """How much a model copies its corpus: the share of N unconditional samples with a long verbatim span."""
    from statistics import median

    from ..generation import load_model
    from ..samples.recording import written

    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    text_model = load_model(model, device, quantize)
    index = text_model.card.corpus_index()
    if index is None:
        raise UserError(f"{text_model.name} has no corpus to check against")
    spans = []
    for i in range(n):
        result, _ = written(text_model, "", "cli", log=not no_log, max_new_chars=length, temperature=temperature,
                            seed=seed + i)
        span = index.longest_span(result.text)
        spans.append(span.length if span else 0)
        err.print(f"sample {i + 1}/{n}: longest copied span {spans[-1]} characters", highlight=False)
    copying = sum(s >= min_span for s in spans)
    index_corpus = text_model.card.corpus.name if text_model.card.corpus else "-"
    out.print(f"{text_model.card.named}: {copying} of {n} samples ({copying / n:.0%}) copy {min_span} or more characters "
              f"of {index_corpus}; longest copied span: median {median(spans):g}, "
              f"max {max(spans)} characters", highlight=False)


def compare(
    model_a: Annotated[str, typer.Argument(help="First model (name or directory).")],
    model_b: Annotated[str, typer.Argument(help="Second model.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue (empty: unconditional).")] = "",
    length: Annotated[int, typer.Option("--length", "-l", help="Characters each.")] = 300,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Sampling temperature.")] = 0.8,
    seed: Annotated[int | None, typer.Option(help="The same seed for both models.", min=0, max=MAX_SEED)] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not keep the samples in the sample store.")] = False,
    figures: Annotated[bool, typer.Option(help="Also measure both: copying, style, prompt-following, diversity.")] = True,
    samples: EvalSamplesOpt = 16,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """The same prompt through two models, written side by side in two columns (each flagged when it copies its
    corpus), and the ghostwriting figures of each."""
    from ..compare import compare as run
    from ..generation import load_model

    models = [load_model(model_a, device, quantize), load_model(model_b, device, quantize)]
    _, stopped = run(models, prompt, out, source="cli", min_span=min_span, log=not no_log, max_new_chars=length,
                     temperature=temperature, seed=seed)
    if stopped:
        err.print("[dim](stopped)[/dim]")
        raise typer.Exit(130)
    if figures:
        _figures(models, samples, temperature)


def _figures(models: list, samples: int, temperature: float) -> None:
    """Both models measured against the corpus of the one that has one (a base has none of its own)."""
    from rich.table import Table

    from contract.sampling import Sampling
    from finetune.ghostwriting.choice import share_text
    from finetune.ghostwriting.evaluate import GhostwritingOptions

    from ..report import evaluate_model

    against = next((m.card for m in models if m.card.corpus is not None), None)
    if against is None:
        err.print("neither model was trained on a corpus: no figures to compare", highlight=False)
        return
    options = GhostwritingOptions(samples=samples, sampling=Sampling(temperature))
    table = Table("model", "copying", "span", "style", "prompts", "dist-2", "dist-3",
                  title=f"measured on {against.corpus.name if against.corpus else '-'}, {samples} + {samples} samples at "
                        f"temperature {temperature:g}", title_justify="left")
    for model in models:
        found, _ = evaluate_model(model, options, against)
        pct = [share_text(found, k) for k in ("copying", "style", "prompt_following")]
        span = "-" if found["copied_span"] is None else f"{found['copied_span']:.0f}"
        table.add_row(model.card.label, pct[0], span, pct[1], pct[2], *(f"{found[k]:.3f}" if found[k] is not None else "-"
                                                                   for k in ("distinct_2", "distinct_3")))
    out.print(table)


def repl(
    model: Annotated[str | None, typer.Argument(help="Model to start with (default: the newest).")] = None,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """Write interactively: prompts, streamed continuations, slash commands (/help)."""
    from ..repl import Repl

    Repl(model, min_span, quantize, device).run()
