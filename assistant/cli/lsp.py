"""`assistant lsp`: the command that starts the language server (its plugins in plugins/ run it)."""

from typing import Annotated

import typer

from .options import DeviceOpt, QuantizeOpt


def register(app: typer.Typer) -> None:
    app.command()(lsp)


def lsp(
    model: Annotated[str | None, typer.Option(help="Model name or directory (default: the newest trained model).")] = None,
    device: DeviceOpt = "auto",
    quantize: QuantizeOpt = "auto",
) -> None:
    """Serve continuations to editors over the Language Server Protocol on stdin/stdout."""
    from finetune.device import pick_device

    from ..lsp.server import serve

    pick_device(device)  # a bad --device is an error now, not at every request

    serve(model, device, quantize)
