"""Command-line options that several commands share, declared once so a flag means one thing everywhere.

The conventions (tests/test_cli.py walks the app and checks them): a command
that writes a file takes it as `-o/--out`; one that reads a model's weights
takes `--device` and `--quantize`; one that prints a listing takes `--json`.
"""

from typing import Annotated

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda or cuda:N.")]
QuantizeOpt = Annotated[str, typer.Option(
    "--quantize", help="GPT-2 on a CPU: auto (int8 where its loss check allows), int8 (or an error saying why not), none.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table, for scripts.")]


def eval_samples_option(panel: str | None = None) -> typer.models.OptionInfo:
    return typer.Option("--eval-samples", "-k", help="Prompted continuations per ghostwriting evaluation, and as many "
                                                     "unconditional samples (finetune's default: 32 for a char-LSTM, which "
                                                     "writes them in one batch, 16 for the others).", rich_help_panel=panel)


def copy_span_option(panel: str | None = None) -> typer.models.OptionInfo:
    return typer.Option("--copy-span", help="A sample holding this many characters of the corpus verbatim copies it.",
                        rich_help_panel=panel)


EvalSamplesOpt = Annotated[int, eval_samples_option()]
CopySpanOpt = Annotated[int, copy_span_option()]


def out_option(help: str) -> typer.models.OptionInfo:
    """`-o/--out FILE`, the one spelling of where a command writes."""
    return typer.Option("--out", "-o", help=help)

BackendOpt = Annotated[str | None, typer.Option(
    help="GPT-2 on a CPU: torch, or llama.cpp (its GGUF export, written once; needs pip install "
         "'ghostwriter[llamacpp]'). Default: $ASSISTANT_BACKEND, else torch.")]
