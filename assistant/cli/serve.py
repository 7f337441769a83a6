"""`assistant serve`: the OpenAI- and KoboldAI-compatible HTTP API for writers' tools (see assistant.api)."""

import os
from typing import Annotated

import typer

from ..api.options import Options  # torch-free: its defaults are the flags'
from .options import DeviceOpt, QuantizeOpt
from .samples import MinSpanOpt

API_KEY_VARIABLE = "ASSISTANT_API_KEY"


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    model: Annotated[str | None, typer.Option(help="The model requests get when they name none (default: the newest "
                                                   "trained model); clients may name any of `assistant models`.")] = None,
    host: Annotated[str, typer.Option(help="The address to listen on; another than 127.0.0.1 (this machine only) "
                                           "needs --api-key.")] = Options.host,
    port: Annotated[int, typer.Option(help="The port (5001 is KoboldCpp's, which story front ends try first; 0 picks "
                                           "a free one).")] = Options.port,
    api_key: Annotated[str | None, typer.Option(help=f"Clients must send `Authorization: Bearer KEY` (default: "
                                                     f"${API_KEY_VARIABLE}, else none).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(help="A web origin whose pages may call the API, besides "
                                                               "this machine's own (repeatable), e.g. "
                                                               "https://lite.koboldai.net.")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(help="A host name requests may be addressed to, besides "
                                                              "localhost and addresses (repeatable).")] = None,
    parallel: Annotated[int, typer.Option(help="Generations that take turns at once; more wait.")] = Options.slots,
    queue: Annotated[int, typer.Option(help="Requests that may wait beyond those; more are answered 503.")] = Options.queue,
    max_memory: Annotated[float, typer.Option(help="GB of model weights kept loaded; past it the least recently used "
                                                   "model is let go.")] = Options.max_memory / 1e9,
    min_span: MinSpanOpt = Options.min_span,
    device: DeviceOpt = Options.device,
    quantize: QuantizeOpt = Options.quantize,
    documents: Annotated[str | None, typer.Option(help="The writing pad's folder of Markdown and text files, e.g. your "
                                                       "manuscript's (default: documents/ in the data directory).")] = None,
) -> None:
    """Serve your models to writing tools over HTTP (an OpenAI-compatible API at /v1, a KoboldAI one at /api) and the
    writing pad, a page to write in with the model's suggestions, at /."""
    options = Options(model=model, device=device, quantize=quantize, host=host, port=port,
                      api_key=api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE) or None,
                      cors_origins=tuple(cors_origin or ()), allow_hosts=tuple(allow_host or ()), slots=parallel,
                      queue=queue, max_memory=int(max_memory * 1e9), min_span=min_span,
                      documents=documents)
    options.check()  # before torch is imported: a refused address is answered at once
    from finetune.device import pick_device

    from ..api.server import serve as run

    pick_device(device)  # a bad --device is an error now, not at every request
    run(options)
