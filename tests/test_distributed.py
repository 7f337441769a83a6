"""Training on several processes (issue 17): two gloo processes on the CPU against the single-process run.

Each test starts real processes: torchrun through `assistant finetune --nproc 2` (or two torchruns, `--nproc 1
--nnodes 2`, meeting at one rendezvous as two nodes would), or the two ranks by hand with the environment torchrun
gives them, when a test must signal or watch one rank. Every process runs one thread,
so the two fit the CI machine's two cores. The losses of a run on two processes match the single-process run's
within LOSS_TOLERANCE: the two ranks' gradients are averaged by gloo, whose sums may differ in the last bits.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from assistant import load_model
from finetune.checkpoint import checkpoint_state, read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions
from kinds.gpt2.options import GPT2Options

from .conftest import CORPORA, GPT2_TINY, ROOT, TINY, run_cli

LOSS_TOLERANCE = 1e-4  # relative, per step's training loss
STEPS = 40  # a char run's length: the single-process run every char run here is held to
ONE_THREAD = {"OMP_NUM_THREADS": "1", "ASSISTANT_THREADS": "1"}
# a char-LSTM smaller than the tiny preset: 1 x 64, 8 streams of 32 characters
SHAPE = {"layers": 1, "hidden": 64, "batch_size": 8, "seq_len": 32}
# float32 products: bf16's (the default on a CPU that has them) round differently at a rank's smaller batch, by more
# than gloo's sums do; a resumed run keeps the saved choice
CHAR = [*TINY, *(f"--{k.replace('_', '-')}={v}" for k, v in SHAPE.items()), "--eval-every", "20", "--checkpoint-every",
        "5", "--ghostwriting-every", "0", "--device", "cpu", "--no-cpu-bf16"]
GPT2 = [*GPT2_TINY, "--no-cpu-bf16"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The runs in this process take one thread, as each rank does: its tiny models ran ten times slower on two
    threads of a busy two-core machine (each waiting for the other) than on one. ASSISTANT_THREADS keeps
    `load_model` from raising it again."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


def losses(model: Path) -> list[float]:
    return [r["train_loss"] for r in read_jsonl(model / "history.jsonl") if "train_loss" in r]


def assert_same_curve(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    assert got == pytest.approx(want, rel=LOSS_TOLERANCE)


def shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor's shape in a safetensors file."""
    with safe_open(str(path), "pt") as f:
        names = f.keys()
        return {k: f.get_slice(k).get_shape() for k in names}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(argvs: list[list[str]]) -> list[subprocess.Popen]:
    """`python -m finetune ARGV` for each rank, with the environment torchrun would give it."""
    port, size = free_port(), len(argvs)
    procs = []
    for rank, argv in enumerate(argvs):
        env = {**os.environ, **ONE_THREAD, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(size),
               "LOCAL_WORLD_SIZE": str(size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-m", "finetune", *argv], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return procs


def finish(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """Each process's (stdout, stderr) once all have ended; past a deadline, the test fails with what they said.

    Stuck processes get SIGTERM first: torchrun passes it on to the worker it started (in a session of the
    worker's own, which a kill of torchrun would leave running), and stops it; what is left after half a minute
    is killed."""
    try:
        return [p.communicate(timeout=300) for p in procs]  # the runs take seconds; a loaded machine, minutes
    except subprocess.TimeoutExpired:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        pytest.fail("\n".join(f"process {i}:\n{p.communicate()[1][-3000:]}" for i, p in enumerate(procs)))


class CtrlCAfter(Reporter):
    """The progress display, pressing Ctrl-C as it shows step `step`: the run stops at the end of the next step,
    the same one every time, as a Ctrl-C sent from outside the process could not."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def update(self, completed: int, step: int, *args: Any, **kwargs: Any) -> None:
        super().update(completed, step, *args, **kwargs)
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def char_run(corpus: Path, out: Path, max_steps: int, resume: bool = False, reporter: Reporter | None = None) -> None:
    """The single-process run, in this process."""
    config = FinetuneConfig(corpus=str(corpus), model="char", out=out, max_steps=max_steps, eval_every=20,
                            checkpoint_every=5, sample_every=50, ghostwriting_every=0, seed=7, device="cpu",
                            resume=resume, options=None if resume else CharOptions(size="tiny", cpu_bf16=False, **SHAPE))  # type: ignore[arg-type]
    finetune(config, reporter or Reporter())


@pytest.fixture(scope="module")
def straight(pkd_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process char run of STEPS steps, trained once for every test that compares a curve with it."""
    root = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        char_run(pkd_slice, root / "one", STEPS)
    return root / "one"


def test_sigterm_on_rank_1_stops_both_ranks_at_rank_0s_step_only_rank_0_writes_and_the_run_resumes_on_one(
        pkd_slice: Path, straight: Path, tmp_path: Path):
    """SIGTERM to rank 1 alone: rank 0 hears of it with the step's loss, decides, and both stop after the same step
    (a rank that stopped alone would leave the other waiting in a collective, and the run would fail). Rank 1's
    model directory is in /proc, where nobody, root included, can create one: the run succeeds, so rank 1 wrote
    nothing.
    The run then resumes on one process, and the whole loss curve is the single-process run's."""
    steps = STEPS
    out, nowhere = tmp_path / "two", Path("/proc/self/fdinfo/ghostwriter-model")
    argv = [str(pkd_slice), *CHAR, "--max-steps", str(steps)]
    ranks = start_ranks([[*argv, "--out", str(out)], [*argv, "--out", str(nowhere)]])
    deadline = time.monotonic() + 300  # the ranks start in seconds; a loaded machine may take minutes
    while not (out / "last" / "checkpoint.safetensors").exists():
        if any(p.poll() is not None for p in ranks) or time.monotonic() > deadline:
            for p in ranks:
                p.kill()
            pytest.fail("\n".join(f"rank {i}:\n{p.communicate()[1][-3000:]}" for i, p in enumerate(ranks)))
        time.sleep(0.05)
    ranks[1].send_signal(signal.SIGTERM)
    results = [p.communicate(timeout=300) for p in ranks]
    assert [p.returncode for p in ranks] == [130, 130], results
    assert "interrupted; continue with --resume" in results[0][1]
    assert "Stopped" not in results[1][1]  # rank 1 prints nothing of the run
    result = read_jsonl(out / "history.jsonl")[-1]
    stopped = result["step"]
    assert 5 <= stopped < steps
    assert not nowhere.exists()

    char_run(pkd_slice, out, steps, resume=True)  # world size 2 -> 1
    assert_same_curve(losses(out), losses(straight))


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by its relative path, with its bytes."""
    return {str(f.relative_to(directory)): f.read_bytes() for f in sorted(directory.rglob("*")) if f.is_file()}


@dataclass
class Nodes:
    """A run on two nodes: each node's model directory, its launcher's stderr and exit status, and the directory
    both held before the run."""

    outs: list[Path]
    stderr: list[str]
    returncodes: list[int | None]
    before: dict[str, bytes]


@pytest.fixture(scope="module")
def two_nodes(pkd_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Nodes:
    """A char run of STEPS steps stopped by Ctrl-C at step STEPS // 2 on one process, and resumed on two "nodes" of
    one process each: two
    launchers (`--nproc 1 --nnodes 2`) that meet at one c10d rendezvous on localhost, as two machines meet at the
    first one's address. Each node has its own copy of the model directory, where two machines would share a
    disk: the rendezvous decides which node's process is rank 0, and the other copy shows what rank 1 wrote."""
    root = tmp_path_factory.mktemp("two-nodes")
    # torchrun gives its worker 10 s to stop on a SIGTERM (finish's), not the 10 minutes `--nproc` allows
    env = {**os.environ, **ONE_THREAD, "ASSISTANT_HOME": str(root / "home"), "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "10"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", env["ASSISTANT_HOME"])
        char_run(pkd_slice, root / "half", STEPS, reporter=CtrlCAfter(STEPS // 2 - 1))
    assert checkpoint_state(root / "half" / "last" / "checkpoint.safetensors")["run"]["step"] == STEPS // 2
    outs = [root / "node0", root / "node1"]
    for out in outs:
        shutil.copytree(root / "half", out)
    argv = [str(pkd_slice), "--resume", "--device", "cpu", "--nproc", "1", "--nnodes", "2",
            "--rdzv-endpoint", f"127.0.0.1:{free_port()}"]
    nodes = [subprocess.Popen([sys.executable, "-m", "assistant", "finetune", *argv, "--out", str(out)], cwd=ROOT,
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for out in outs]
    results = finish(nodes)
    return Nodes(outs, [err for _, err in results], [p.returncode for p in nodes], tree(root / "half"))


def test_a_char_run_on_one_process_resumes_on_two(two_nodes: Nodes, straight: Path):
    """Saved by one process at step 20, the run goes on at world size 2 from that step, each rank with its half
    of the streams and their LSTM state, and the Adam moments: steps 21 to 40 follow the first 20 once each, and the
    whole curve is the single-process run's."""
    assert two_nodes.returncodes == [0, 0], two_nodes.stderr
    (main, err), = [(out, err) for out, err in zip(two_nodes.outs, two_nodes.stderr, strict=True)
                    if tree(out) != two_nodes.before]
    assert f"Resuming at step {STEPS // 2}" in err
    assert [r["step"] for r in read_jsonl(main / "history.jsonl") if "train_loss" in r] == list(range(1, STEPS + 1))
    assert checkpoint_state(main / "last" / "checkpoint.safetensors")["run"]["step"] == STEPS
    assert_same_curve(losses(main), losses(straight))


def test_two_nodes_meet_at_one_rendezvous_and_only_rank_0_writes(two_nodes: Nodes):
    """Two launchers, one rendezvous: the run completes on both nodes, one model directory is written, and rank 1's
    copy is untouched to the byte (no log truncated, no checkpoint, no config.json); rank 1 prints nothing of the run."""
    assert two_nodes.returncodes == [0, 0], two_nodes.stderr
    unchanged = [tree(out) == two_nodes.before for out in two_nodes.outs]
    assert sorted(unchanged) == [False, True]
    assert ["Stopped after" in err for err in two_nodes.stderr] == [not u for u in unchanged]


@pytest.fixture(scope="module")
def verse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shakespeare the `gpt2_base` fixture did not train on, which it still predicts far better than chance."""
    path = tmp_path_factory.mktemp("verse") / "verse.txt"
    path.write_text((CORPORA / "tinyshakespeare" / "input.txt").read_text()[60_000:100_000])
    return path


def gpt2_config(base: Path, corpus: Path, out: Path, steps: int, **options: object) -> FinetuneConfig:
    return FinetuneConfig(corpus=str(corpus), out=out, max_steps=steps, eval_every=3, sample_every=1000,
                          ghostwriting_every=0, seed=7, device="cpu",
                          options=GPT2Options(base=str(base), block_size=32, micro_batch=4, batch_tokens=256,
                                              dropout=0.0, cpu_bf16=False, **options))  # type: ignore[arg-type]


def test_gpt2_lora_with_gradient_checkpointing_on_two_processes(gpt2_base: Path, verse: Path, tmp_path: Path):
    """LoRA with gradient checkpointing under DDP (peft #313, #899: "marked ready twice", unused parameters): the
    curve is the single-process one, the step's 8 blocks are 4 on each rank (accumulation from the world size,
    nanoGPT #283), and the model directory holds the adapter alone, whole."""
    one, two = tmp_path / "one", tmp_path / "two"
    finetune(gpt2_config(gpt2_base, verse, one, 6, lora=True, lora_dropout=0.0, grad_checkpointing=True), Reporter())
    done = run_cli("finetune", str(verse), "--base", str(gpt2_base), *GPT2, "--dropout", "0", "--lora",
                   "--lora-dropout", "0", "--grad-checkpointing", "--max-steps", "6", "--eval-every", "3",
                   "--ghostwriting-every", "0", "--device", "cpu", "--out", str(two), "--nproc", "2", env=ONE_THREAD)
    assert done.returncode == 0, done.stderr
    assert "(4 x 2 accumulated, 1 x 4 on each of 2 processes)" in " ".join(done.stderr.split())
    assert_same_curve(losses(two), losses(one))
    assert (two / "adapter_model.safetensors").is_file() and not (two / "model.safetensors").exists()
    weights = [k for k in shapes(two / "last" / "checkpoint.safetensors") if k.startswith("model.")]
    assert weights and all("lora_" in k for k in weights)


@pytest.fixture(scope="module")
def gpt2_three_steps(gpt2_base: Path, verse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All weights of the stand-in base trained 3 steps on one process, once for the tests that start from it or
    compare with it (they copy it before they resume it)."""
    root = tmp_path_factory.mktemp("gpt2-three-steps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        finetune(gpt2_config(gpt2_base, verse, root / "one", 3), Reporter())
    return root / "one"


def test_a_gpt2_run_on_one_process_resumes_on_two(gpt2_three_steps: Path, verse: Path, tmp_path: Path):
    """All weights: 3 steps on one process, then 3 more on two, as on one."""
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        shutil.copytree(gpt2_three_steps, out)
    finetune(FinetuneConfig(corpus=str(verse), out=one, max_steps=6, resume=True, device="cpu"), Reporter())
    ranks = start_ranks([[str(verse), "--out", str(two), "--resume", "--max-steps", "6", "--device", "cpu"]] * 2)
    for rank in ranks:
        assert rank.wait(timeout=300) == 0, rank.communicate()[1]
    assert_same_curve(losses(two), losses(one))
    assert read_jsonl(two / "history.jsonl")[-1]["step"] == 6


def test_fsdp_trains_all_weights_on_two_processes_into_a_model_directory_one_process_loads(
        gpt2_base: Path, gpt2_three_steps: Path, verse: Path, tmp_path: Path):
    """Full fine-tuning under --fsdp: the curve is the single-process one, and so is the model directory: every
    weight gathered whole from the two shards, the tied embedding and output head saved once (not as an untied copy
    of the vocabulary matrix), so that a plain single-process `load_model` reads it and writes what the
    single-process model writes."""
    one, two = gpt2_three_steps, tmp_path / "two"
    ranks = start_ranks([[str(verse), "--base", str(gpt2_base), *GPT2, "--dropout", "0", "--max-steps", "3",
                          "--eval-every", "3", "--ghostwriting-every", "0", "--device", "cpu", "--fsdp",
                          "--out", str(two)]] * 2)
    results = finish(ranks)
    assert [p.returncode for p in ranks] == [0, 0], results
    assert_same_curve(losses(two), losses(one))
    for name in ("model.safetensors", "last/checkpoint.safetensors"):
        assert shapes(two / name) == shapes(one / name)
    torch.testing.assert_close(load_file(two / "model.safetensors"), load_file(one / "model.safetensors"),
                               rtol=0, atol=1e-5)
    written = [load_model(out, device="cpu", quantize="none").generate("ROMEO:", max_new_chars=40, seed=1,
                                                                       temperature=0) for out in (two, one)]
    assert written[0] and written[0] == written[1]


def test_fsdp_lora_resumes_from_one_process_on_two_and_saves_the_whole_adapter(gpt2_base: Path, verse: Path,
                                                                                 tmp_path: Path):
    """--fsdp shards the model over the ranks: the checkpoint of a single-process run loads into the shards (from
    the CPU), the curve goes on as on one process, and what is saved is the adapter alone and whole, never one
    rank's shard of it (transformers PR #28297, accelerate PR #4206), so that the next resume does not revert."""
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        finetune(gpt2_config(gpt2_base, verse, out, 3, lora=True, lora_dropout=0.0), Reporter())
    finetune(FinetuneConfig(corpus=str(verse), out=one, max_steps=6, resume=True, device="cpu"), Reporter())
    ranks = start_ranks([[str(verse), "--out", str(two), "--resume", "--max-steps", "6", "--device", "cpu",
                          "--fsdp"]] * 2)
    for rank in ranks:
        assert rank.wait(timeout=300) == 0, rank.communicate()[1]
    assert_same_curve(losses(two), losses(one))
    assert not (two / "model.safetensors").exists()
    for name in ("adapter_model.safetensors", "last/adapter_model.safetensors", "last/checkpoint.safetensors"):
        assert shapes(two / name) == shapes(one / name)
