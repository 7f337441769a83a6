"""The `assistant` command: a thin Typer front end over corpora, finetune and generation.

Heavy imports (torch and everything that pulls it in) happen inside the
commands, so `assistant --help` answers at once. A `UserError` anywhere
becomes one line on stderr and exit status 2.
"""

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # Typer's own click

from contract import registry
from corpora import CATALOGUE, UserError, load_corpus
from finetune.config import MAX_SEED  # no torch: --help stays fast

from .export import register as register_export
from .lsp import register as register_lsp
from .models import register as register_models
from .options import (
    CHAIN,
    BackendOpt,
    DeviceOpt,
    JsonOpt,
    QuantizeOpt,
    adding_flags,
    chain_flags,
    copy_span_option,
    eval_samples_option,
    out_option,
    taking_chain_flags,
)
from .report import register as register_report
from .samples import DEFAULT_MIN_SPAN, MinSpanOpt, register
from .serve import register as register_serve
from .views import register as register_views

app = typer.Typer(
    help="ghostwriter: train language models on an author's corpus and write with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
corpus_app = typer.Typer(help="List, inspect and prepare corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

out = Console()
err = Console(stderr=True)

EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="Read the text files that are not UTF-8 in this encoding.")
]
UnwrapOpt = Annotated[bool | None, typer.Option(
    "--unwrap/--no-unwrap", help="Join lines broken at a fixed width inside paragraphs (default: in the files whose "
                                 "lines are all wrapped so, such as Gutenberg's; verse stays as it is).")]


# ---- corpora -----------------------------------------------------------------
@corpus_app.command("list")
def corpus_list(as_json: JsonOpt = False) -> None:
    """The corpora ghostwriter can fetch by name."""
    if as_json:
        for e in CATALOGUE.values():
            _json_line({"name": e.name, "author": e.author, "documents": len(e.documents), "what": e.description})
        return
    table = Table("name", "author", "documents", "what")
    for e in CATALOGUE.values():
        table.add_row(e.name, e.author, str(len(e.documents)), e.description)
    out.print(table)
    out.print("Any text file, or a folder of .txt and .md files, works too: assistant finetune path/to/my-novel.txt")


def _json_line(row: dict) -> None:
    sys.stdout.write(json.dumps(row) + "\n")


def _print_stats(name: str, encoding: str | None, unwrap: bool | None, documents: bool = False,
                 as_json: bool = False) -> None:
    """The corpus's figures; with `documents`, each document's title and size, and each file left out and why
    (`as_json`: the figures as one JSON line, then one per document and one per file left out)."""
    corpus = load_corpus(name, encoding, unwrap)
    stats = corpus.stats()
    if as_json:
        _json_line({"corpus": corpus.name, "source": corpus.source, **stats, "checksum": corpus.checksum})
        for doc in corpus.documents if documents else []:
            _json_line({"document": doc.title or doc.name, "characters": len(doc.text), "words": len(doc.text.split())})
        for skipped in corpus.skipped if documents else []:
            _json_line({"left_out": skipped.name, "why": skipped.reason})
        return
    table = Table(show_header=False, box=None)
    table.add_row("corpus", corpus.name)
    table.add_row("source", corpus.source)
    for key, value in stats.items():
        table.add_row(key, f"{value:,}")
    table.add_row("checksum", corpus.checksum[:16])
    out.print(table)
    for note in (corpus.reading(), corpus.unwrapping()):  # which files --encoding applied to; joined lines
        if note:
            out.print(Text(f"{note}."))
    if documents:
        listing = Table("document", "characters", "words", box=None, pad_edge=False)
        for doc in corpus.documents:
            listing.add_row(Text(doc.title or doc.name), f"{len(doc.text):,}", f"{len(doc.text.split()):,}")
        listing.columns[1].justify = listing.columns[2].justify = "right"
        out.print()
        out.print(listing)
        for skipped in corpus.skipped:
            out.print(Text(f"left out {skipped}"))


@corpus_app.command("show")
def corpus_show(name: str, encoding: EncodingOpt = None, unwrap: UnwrapOpt = None, as_json: JsonOpt = False) -> None:
    """A corpus's figures (characters, vocabulary, words) and its documents, with the size of each."""
    _print_stats(name, encoding, unwrap, documents=True, as_json=as_json)


@corpus_app.command("prepare")
def corpus_prepare(name: str, encoding: EncodingOpt = None, unwrap: UnwrapOpt = None) -> None:
    """Fetch (or find) and clean a corpus now, so training starts at once."""
    _print_stats(name, encoding, unwrap)
    out.print("ready")


