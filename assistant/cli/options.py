"""Command-line options that several commands share, declared once so their help reads the same everywhere."""

from typing import Annotated

import typer

QuantizeOpt = Annotated[str, typer.Option(
    help="GPT-2 on a CPU: auto (int8 where its loss check allows), int8 (or an error saying why not), none.")]
BackendOpt = Annotated[str | None, typer.Option(
    help="GPT-2 on a CPU: torch, or llama.cpp (its GGUF export, written once; needs pip install "
         "'ghostwriter[llamacpp]'). Default: $ASSISTANT_BACKEND, else torch.")]
