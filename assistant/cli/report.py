"""`assistant report`: which checkpoint ghostwrites, as a table per model and one picture of them all."""

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .options import CopySpanOpt, DeviceOpt, EvalSamplesOpt, QuantizeOpt, chain_flags, out_option, taking_chain_flags

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command()(report)


@taking_chain_flags
def report(
    models: Annotated[list[str], typer.Argument(help="Models (names or directories); several share one picture.")],
    out_file: Annotated[Path | None, out_option("The picture of the curves (.png or .svg; default: report.png in the first "
                                                "model's directory).")] = None,
    sweep: Annotated[bool, typer.Option(help="Copying, style and prompt-following over temperature and top-p, the copy "
                                             "guard (at --max-copy, or --copy-span - 1) and DRY, for the chosen "
                                             "checkpoint, as a table and heat maps (the picture's name with -sweep); "
                                             "the chain's flags below hold for every setting of it.")] = False,
    blend: Annotated[bool, typer.Option(help="Blend the two models given at five weights, from all the first to all the "
                                             "second: the share attributed to each author, copying against both "
                                             "corpora, prompt-following (docs/blend.md).")] = False,
    samples: EvalSamplesOpt = 16,
    min_span: CopySpanOpt = 50,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
    **chain: object,
) -> None:
    """Per checkpoint: losses, copying, style, prompt-following and diversity; the best-val and ghostwriting ones marked."""
    from contract.sampling import Sampling
    from finetune.ghostwriting.evaluate import GhostwritingOptions
    from finetune.plot import check_output, report_picture

    from ..report import curves, history, picture_path, table_rows

    options = GhostwritingOptions(samples=samples, min_span=min_span,
                                  sampling=Sampling(temperature=0.8, **chain_flags(chain)))
    options.check()  # a bad flag is told before the report, not after it
    if blend:
        return _blend(models, out_file or Path("blend.png"), samples, device, quantize)
    histories = [history(name) for name in models]
    out_file = picture_path(out_file, histories[0].card, "report.png")
    check_output(out_file)
    for h in histories:
        table = Table("step", "train", "val", "copy", "span", "style", "prompt", "d-2", "d-3", "", box=box.SIMPLE,
                      title=f"{h.name} ({h.card.kind})", title_justify="left", pad_edge=False)
        for row in table_rows(h):
            table.add_row(*row)
        out.print(table)
        out.print(f"ghostwriting checkpoint (gw, what {h.name} writes with by default): step {h.ghostwriting_step}; "
                  f"best validation loss (val, {h.name}@best-val): step {h.best_step}", highlight=False)
        if reason := h.card.result.get("ghostwriting_reason"):
            out.print(f"why: {reason}", highlight=False)
        accuracy = (h.card.extra.get("ghostwriting") or {}).get("style_accuracy")
        if accuracy:
            out.print(f"style: the classifier recognises {accuracy['author']:.0%} of held-out passages of the author and "
                      f"{accuracy['reference']:.0%} of other writing as not the author's", highlight=False)
    out.print("copy: share of samples copying --copy-span characters of the corpus or more; span: mean longest copied span; "
              "style: share of samples the classifier attributes to the author; prompt: share of continuations about their "
              "own prompt (chance 1/K); in brackets each share's 95% interval; d-2, d-3: distinct word 2- and 3-grams. "
              "The ghostwriting checkpoint is the best-val one unless best-val copies credibly over the limit or writes "
              "credibly less like the author or less to the prompt than another (their intervals do not overlap)",
              highlight=False)
    report_picture([curves(h) for h in histories], out_file)
    out.print(f"wrote {out_file}", highlight=False)
    if sweep:
        _sweep(models[0], options, out_file.with_name(f"{out_file.stem}-sweep{out_file.suffix}"), device, quantize)


def _sweep(name: str, options, picture: Path, device: str, quantize: str) -> None:
    from finetune.ghostwriting.choice import share_text
    from finetune.plot import sweep_picture

    from ..generation import load_model
    from ..report import sweep as run

    model = load_model(name, device, quantize)
    results = run(model, options)
    table = Table("temperature", "setting", "copying", "span", "style", "prompts",
                  title=f"{model.card.label}: sampling settings", title_justify="left")
    for row in results:
        span = "-" if row.figures["copied_span"] is None else f"{row.figures['copied_span']:.0f}"
        table.add_row(f"{row.temperature:g}", row.setting, share_text(row.figures, "copying"), span,
                      share_text(row.figures, "style"), share_text(row.figures, "prompt_following"))
    out.print(table)
    out.print(f"copying: share of samples holding {options.min_span} characters of the corpus or more; setting: what "
              "changes besides the temperature (as set: the chain's flags given, which hold for every row); in "
              "brackets each share's 95% interval", highlight=False)
    sweep_picture(model.card.label, [(row.temperature, row.setting, row.figures) for row in results], picture)
    out.print(f"wrote {picture}", highlight=False)


def _blend(models: list[str], picture: Path, samples: int, device: str, quantize: str) -> None:
    """`report --blend A B`: the sweep of assistant.blendsweep, as a table and a picture."""
    import warnings

    from corpora import UserError
    from finetune.plot import check_output

    from ..blending import BlendWarning
    from ..blendsweep import picture as draw
    from ..blendsweep import sweep
    from ..generation import load_model

    if len(models) != 2:
        raise UserError(f"--blend sweeps the weight between two models, got {len(models)}")
    check_output(picture)
    a, b = (load_model(name, device, quantize) for name in models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        rows, authors = sweep(a, b, samples=samples)
    names = list(rows[0].shares)
    table = Table("weights", *(f"{n or 'neither'}" for n in names), "copying", "prompt",
                  title=f"{a.name} + {b.name}: share of samples attributed to each author", title_justify="left")
    for r in rows:
        table.add_row(r.label, *(f"{r.shares[n]:.0%}" for n in names), f"{r.copying:.0%}",
                      "-" if r.prompt_following is None else f"{r.prompt_following:.0%}")
    out.print(table)
    accuracy = ", ".join(f"{name} {acc['overall']:.0%}" for name, acc in authors.accuracy.items())
    out.print(f"weights: {a.name}'s/{b.name}'s; copying: share of samples holding 50 characters or more of either corpus; "
              f"prompt: share of continuations about their own prompt; the classifiers' held-out accuracy: {accuracy}",
              highlight=False)
    draw(rows, a.name, b.name, picture)
    out.print(f"wrote {picture}", highlight=False)