# ---- training ----------------------------------------------------------------
GPT2 = "GPT-2 options"
GW = "Ghostwriting evaluation (which checkpoint writes best)"
CHAR = "char model options (char, char-transformer)"
DIST = "Several processes (torchrun: DDP, FSDP)"


def _kind_flag(help: str, panel: str | None, *decls: str) -> typer.models.OptionInfo:
    return typer.Option(*decls, help=help, rich_help_panel=panel)


# The flags that belong to a model kind (the fields of its options class, see contract/registry.py), each declared once:
# name: (type with its option, default). `finetune` takes them as keyword arguments, and passes a kind those given.
KIND_FLAGS: dict[str, tuple[object, object]] = {
    "lr": (Annotated[float | None, _kind_flag("Peak learning rate.", None)], None),
    "dropout": (Annotated[float | None, _kind_flag("Dropout (GPT-2: the base's own when not given).", None)], None),
    "cpu_bf16": (Annotated[bool | None, _kind_flag(
        "On a CPU, matrix products in bf16 (weights and optimizer stay float32): about 1.5x faster where the CPU has "
        "AVX512-BF16 or AMX, slower where it has not (default: on where it has).", None,
        "--cpu-bf16/--no-cpu-bf16")], None),
    "base": (Annotated[str, _kind_flag("Hub name (gpt2, gpt2-medium) or save_pretrained directory.", GPT2)], "gpt2"),
    "from_scratch": (Annotated[bool, _kind_flag("Random weights instead of a trained base.", GPT2)], False),
    "n_layer": (Annotated[int | None, _kind_flag("Layers (--from-scratch only).", GPT2)], None),
    "n_embd": (Annotated[int | None, _kind_flag("Width (--from-scratch only).", GPT2)], None),
    "n_head": (Annotated[int | None, _kind_flag("Attention heads (--from-scratch only).", GPT2)], None),
    "block_size": (Annotated[int | None, _kind_flag("Tokens per block (default 1024, capped by the context).", GPT2)],
                   None),
    "batch_tokens": (Annotated[int | None, _kind_flag("Tokens per optimizer step (32k on GPU, 8k on CPU).", GPT2)], None),
    "micro_batch": (Annotated[str | None, _kind_flag(
        "Blocks per forward pass, the rest accumulated; auto (default): as many as the GPU's memory holds, measured "
        "before training (2,048 tokens' worth on a CPU).", GPT2)], None),
    "split": (Annotated[str, _kind_flag("Validation: contiguous (last 10%) or document (every 10th).", GPT2)],
              "contiguous"),
    "lora": (Annotated[bool, _kind_flag("Train a LoRA adapter instead of all weights.", GPT2)], False),
    "lora_r": (Annotated[int, _kind_flag("LoRA rank.", GPT2)], 8),
    "lora_alpha": (Annotated[int, _kind_flag("LoRA alpha.", GPT2)], 16),
    "lora_dropout": (Annotated[float, _kind_flag("LoRA dropout.", GPT2)], 0.05),
    "lora_targets": (Annotated[str, _kind_flag("Modules LoRA adapts.", GPT2)], "c_attn,c_proj"),
    "merge": (Annotated[bool, _kind_flag("Also save the adapter merged into its base (merged/).", GPT2)], False),
    "compile": (Annotated[bool | None, _kind_flag("torch.compile (default: on CUDA).", GPT2, "--compile/--no-compile")],
                None),
    "grad_checkpointing": (Annotated[bool, _kind_flag("Recompute activations to save memory.", GPT2)], False),
    "size": (Annotated[str, _kind_flag("auto, tiny, small, medium or large (auto: small on CPU, large on GPU).", CHAR)],
             "auto"),
    "layers": (Annotated[int | None, _kind_flag("Layers (LSTM layers, or transformer blocks).", CHAR)], None),
    "hidden": (Annotated[int | None, _kind_flag("Width (LSTM cells, or the embedding width).", CHAR)], None),
    "seq_len": (Annotated[int | None, _kind_flag("Characters per training window (a transformer's context).", CHAR)],
                None),
    "batch_size": (Annotated[int | None, _kind_flag("Parallel streams per step.", CHAR)], None),
}


_taking_kind_flags = adding_flags(KIND_FLAGS)


