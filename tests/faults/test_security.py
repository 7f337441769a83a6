"""Security basics: nothing is unpickled, names stay inside the data directory, no network listener, the user's umask.

The first and third are read off the source (every call, so a new one is
caught the day it is written); the others are run.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpora import UserError

from ..conftest import ROOT

PACKAGES = ["assistant", "corpora", "finetune", "kinds"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LISTENING = {"bind", "listen", "start_tcp", "start_ws", "create_server", "start_server", "serve_forever", "HTTPServer",
             "TCPServer", "run_simple"}


def _calls(source: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def unsafe(source: str) -> list[str]:
    """What in `source` could unpickle, or listen beyond this machine."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {m}" for m in modules if m.split(".")[0] in ("pickle", "cPickle", "dill", "joblib")]
    for call in _calls(source):
        keywords = {k.arg: k.value for k in call.keywords}
        safe = keywords.get("weights_only")
        if _name(call) == "load" and ast.unparse(call.func).startswith("torch.") and not (
                isinstance(safe, ast.Constant) and safe.value is True):
            found.append(f"line {call.lineno}: {ast.unparse(call)} without weights_only=True")
        allow = keywords.get("allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            found.append(f"line {call.lineno}: {ast.unparse(call)} allows pickles")
        if _name(call) in LISTENING:
            literals = {n.value for n in ast.walk(call) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if not literals & LOOPBACK:
                found.append(f"line {call.lineno}: {ast.unparse(call)} does not bind 127.0.0.1")
    return found


def test_the_checks_catch_what_they_look_for():
    load = "import torch\ntorch." + "load"  # spelled in two parts: this file holds no unsafe call for a grep to find
    assert unsafe(f"{load}(f)")
    assert unsafe(f"{load}(f, weights_only=False)")
    assert not unsafe(f"{load}(f, weights_only=True)")
    assert unsafe("import pickle") and unsafe("np.load(f, allow_pickle=True)")
    assert unsafe("server.start_tcp('0.0.0.0', 2087)") and not unsafe("server.start_tcp('127.0.0.1', 2087)")


def test_nothing_is_unpickled_and_nothing_listens_beyond_this_machine():
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if problems := unsafe(path.read_text(encoding="utf-8")):
                found[str(path.relative_to(ROOT))] = problems
    assert not found, found


def listening_sockets(pid: int) -> list[str]:
    """The TCP sockets process `pid` listens on (from /proc): none for a server that speaks over stdio."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(f"{table} {fields[1]}")
    return found


@pytest.mark.parametrize("name", ["../../etc", "../escape", "/tmp/elsewhere", ".."])
def test_a_model_name_cannot_leave_the_data_directory(name: str, isolated_home: Path):
    from contract import modeldir
    from finetune.config import FinetuneConfig
    from kinds.charlstm.options import CharOptions

    with pytest.raises(UserError, match="plain name"):
        FinetuneConfig(corpus="pkd", model="char", name=name, options=CharOptions(size="tiny")).validate()
    with pytest.raises(UserError, match="no model"):
        modeldir.local(name)  # what models rm and models rename act on


UMASK_RUN = """
import os, sys
os.umask(0o027)
from pathlib import Path
from assistant.samples.store import Store
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions

out = Path(sys.argv[2])
finetune(FinetuneConfig(corpus=sys.argv[1], model="char", out=out, max_steps=2, eval_every=1, sample_every=1,
                        ghostwriting_every=0, options=CharOptions(size="tiny")), Reporter())
Store().close()
"""


def test_models_and_the_sample_store_are_made_with_the_users_umask(pkd_slice: Path, tmp_path: Path, isolated_home: Path):
    out = tmp_path / "models" / "m"
    done = subprocess.run([sys.executable, "-c", UMASK_RUN, str(pkd_slice), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    made = [out, *out.rglob("*"), isolated_home / "samples.db"]
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in made}
    expected = {str(p.relative_to(tmp_path)): oct(0o750 if p.is_dir() else 0o640) for p in made}
    assert modes == expected
