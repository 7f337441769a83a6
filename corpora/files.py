"""Writing files so that a reader (or a kill -9) never sees half of one: the one atomic-write helper.

Every file and folder the program writes for keeps (a downloaded book, a token
cache, a corpus index, weights, a checkpoint, config.json) is written under a
temporary name beside its final one and renamed into place. It lives here, in
the package every other one depends on, so that corpora, training and the
sample store share it.
"""

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path


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


_HOST = socket.gethostname().replace("/", "_")  # in temporaries' names: which machine's process writes one
FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; safetensors and save_pretrained may write 0600
DIR_MODE = 0o777 & ~_umask()


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write a file or a folder at; renamed onto `path` when the block succeeds.

    The temporary is removed when the block fails. A folder replaces an
    existing folder whole (the old one is removed first, so there is a moment
    with neither: readers that find none fall back, as the model loader does).
    What is renamed into place gets the user's usual permissions. Temporaries
    that a killed writer left beside `path` (a kill -9 in the middle of a 1.5 GB
    GPT-2 checkpoint leaves 1.5 GB) are removed at the next write of `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")
    _remove(tmp)
    _remove_orphans(path)
    try:
        yield tmp
        if tmp.is_dir():
            os.chmod(tmp, DIR_MODE)
            for file in tmp.rglob("*"):
                os.chmod(file, DIR_MODE if file.is_dir() else FILE_MODE)
            if path.is_dir():
                shutil.rmtree(path)
        else:
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove_orphans(path: Path) -> None:
    """Remove the temporaries of `path` that a process of this machine left and is gone: a live one may be another
    writer's, and on a shared disk another machine's process ids mean nothing here."""
    prefix, suffix = f".{path.name}.{_HOST}.", ".tmp"
    with contextlib.suppress(OSError):
        for tmp in path.parent.iterdir():
            pid = tmp.name[len(prefix) : -len(suffix)]
            if tmp.name.startswith(prefix) and tmp.name.endswith(suffix) and pid.isascii() and pid.isdigit() \
                    and not _alive(int(pid)):
                _remove(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no process id at all
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