@app.command()
@taking_chain_flags
@_taking_kind_flags
def finetune(
    corpus: Annotated[str, typer.Argument(help="A corpus name (see `assistant corpus list`) or a .txt path; A,B "
                                               "trains on several (see --author-tags).")],
    author_tags: Annotated[bool, typer.Option(help="With several corpora (pkd,austen): each document starts with its "
                                                   "author's tag, so that the model writes as one with generate "
                                                   "--author (docs/blend.md).")] = False,
    model: Annotated[str, typer.Option(help="Model kind to train: " + "; ".join(
        f"{k.name} ({k.help})" for k in registry.KINDS.values()) + ".")] = "gpt2",
    name: Annotated[str | None, typer.Option(help="Model name (default CORPUS-KIND).")] = None,
    out_dir: Annotated[Path | None, out_option("Model directory (default: data dir/models/NAME).")] = None,
    weight_decay: Annotated[float | None, typer.Option(
        help="AdamW's weight decay on the matrices (default: the model size's own).")] = None,
    target_loss: Annotated[float | None, typer.Option(help="Stop when the loss reaches this (nats per char or token).")] = None,
    target_on: Annotated[
        str | None, typer.Option(help="Which loss --target-loss watches: train (smoothed, the default) or val.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    max_time: Annotated[str | None, typer.Option(help="Stop after this long, e.g. 90s, 10m, 2h.")] = None,
    stop_on_overfit: Annotated[bool, typer.Option(help="Stop when the model starts to memorize: validation loss turns "
                                                       "while training loss falls, or its samples copy over "
                                                       "--max-copying.")] = False,
    eval_every: Annotated[int | None, typer.Option(help="Steps between validation evaluations.")] = None,
    sample_every: Annotated[int | None, typer.Option(help="Steps between printed samples.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Steps between resumable checkpoints.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same run.")] = 1337,
    ghostwriting_every: Annotated[int | None, typer.Option(
        help="Evaluations between two ghostwriting evaluations (copying, style, prompt-following, diversity); 0 turns them "
             "off; by default as often as takes at most a tenth of the training time.", rich_help_panel=GW)] = None,
    eval_samples: Annotated[int | None, eval_samples_option(GW)] = None,
    copy_span: Annotated[int, copy_span_option(GW)] = 50,
    max_copying: Annotated[float, typer.Option(help="The most copying (share of samples) the ghostwriting checkpoint may "
                                               "show.", rich_help_panel=GW)] = 0.05,
    stop_on_copying: Annotated[float | None, typer.Option(help="Stop once copying passes this share at two evaluations "
                                                          "in a row.", rich_help_panel=GW)] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the evaluation's (and the shown) samples.",
                                               rich_help_panel=GW)] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Top-k of the evaluation's samples.", rich_help_panel=GW)] = None,
    top_p: Annotated[float | None, typer.Option(help="Top-p of the evaluation's samples.", rich_help_panel=GW)] = None,
    device: DeviceOpt = "auto",
    nproc: Annotated[int | None, typer.Option(help="Train on this many processes per node (one per GPU), started by "
                                                   "torchrun; --batch-tokens stays the global step.",
                                              rich_help_panel=DIST)] = None,
    nnodes: Annotated[int, typer.Option(help="Nodes taking part (each runs the same command).", rich_help_panel=DIST)] = 1,
    node_rank: Annotated[int | None, typer.Option(help="This node's rank (optional with the c10d rendezvous).",
                                                  rich_help_panel=DIST)] = None,
    rdzv_endpoint: Annotated[str | None, typer.Option(help="HOST:PORT where the nodes meet (the first node's).",
                                                      rich_help_panel=DIST)] = None,
    fsdp: Annotated[bool, typer.Option(help="Shard a GPT-2's weights and optimizer state over the processes (FSDP), "
                                            "for bases whose optimizer state does not fit one GPU.",
                                       rich_help_panel=DIST)] = False,
    resume: Annotated[bool, typer.Option(help="Continue a stopped run exactly where it left off.")] = False,
    force: Annotated[bool, typer.Option(help="Delete an existing model of this name and start over.")] = False,
    encoding: EncodingOpt = None,
    unwrap: UnwrapOpt = None,
    **kind_flags: object,
) -> None:
    """Train a model on a corpus until a target loss, a step or time bound."""
    from corpora.authors import check_tags

    check_tags(corpus, author_tags)
    from finetune import launch

    if nproc is not None and not launch.launched():
        launch.run_torchrun(sys.argv[1:], nproc, nnodes, node_rank, rdzv_endpoint)
    from finetune.config import FinetuneConfig, parse_duration
    from finetune.run import finetune as run
    from finetune.summary import describe_summary

    sampling = chain_flags(kind_flags)  # the evaluation's chain, beside its temperature, top-k and top-p
    kind_flags["micro_batch"] = _micro_batch(kind_flags["micro_batch"])  # type: ignore[arg-type]
    given = {k: v for k, v in kind_flags.items() if v != KIND_FLAGS[k][1]}  # a kind's options take only these
    config = FinetuneConfig(
        corpus=corpus, model=model, name=name, out=out_dir, encoding=encoding, unwrap=unwrap, author_tags=author_tags,
        max_steps=max_steps, max_time=parse_duration(max_time) if max_time else None, weight_decay=weight_decay,
        target_loss=target_loss, target_on=target_on, stop_on_overfit=stop_on_overfit,  # type: ignore[arg-type]
        eval_every=eval_every, sample_every=sample_every, checkpoint_every=checkpoint_every,
        seed=seed, device=device, fsdp=fsdp, resume=resume, force=force, options=registry.get(model).make_options(given),
        ghostwriting_every=ghostwriting_every, eval_samples=eval_samples, copy_span=copy_span, max_copying=max_copying,
        stop_on_copying=stop_on_copying, temperature=temperature, top_k=top_k, top_p=top_p, sampling=sampling,
    )
    summary = run(config)
    for line in describe_summary(summary) if launch.main_process() else []:
        err.print(escape(line), highlight=False)
    if summary.stop_reason == "interrupted":
        raise typer.Exit(130)


