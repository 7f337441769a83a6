"""`assistant models`: the trained models, and `models rm` and `models rename`.

The listing never cuts a model's name, since the name is what the writer
types next: on a narrow terminal the other columns wrap, then the least
needed are left out (and the listing says which). The logic of removing and
renaming, with the sample store kept right, is `assistant.models`'.
"""

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from .options import (
    JsonOpt,
    chain_flags,
    taking_chain_flags,
)

models_app = typer.Typer(help="The models you have trained: list them (the default), rm, rename, set.")
out = Console()
err = Console(stderr=True)

# the listing's columns after the name, the first to be left out on a narrow terminal last
COLUMNS = ("kind", "corpus", "status", "best val", "steps", "size", "created")
NameArg = Annotated[str, typer.Argument(help="The model's name, as `assistant models` lists it.")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context,
           as_json: JsonOpt = False) -> None:
    """The trained models in the data directory (rm and rename act on them)."""
    if ctx.invoked_subcommand is not None:
        return
    from contract import modeldir
    from corpora.home import models_dir

    from ..samples.views import local_time

    rows = [{
        "name": card.name if card.path is None else card.path.name, "kind": card.kind,
        "corpus": card.corpus.name if card.corpus else None, "size": card.size, "parameters": card.parameters,
        "best_val": card.result.get("best_val"), "steps": card.result.get("steps"), "status": card.status,
        "created": card.created,
    } for card in modeldir.cards()]
    broken = modeldir.damaged()
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        for path, why in broken:
            sys.stdout.write(json.dumps({"name": path.name, "damaged": why}) + "\n")
        return
    for path, why in broken:
        err.print(f"{escape(path.name)}: damaged ({escape(why)}); remove it with: assistant models rm {escape(path.name)}",
                  highlight=False)
    if not rows:
        if not broken:
            out.print(f"No models yet in {models_dir()}. Train one: assistant finetune pkd --model char")
        return
    cells = [{
        "kind": r["kind"], "corpus": r["corpus"] or "-", "status": r["status"] or "-", "steps": str(r["steps"]),
        "best val": f"{r['best_val']:.3f}" if r["best_val"] is not None else "-",
        "size": f"{r['size']} ({r['parameters'] / 1e6:.1f}M)" if r["parameters"] else str(r["size"]),
        "created": local_time(r["created"]) if r["created"] else "-",
    } for r in rows]
    _print_fitted([r["name"] for r in rows], cells)


def _print_fitted(names: list[str], cells: list[dict[str, Any]]) -> None:
    """The table at the terminal's width with every name and value whole (assistant.tables): columns left out from
    the end of COLUMNS until it fits."""
    from ..tables import Column, fitted

    figures = ("best val", "steps")
    columns = [Column("name", wrap=False), *(Column(c, wrap=c not in figures, right=c in figures) for c in COLUMNS)]
    rows = [[Text(name), *(row[c] for c in COLUMNS)] for name, row in zip(names, cells, strict=True)]
    table, hidden = fitted(out, columns, rows, optional=COLUMNS[::-1])
    if table is not None:
        out.print(table)
    else:  # not even the names fit in a table's borders: one a line, whole
        for name in names:
            out.print(Text(name), soft_wrap=True)
    if hidden:
        err.print(f"[dim]({', '.join(hidden)} left out: the terminal is too narrow; assistant models --json has all)[/dim]")


@models_app.command("rm")
def models_rm(name: NameArg,
              yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting.")] = False) -> None:
    """Delete a model (after asking). The samples it wrote stay in the sample store, under its name."""
    from ..models import find, remove
    from ..samples.store import Store

    with Store() as store:
        model = find(name, store)
        kept = (f"its {model.samples} sample(s) stay in the sample store (assistant samples list --model {name})"
                if model.samples else "it wrote no samples")
        if not yes and not _confirm(f"Delete model {model.describe()}? {kept[0].upper()}{kept[1:]}."):
            err.print(f"kept {name} (nothing deleted; --yes deletes without asking)")
            raise typer.Exit(1)
        remove(model, store)
    err.print(Text(f"deleted model {name}; {kept}"), soft_wrap=True)


def _confirm(question: str) -> bool:
    """Yes only when the writer says so; no answer (Ctrl-D, no terminal) is no."""
    err.print(Text(question), soft_wrap=True)
    try:
        return typer.confirm("Delete it?", default=False, err=True)
    except typer.Abort:
        return False


@models_app.command("rename")
def models_rename(old: NameArg, new: Annotated[str, typer.Argument(help="Its new name.")]) -> None:
    """Rename a model; the samples it wrote follow it (they list, show and filter under the new name)."""
    from ..models import find, rename
    from ..samples.store import Store

    with Store() as store:
        model = find(old, store)
        rename(model, new, store)
    moved = f"; its {model.samples} sample(s) now list under {new}" if model.samples else ""
    err.print(Text(f"renamed model {old} to {new}{moved}"), soft_wrap=True)


@models_app.command("set")
@taking_chain_flags
def models_set(
    name: NameArg,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the model's settings first.")] = False,
    **flags: object,
) -> None:
    """Keep sampler-chain settings with a model as its defaults: every front end writes with them unless told
    otherwise (`models set NAME --min-p 0.05 --ban suddenly`; `--clear` alone forgets them)."""
    from contract import modeldir
    from contract.sampling import Sampling

    path = modeldir.find(name)
    if path is None:
        raise modeldir.no_model(name)
    card = modeldir.read(path)
    given = chain_flags(flags)
    kept = {} if clear else dict(card.extra.get("sampling", {}))
    kept.update(given)
    Sampling(**{k: tuple(v) if isinstance(v, list) else v for k, v in kept.items()}).check()
    card.extra["sampling"] = kept
    modeldir.write(card)
    shown = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in kept.items()) or "none (the chain's own defaults)"
    err.print(Text(f"{card.name} writes with: {shown}"), soft_wrap=True)
