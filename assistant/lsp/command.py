"""`assistant lsp`: the command that starts the language server (its plugins in plugins/ run it)."""

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(lsp)


def lsp(
    model: Annotated[str | None, typer.Option(help="Model name or directory (default: the newest trained model).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Serve continuations to editors over the Language Server Protocol on stdin/stdout."""
    from .server import serve

    serve(model, device)