def _micro_batch(value: str | None) -> int | None:
    """--micro-batch: a number of blocks, or auto (None: the kind measures or picks it)."""
    if value is None or value == "auto":
        return None
    if not (value.isascii() and value.isdigit()):
        raise UserError(f"--micro-batch takes a number of blocks or auto, not {value!r}")
    return int(value)


# ---- writing -----------------------------------------------------------------
@app.command()
@taking_chain_flags
def generate(
    model: Annotated[str, typer.Argument(help="Model name or directory, or a GPT-2 base such as gpt2; A+B blends "
                                              "models (docs/blend.md).")],
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="Text to continue.")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from a file.")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 1,
    weights: Annotated[str | None, typer.Option(
        help="A blend's weights, one per model, summing to 1: A+B --weights 0.7,0.3 (default: equal).")] = None,
    prompt_guidance: Annotated[float | None, typer.Option(
        help="Classifier-free guidance towards the prompt: the prompt against no prompt at this scale (1 is off; 1.5 "
             "makes the model follow its prompt more, Sanchez et al. 2023).")] = None,
    author: Annotated[str | None, typer.Option(
        help="Write as this author, with a model trained on several with --author-tags (docs/blend.md).")] = None,
    guidance: Annotated[float | None, typer.Option(
        help="With --author: classifier-free guidance towards the author's tag at this scale (1: the tag alone; more "
             "steers harder).")] = None,
    length: Annotated[int | None, typer.Option("--length", "-l", help="Characters to write per sample (default 500).")] = None,
    tokens: Annotated[int | None, typer.Option("--tokens", help="Tokens to write per sample (char models: characters).")] = None,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Lower is safer, higher wilder; 0 is greedy.")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample only from the k likeliest next tokens.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Sample from the likeliest tokens holding this probability.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a repeatable sample.", min=0, max=MAX_SEED)] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop before this text (repeatable).")] = None,
    stop_at: Annotated[str | None, typer.Option(
        help="End at the end of the first sentence, line or paragraph (the length still bounds it).")] = None,
    probs: Annotated[int | None, typer.Option(
        "--probs", help="After each sample, a table of its tokens coloured by probability, with this many alternatives.",
        rich_help_panel=CHAIN)] = None,
    echo: Annotated[bool, typer.Option(help="Print the prompt before its continuation (--no-echo: only what the model "
                                            "writes).")] = True,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
    backend: BackendOpt = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not keep the samples in the sample store.")] = False,
    min_span: MinSpanOpt = DEFAULT_MIN_SPAN,
    **flags: object,
) -> None:
    """Write continuations of a prompt (or unconditional samples), streamed as they come; each is stored, and one
    that copies its model's corpus is flagged."""
    from ..generation import load_model
    from ..samples.recording import copied_span, record
    from ..samples.views import copy_warning
    from ..terminal import probability_table, stream_to_stdout

    settings = chain_flags(flags)
    prompt = _read_text_option(prompt, prompt_file, "prompt")
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    text_model = load_model(model, device, quantize, backend, weights)
    prompt = prompt or ""
    for i in range(n):
        if n > 1:
            err.rule(f"sample {i + 1}/{n}")
        sample_seed = None if seed is None else seed + i
        stream = text_model.stream(prompt, max_new_chars=length, max_new_tokens=tokens, temperature=temperature,
                                   top_k=top_k, top_p=top_p, seed=sample_seed, stop=stop, stop_at=stop_at,
                                   alternatives=probs, author=author, guidance=guidance,
                                   prompt_guidance=prompt_guidance, **settings)
        # a sample stopped by Ctrl-C is stored at once, as cancelled
        result, stopped = stream_to_stdout(stream, (lambda: sys.stdout.write(prompt)) if echo else None)
        sample_id = None if no_log else record(result, "cli")
        warning = copy_warning(copied_span(result, sample_id), result.text, min_span)
        if warning:
            err.print(Text.assemble(("warning: ", "yellow"), f"#{sample_id} " if sample_id else "", warning,
                                    f" (assistant samples check {sample_id})" if sample_id else ""), highlight=False)
        if probs is not None:
            err.print(probability_table(result.tokens))
        if stopped:
            err.print("[dim](stopped)[/dim]")
            raise typer.Exit(130)


