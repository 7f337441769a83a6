"""The `assistant` command: thin Typer front ends over corpora, finetune, generation and the sample store.

`app.py` holds the application, the corpus, training and writing commands and
`main`; `samples.py` the sample-store commands and the REPL's; `lsp.py` the
editor server's. Heavy imports (torch and all that pulls it in) happen inside
the commands, so `assistant --help` answers at once.
"""

from .app import app, main

__all__ = ["app", "main"]
