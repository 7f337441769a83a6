"""`assistant eval`, `plot` and `evolution`: looking inside trained models, from the files in their directories."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from corpora import UserError

from .options import DeviceOpt, QuantizeOpt, out_option

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
    app.command()(plot)
    app.command()(evolution)


def evaluate(
    model: Annotated[str, typer.Argument(help="A model's name or directory (NAME@best-val: the best-validation weights).")],
    corpus: Annotated[str | None, typer.Option(help="Measure on this corpus (a name or a file) instead of the model's "
                                                    "own split.")] = None,
    split: Annotated[str, typer.Option(help="The model's own split: val or test (which training never read).")] = "val",
    encoding: Annotated[str | None, typer.Option(help="Read --corpus's text files in this encoding.")] = None,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """The loss in nats and bits per character and the perplexity, beside a Kneser-Ney n-gram model of the same text."""
    from ..evaluation import evaluate as run
    from ..evaluation import lines
    from ..generation import load_model

    text_model = load_model(model, device, quantize)
    for line in lines(run(text_model, split, corpus, encoding)):
        out.print(escape(line), highlight=False)


def plot(
    models: Annotated[list[str], typer.Argument(help="Models (names or directories); several share one chart.")],
    out_file: Annotated[Path | None, out_option("The picture: .png or .svg (default: loss.png in the first model's "
                                                "directory).")] = None,
) -> None:
    """Training and validation loss against steps and training time: the target, the best checkpoint, where
    memorizing began."""
    from contract import modeldir
    from finetune.checkpoint import read_jsonl
    from finetune.plot import Curves, check_output, loss_picture

    from ..report import model_card, picture_path

    cards = [model_card(name) for name in models]
    out_file = picture_path(out_file, cards[0], "loss.png")
    check_output(out_file)
    runs = []
    for card in cards:
        rows = read_jsonl(card.file(modeldir.HISTORY))
        if not rows:
            raise UserError(f"{card.name} has no training history yet")
        runs.append(Curves.of(card, rows))
    loss_picture(runs, out_file)
    out.print(f"wrote {out_file}", highlight=False)


def evolution(
    model: Annotated[str, typer.Argument(help="A model's name or directory.")],
    html: Annotated[Path | None, out_option("Also write the samples as an HTML page.")] = None,
) -> None:
    """The samples kept during training, step by step: how the model learned to write."""
    from ..evolution import heading, render_html, samples

    card, rows = samples(model)
    if not rows:
        raise UserError(f"{card.name} kept no samples during training (see --sample-every)")
    for row in rows:
        out.rule(heading(row), align="left")
        out.print(escape(row["text"]), highlight=False)
    if html is not None:
        try:
            html.write_text(render_html(card, rows), encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write {html}: {e.strerror}") from None
        out.print(f"wrote {html}")
