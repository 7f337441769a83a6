"""The VS Code extension builds from its lock file (`npm ci && npm run compile`), in a copy so the tree stays clean."""

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

EXTENSION = ROOT / "plugins" / "vscode"
NPM = shutil.which("npm")


def registry_reachable() -> bool:
    try:
        return subprocess.run([NPM, "ping"], capture_output=True, timeout=20).returncode == 0  # type: ignore[list-item]
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.skipif(NPM is None, reason="npm is not installed")
def test_the_vscode_extension_compiles(tmp_path: Path):
    if not registry_reachable():
        pytest.skip("the npm registry cannot be reached")
    for name in ("package.json", "package-lock.json", "tsconfig.json", "src"):
        source = EXTENSION / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "compile"]):
        done = subprocess.run([NPM, *step], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "extension.js").is_file()
