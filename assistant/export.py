"""`assistant export`: a trained model as one GGUF file, with what each engine needs to run it beside it.

The weights are those the model writes with (the ghostwriting checkpoint, or
`NAME@best-val`, `NAME@last`; a LoRA adapter merged into its base), read
through the generation API's loader, so an export is exactly the model a
writer uses. The file holds the tokenizer, the model's name and corpus, and
its sampling settings as defaults (see assistant.engines); beside it go an
Ollama Modelfile and a page of commands for LM Studio, KoboldCpp and llama.cpp.

The file is written under a temporary name and moved into place at the end,
so an interrupted export leaves no half file where an engine would load it.
"""

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract import registry
from contract.modeldir import Card
from corpora import UserError

from . import engines

FORMATS = ("gguf",)
MAGIC = b"GGUF"


@dataclass(frozen=True)
class Exported:
    path: Path
    modelfile: Path
    readme: Path
    model: str  # the model's name
    checkpoint: str | None  # None: a base, which has none
    quant: str
    seconds: float

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


def exportable(name: str, card: Card | None) -> registry.Kind:
    """The kind of `card` (None: a GPT-2 base) where GGUF can hold it; a one-line error saying why not elsewhere."""
    kind = registry.get("gpt2" if card is None else card.kind)
    if "export" not in kind.views:
        raise UserError(f"{name} is a {kind.name} model ({kind.help}): GGUF engines (llama.cpp, Ollama, LM Studio, "
                        "KoboldCpp) run GPT-style transformers with a subword tokenizer, not character-level models; "
                        "export a gpt2 model")
    return kind


def export(name: str, fmt: str = "gguf", quant: str | None = None, out: Path | None = None,
           progress: Callable[[int, int], None] = lambda done, total: None, companions: bool = True) -> Exported:
    """Write `name` (a model name or directory, with @checkpoint, or a GPT-2 base) as GGUF at `out` (default:
    NAME.gguf here) in the `quant` file type, and (with `companions`) its Modelfile and engine page beside it."""
    from .generation import find_card, load_model

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: choose {', '.join(FORMATS)}")
    card = find_card(name)
    kind = exportable(name, card)
    writer = kind.view("export", name)
    chosen = writer.quant(quant or writer.DEFAULT_QUANT)
    short = card.name if card is not None else Path(name).name  # a base's directory or OWNER/NAME: its last part
    path = _target(out, short, None if card is None or card.checkpoint == card.at(None).checkpoint else card.checkpoint,
                   chosen.name, writer.DEFAULT_QUANT)
    started = time.perf_counter()
    model = load_model(name, "cpu", "none")  # float32 as saved: the file's own type is the only rounding
    about, values, n_ctx = describe(model.card), engines.recorded(model.card), model.decoder.n_ctx
    stem = path.name.removesuffix(".gguf")
    modelfile, readme = path.with_name(f"{stem}.Modelfile"), path.with_name(f"{stem}.README.md")
    partial = path.with_name(f".{path.name}.partial")
    try:
        gguf = writer.writer(partial, model.decoder.model, model.decoder.tokenizer, chosen, progress)
        _add_metadata(gguf, model.card, about, values)
        writer.finish(gguf)
        os.replace(partial, path)
        if companions:
            modelfile.write_text(engines.modelfile(path.name, short, about, values, n_ctx), encoding="utf-8")
            readme.write_text(engines.instructions(path.name, short, about, values, n_ctx), encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {e.filename or path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Exported(path, modelfile, readme, short, None if card is None else card.checkpoint, chosen.name,
                    time.perf_counter() - started)


def _target(out: Path | None, model: str, checkpoint: str | None, quant: str, default_quant: str) -> Path:
    """The file to write: `out`, or NAME[-CHECKPOINT][-QUANT].gguf here; a file that is there must be a GGUF one
    (an earlier export), never something else of the writer's."""
    path = out or Path("-".join([model, *filter(None, (checkpoint, None if quant == default_quant else quant))])
                       + ".gguf")
    if path.suffix != ".gguf":
        raise UserError(f"-o {path}: a GGUF file's name ends in .gguf (engines look for it)")
    if path.is_dir() or not path.parent.is_dir():
        raise UserError(f"-o {path}: " + ("that is a directory" if path.is_dir() else f"no directory {path.parent}"))
    if path.exists():
        with path.open("rb") as f:
            if f.read(4) != MAGIC:
                raise UserError(f"{path} exists and is not a GGUF file: choose another name with -o")
    return path


def describe(card: Card) -> str:
    """One line on what the model is, for the file's description and the pages beside it."""
    if card.corpus is None:
        return f"GPT-2 {Path(card.name).name}, as published"
    how = ("GPT-2 with a LoRA adapter (merged) trained" if card.extra.get("lora") else
           "GPT-2 trained from scratch" if card.extra.get("init") == "scratch" else "GPT-2 retrained")
    return f"{how} by ghostwriter on the corpus {card.corpus.name}, its {card.checkpoint} checkpoint"


def _add_metadata(gguf, card: Card, about: str, values: dict[str, float]) -> None:
    """The model's name and corpus in the general.* keys engines show, ghostwriter's record under ghostwriter.*,
    and the sampling settings as the file's defaults."""
    gguf.add_name(Path(card.name).name)
    gguf.add_description(about)
    gguf.add_tags(["ghostwriter", "text-generation"])
    if card.extra.get("init") == "pretrained":  # retrained from a base's weights
        gguf.add_base_model_count(1)
        gguf.add_base_model_name(0, Path(card.extra.get("base") or "gpt2").name)
    if card.corpus is not None:  # a model ghostwriter trained (a base exported as it is has none)
        gguf.add_dataset_count(1)
        gguf.add_dataset_name(0, card.corpus.name)
        gguf.add_string("ghostwriter.corpus", card.corpus.name)
        gguf.add_string("ghostwriter.corpus_checksum", card.corpus.checksum)
        gguf.add_string("ghostwriter.checkpoint", card.checkpoint)
        if (best := card.result.get("best_val")) is not None:
            gguf.add_float32("ghostwriter.best_val_loss", best)
    for setting in engines.SETTINGS:
        value = values[setting.name]
        (gguf.add_int32 if setting.integer else gguf.add_float32)(setting.gguf_key, value)


def engine_file(card: Card, quant: str) -> tuple[Path, str]:
    """The GGUF file `--backend llama.cpp` writes with: the card's checkpoint exported once beside its weights, and
    again whenever they change (the record beside it names the weights it was written from, see
    kinds.gpt2.quantize.weights_key). Returns the file and its type."""
    import json
    import sys

    from corpora.files import write_text
    from kinds.gpt2.quantize import weights_key

    folder = card.weights("")
    path, record = folder / f"llama.cpp-{quant}.gguf", folder / f"llama.cpp-{quant}.json"
    key = weights_key(folder)
    with contextlib.suppress(OSError, ValueError):
        if path.is_file() and json.loads(record.read_text())["weights"] == key:
            return path, quant
    print(f"writing {card.name}@{card.checkpoint} as a llama.cpp file ({quant}; once for these weights)",
          file=sys.stderr, flush=True)
    export(f"{card.path}@{card.checkpoint}", quant=quant, out=path, companions=False)
    write_text(record, json.dumps({"weights": key}) + "\n")
    return path, quant
