"""Files of a model directory, written so that a kill -9 never corrupts them.

Every file is written to a temporary name and renamed into place. The
resumable state is one file, `last/checkpoint.safetensors`: tensors (weights,
optimizer moments, RNG states, carried LSTM state) plus the JSON state in the
safetensors metadata, so weights and data position can never disagree.
Nothing is pickled.
"""

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kinds.modeldir import CHECKPOINT, CONFIG, HISTORY, LAST, LOSS_CURVE, SAMPLES  # noqa: F401 (for the trainer)


def _umask() -> int:
    try:  # Linux says it without changing it: setting it, even for an instant, would touch every thread's files
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; safetensors writes its files 0600


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished file into place, readable like the user's other files."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(plain, str(tmp), metadata=metadata)
    publish(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def append_jsonl(path: Path, rows: list[dict]) -> None:
    if rows:
        with path.open("a") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    # split on "\n" only: str.splitlines() would also break rows at U+2028 and friends inside samples
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def truncate_jsonl(path: Path, lines: int) -> None:
    """Keep the first `lines` rows: what a resumed run will write again goes."""
    rows = path.read_text().split("\n")[:lines] if path.exists() else []
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


def save_checkpoint(directory: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    save_tensors(tensors, directory / LAST / CHECKPOINT, metadata={"state": json.dumps(state)})


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    path = directory / LAST / CHECKPOINT
    with safe_open(str(path), framework="pt") as f:
        state = json.loads(f.metadata()["state"])
    return load_file(str(path), device="cpu"), state