def _read_text_option(text: str | None, text_file: Path | None, what: str) -> str | None:
    if text is not None and text_file is not None:
        raise UserError(f"give --{what} or --{what}-file, not both")
    if text_file is None:
        return text
    try:
        return text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what} file {text_file}: {e}") from None


@app.command()
def cells(
    model: Annotated[str, typer.Argument(help="A char model's name or directory.")],
    text: Annotated[str | None, typer.Option(help="Text to read (default: a passage of the model's validation text "
                                                  "with quotations in it, else a sample the model writes).")] = None,
    text_file: Annotated[Path | None, typer.Option(help="Read the text from a file.")] = None,
    top: Annotated[int, typer.Option(help="How many cells to show.")] = 4,
    out_file: Annotated[Path, out_option("The HTML page to write.")] = Path("cells.html"),
    seed: Annotated[int, typer.Option(help="Seed for the default sample.", min=0, max=MAX_SEED)] = 0,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """Picture what the LSTM's cells track as an HTML page: one cell at a time, the next-character guesses, the cells
    ranked by feature (quotes, brackets, line position...), gate saturation."""
    from contract import modeldir

    from ..generation import load_model, resolve

    source = _read_text_option(text, text_file, "text")
    path, _ = resolve(model)  # a kind without cell pictures (a GPT-2 base too) is refused before anything loads
    view = registry.get(modeldir.read(path).kind if path else "gpt2").view("cells", model)
    char_model = load_model(model, device, quantize)
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    if not source:
        source = view.validation_passage(char_model.card) or char_model.generate("", max_new_chars=800, temperature=0.8,
                                                                                  seed=seed)
    trace = view.trace(char_model.decoder, source)
    chosen = view.pick_cells(trace.states, trace.text, top)
    ranking = view.rank(trace.states, trace.text)
    try:
        out_file.write_text(view.render_html(trace, chosen, ranking, f"Cells of {char_model.name}"), encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out_file}: {e.strerror}") from None
    for cell in chosen:
        out.print(cell.label, highlight=False)
    for feature, ranked in ranking.items():
        out.print(f"{feature}: " + ", ".join(f"layer {r.layer + 1} cell {r.index} ({r.corr:+.2f})" for r in ranked),
                  highlight=False)
    out.print(f"wrote {out_file}")


register(app)  # samples, memorization, compare, repl
register_models(app)  # models, models rm, models rename
register_lsp(app)  # the editor server
register_serve(app)  # the HTTP API for writers' tools
register_report(app)  # which checkpoint ghostwrites
register_views(app)  # eval, plot, evolution
register_export(app)  # a GPT-2 as a GGUF file


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)


def main() -> None:
    """Run the app; a UserError, or a command line Typer cannot read (an unknown flag, a value of the wrong type), is
    one `error:` line and exit status 2, like every other mistake a user can fix."""
    warnings.showwarning = _show_warning
    try:
        status = app(standalone_mode=False)
    except UserError as e:
        _error(str(e))
    except NoArgsIsHelpError as e:  # the help, as Typer prints it
        typer.echo(e.ctx.get_help())
        sys.exit(2)
    except UsageError as e:
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        _error(e.format_message() + where)
    except ClickException as e:
        _error(e.format_message())
    except typer.Abort:  # Ctrl-C or end of input at one of Typer's own prompts
        err.print("Aborted.")
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _error(message: str) -> NoReturn:
    """The error line; under torchrun rank 0's only, since every rank meets the same mistake."""
    from finetune.launch import main_process  # standard library only

    if main_process():
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)
