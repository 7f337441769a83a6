"""The VS Code extension builds from its lock file (`npm ci && npm run compile`), in a copy so the tree stays clean,
and what it sends reaches a real server as meant: VS Code itself cannot run here, so plain Node runs the extension's
trigger mapping and the protocol library it ships against `assistant lsp` (plugins/vscode/test/alternatives.js).

VS Code's next and previous suggestion keys (Alt+] / Alt+[) ask the provider again with an explicit trigger and cycle
through the items it answers: the check is that such a request gets `alternatives` different items, and one typed
pause one item.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

EXTENSION = ROOT / "plugins" / "vscode"
NPM = shutil.which("npm")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NPM is None or NODE is None, reason="npm is not installed")


def registry_reachable() -> bool:
    try:
        return subprocess.run([NPM, "ping"], capture_output=True, timeout=20).returncode == 0  # type: ignore[list-item]
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the extension, its dependencies installed from the lock file and compiled."""
    if not registry_reachable():
        pytest.skip("the npm registry cannot be reached")
    copy = tmp_path_factory.mktemp("vscode")
    for name in ("package.json", "package-lock.json", "tsconfig.json", "src", "test"):
        source = EXTENSION / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "compile"]):
        done = subprocess.run([NPM, *step], cwd=copy, capture_output=True, text=True, timeout=300)  # type: ignore[list-item]
        assert done.returncode == 0, done.stdout + done.stderr
    return copy


def test_the_vscode_extension_compiles(built: Path):
    assert (built / "out" / "extension.js").is_file()


def test_an_explicit_request_from_vscode_gets_the_alternatives_to_cycle_through(built: Path, trained_model: Path):
    done = subprocess.run([NODE, "test/alternatives.js", str(trained_model), sys.executable, "-m", "assistant", "lsp"],  # type: ignore[list-item]
                          cwd=built, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    [automatic] = answers["automatic"]  # a pause in typing: one short suggestion
    assert len(automatic["text"]) == 20
    texts = [item["text"] for item in answers["invoked"]]  # Alt+] / Alt+[ or Alt+\: the package's 3 alternatives
    assert len(texts) == 3 and len(set(texts)) == 3 and all(len(text) == 40 for text in texts)
    assert all(item["command"] == "ghostwriter.event" for item in answers["invoked"])  # accepting one records it
