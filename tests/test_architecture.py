"""The shape of the code: one direction between the packages, no import cycles, every module importable alone, and
directories of earlier releases.

Release 0.1's files in tests/fixtures/release-0.1 were written by that
release (its char model and GPT-2 directories, both tiny, and its sample store
holding one sample of each), trained on the first 400 lines of a PKD story read
from ../shared: they must load, write the same text for the same seed,
resume, and list, whatever this release changed in config.json.
"""

import ast
import json
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import CORPORA, GPT2_TOKENIZER, ROOT, run_cli

# The packages from the bottom up. A module imports only from its own package and the ones before it in this order:
# the text (corpora); what training and writing agree on about a model (contract: the model directory, the kinds'
# table, sampling); the training core (finetune); the model kinds, which train through it (kinds); what a writer
# uses (assistant). A package's `__main__` is a command, not a module, and may import any of them.
LAYERS = ("corpora", "contract", "finetune", "kinds", "assistant")
PACKAGES = LAYERS
RELEASE = Path(__file__).parent / "fixtures" / "release-0.1"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports_at_load(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports when it is loaded (module level, not inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # its own packages are loaded first
                found.add(target)
    return found


def _every_import(name: str, path: Path) -> set[str]:
    """The top-level packages `name` imports anywhere in it: at load, inside functions, for type checking."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(package.split(".")[0] if node.level else (node.module or "").split(".")[0])
    return found & set(LAYERS)


def test_each_package_imports_only_from_itself_and_the_packages_below_it():
    wrong = []
    for name, path in _modules().items():
        if name.endswith("__main__"):
            continue
        own = LAYERS.index(name.split(".")[0])
        wrong += [f"{name} imports {other}" for other in sorted(_every_import(name, path))
                  if LAYERS.index(other) > own]
    assert wrong == [], f"the order is {' < '.join(LAYERS)}"


def test_no_module_imports_itself_back_through_others():
    modules = _modules()
    graph = {name: _imports_at_load(name, path, modules) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(other):], name, other]))
            if other not in state:
                visit(other, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


# An interpreter that has imported the third-party libraries and none of ours, then forks a child per module to
# import it: each of our modules is imported on its own, with nothing of ours loaded before it, without paying
# torch's and transformers' import in each of a hundred interpreters (a minute of the suite on 2 cores).
ZYGOTE = """
import importlib, os, sys
import numpy, torch, safetensors, typer, rich, pygls, lsprotocol, prompt_toolkit, sqlite_utils, peft, sklearn, uvicorn
import starlette.applications, starlette.middleware.cors
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel
assert not any(m.split(".")[0] in ("assistant", "contract", "corpora", "finetune", "kinds") for m in sys.modules)
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as e:
            print(name, type(e).__name__, str(e).replace(chr(10), " "), flush=True)
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        print(name, "failed", flush=True)
"""


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    def imports(names: list[str]) -> str:
        result = subprocess.run([sys.executable, "-c", ZYGOTE, *names], capture_output=True, text=True, cwd=ROOT)
        return result.stdout + (result.stderr if result.returncode else "")

    names = [name for name in _modules() if not name.endswith("__main__")]  # that one runs the command
    with ThreadPoolExecutor(2) as pool:  # a zygote per core, each importing every other module
        failures = "".join(pool.map(imports, (names[0::2], names[1::2])))
    assert failures == ""


def test_each_kind_is_one_package_with_its_training_and_inference_side_by_side():
    from contract import registry

    for kind in registry.KINDS.values():
        folder = ROOT / kind.package.replace(".", "/")
        assert {"train.py", "infer.py"} <= {p.name for p in folder.glob("*.py")}, kind.name
        assert callable(kind.train().make_adapter) and callable(kind.infer().load)
        assert kind.options.__module__.startswith("kinds.")  # torch-free, read by the CLI
    assert registry.get("char-lstm") is registry.get("char")  # release 0.1's spelling in config.json


@pytest.fixture
def release_models(isolated_home: Path) -> Path:
    """Release 0.1's model directories in the data directory, the GPT-2 one with its tokenizer files restored
    (they are the shared GPT-2 tokenizer's, not kept twice in this repository)."""
    from transformers import AutoTokenizer

    models = isolated_home / "models"
    shutil.copytree(RELEASE / "models", models)
    AutoTokenizer.from_pretrained(GPT2_TOKENIZER).save_pretrained(models / "release-gpt2")
    shutil.copy(RELEASE / "samples.db", isolated_home / "samples.db")
    return models


def test_release_directories_are_read_as_this_release_writes_them(release_models: Path):
    from contract import modeldir

    raw = json.loads((release_models / "release-char" / "config.json").read_text())
    assert raw["kind"] == "char-lstm" and "char" in raw["training"] and "options" not in raw["training"]
    card = modeldir.read(release_models / "release-char")
    assert card.kind == "char" and card.training["options"]["hidden"] == 32 and "gpt2" not in card.training
    assert card.corpus is not None and card.corpus.name == "story" and card.extra["prime"] == "\n\n"
    assert card.status == "max_steps" and card.has_weights
    gpt2 = modeldir.read(release_models / "release-gpt2")
    assert gpt2.kind == "gpt2" and gpt2.training["options"]["n_embd"] == 1 and gpt2.extra["n_layer"] == 1
    listed = [json.loads(line) for line in run_cli("models", "--json").stdout.splitlines()]
    assert [(m["name"], m["kind"], m["status"]) for m in listed] == [("release-char", "char", "max_steps"),
                                                                   ("release-gpt2", "gpt2", "max_steps")]


def test_release_models_write_what_release_0_1_wrote(release_models: Path):
    """The release's sample store holds a sample from each model: the same seed and parameters give the same text."""
    from assistant import load_model
    from assistant.samples.store import Store

    with Store() as store:
        samples = store.find()
    assert {s.model for s in samples} == {"release-char", "release-gpt2"}
    for sample in samples:
        params = {k: v for k, v in sample.params.items() if k != "stop"}
        assert load_model(sample.model, "cpu").generate(sample.prompt, **params) == sample.text


def test_a_release_run_resumes(release_models: Path, tmp_path: Path):
    corpus = tmp_path / "story.txt"  # the release trained on a file of this name, which must still hold the same text:
    raw = (CORPORA / "pkd" / "the-eyes-have-it.txt").read_bytes()  # the story's first 400 lines, as it was cut then
    corpus.write_bytes(b"\n".join(raw.split(b"\n")[:400]).rstrip(b"\n"))
    result = run_cli("finetune", str(corpus), "--model", "char", "--name", "release-char", "--resume", "--max-steps", "40")
    assert result.returncode == 0, result.stderr
    assert "Resuming at step 30" in result.stderr and "Stopped after 40 steps" in result.stderr
    from contract import modeldir

    card = modeldir.read(release_models / "release-char")
    assert card.kind == "char" and card.result["steps"] == 40 and card.training["options"]["hidden"] == 32


def test_loading_builds_no_index_and_a_check_never_downloads(trained_model: Path, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path, capfd: pytest.CaptureFixture):
    """The memorization index is built at the first check, not at load; a catalogue corpus not on this machine
    is reported, never fetched."""
    from assistant import load_model
    from assistant.generation import TextModel
    from assistant.samples.recording import written
    from contract import modeldir
    from corpora import download

    model = load_model(trained_model, "cpu")
    assert "indexing" not in capfd.readouterr().err
    _, sample_id = written(model, "The", "api", max_new_chars=20, seed=1)
    assert sample_id is not None and "indexing corpus" in capfd.readouterr().err

    def no_network(url: str, **kwargs: object) -> bytes:
        raise AssertionError(f"the memorization check downloaded {url}")

    monkeypatch.setattr(download, "fetch", no_network)
    monkeypatch.setenv("ASSISTANT_CORPORA", str(tmp_path / "empty"))
    card = modeldir.read(trained_model)
    card.corpus = modeldir.CorpusRecord("pkd", "download", "1" * 64)  # as if trained on the catalogue's pkd, not here
    pkd_model = TextModel(card, model.decoder, model.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, stored = written(pkd_model, "The", "api", max_new_chars=10, seed=1)
    assert stored is not None  # stored all the same, unchecked
    assert any("not found; no memorization check" in str(w.message) for w in caught)
