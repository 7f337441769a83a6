"""The file formats of a run: tensors, the resumable checkpoint, and the JSON-lines logs.

The resumable state is one file, `last/checkpoint.safetensors`: tensors
(weights, optimizer moments, RNG states, carried LSTM state) plus the JSON
state in the safetensors metadata, so weights and data position can never
disagree. Nothing is pickled. Files are written through `corpora.files`, so a
kill -9 never leaves half of one.
"""

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from corpora import UserError
from corpora.files import replacing, write_text


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Tensors as safetensors (on the CPU, contiguous, as the format needs), replacing `path` whole."""
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with replacing(path) as tmp:
        save_file(plain, str(tmp), metadata=metadata)


def append_jsonl(path: Path, rows: list[dict]) -> None:
    if rows:
        with path.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:  # split on "\n" only: str.splitlines() would also break rows at U+2028 and friends inside samples
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    except ValueError as e:  # not UTF-8, or a row that is not JSON
        raise UserError(f"{path} is damaged ({e})") from None


def truncate_jsonl(path: Path, lines: int) -> None:
    """Keep the first `lines` rows: what a resumed run will write again goes."""
    rows = path.read_text(encoding="utf-8").split("\n")[:lines] if path.exists() else []
    write_text(path, "".join(row + "\n" for row in rows))


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer state_dict as named tensors (`optim.PARAM.KEY`) plus JSON for the rest."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {"groups": state_dict["param_groups"], "scalars": {}}
    for pid, pstate in state_dict["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                meta["scalars"][f"{pid}.{key}"] = value
    return tensors, meta


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The inverse of flatten_optimizer: a state_dict that Optimizer.load_state_dict takes."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["groups"]}


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """The resumable checkpoint: tensors, and `state` as JSON in the file's metadata."""
    save_tensors(tensors, path, metadata={"state": json.dumps(state)})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """What save_checkpoint wrote: (tensors on the CPU, state); a file that is not one is a one-line error."""
    with _damaged(path):
        return load_file(str(path), device="cpu"), checkpoint_state(path)


def checkpoint_state(path: Path) -> dict:
    """The JSON state of a checkpoint, read from its header alone: a resume checks it before any work (safetensors
    also checks there that the file is whole)."""
    with _damaged(path), safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {})["state"])


@contextlib.contextmanager
def _damaged(path: Path) -> Iterator[None]:
    """A checkpoint that cannot be read (truncated, a pickle, not ours) as a one-line error."""
    try:
        yield
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"the checkpoint {path} is damaged ({reason}): it cannot be resumed; start over with --force") from None
