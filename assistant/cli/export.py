"""`assistant export`: a GPT-2 model as a GGUF file for Ollama, LM Studio, KoboldCpp and llama.cpp."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

err = Console(stderr=True)
# kinds.gpt2.export.QUANTS, named here so that --help imports neither torch nor gguf (a test checks they agree)
QUANT_HELP = "f32, f16, bf16, q8_0 (the default), q5_1, q5_0, q4_1 or q4_0"


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    model: Annotated[str, typer.Argument(help="A GPT-2 model's name or directory (NAME@best-val, NAME@last: those "
                                              "checkpoints; by default the ghostwriting one).")],
    fmt: Annotated[str, typer.Option("--format", help="The file format: gguf (llama.cpp's, which Ollama, LM Studio "
                                                      "and KoboldCpp load).")] = "gguf",
    quant: Annotated[str | None, typer.Option(help=f"How the weights are stored: {QUANT_HELP}.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="The file to write (default: NAME.gguf here); "
                                                                      "its Modelfile and README go beside it.")] = None,
) -> None:
    """Write a GPT-2 model as one GGUF file (LoRA adapters merged), with an Ollama Modelfile and the commands for
    LM Studio, KoboldCpp and llama.cpp beside it."""
    from ..engines import ollama_name
    from ..export import export as run

    with Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TextColumn("tensors"), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("", total=None)
        done = run(model, fmt, quant, out_file, lambda n, total: bar.update(task, completed=n, total=total))
    at = f"@{done.checkpoint}, " if done.checkpoint else ""
    err.print(Text(f"wrote {done.path} ({done.model}, {at}{done.quant}): {done.bytes / 1e6:,.1f} MB in "
                   f"{done.seconds:.1f} s"), soft_wrap=True)
    err.print(Text(f"beside it: {done.modelfile.name} (Ollama) and {done.readme.name} (LM Studio, KoboldCpp, "
                   "llama.cpp)"), soft_wrap=True)
    err.print(Text(f"try: ollama create {ollama_name(done.model)} -f {done.modelfile}"), soft_wrap=True)
