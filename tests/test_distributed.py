"""Training on several processes (issue 17): two gloo processes on the CPU against the single-process run.

Each test starts real processes: torchrun through `assistant finetune --nproc 2`, or the two ranks by hand with
the environment torchrun gives them, when a test must signal or watch one rank. Every process runs one thread,
so the two fit the CI machine's two cores. The losses of a run on two processes match the single-process run's
within LOSS_TOLERANCE: the two ranks' gradients are averaged by gloo, whose sums may differ in the last bits.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from finetune.checkpoint import read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions
from kinds.gpt2.options import GPT2Options

from .conftest import CORPORA, GPT2_TINY, ROOT, TINY, run_cli

LOSS_TOLERANCE = 1e-4  # relative, per step's training loss
ONE_THREAD = {"OMP_NUM_THREADS": "1", "ASSISTANT_THREADS": "1"}
# a char-LSTM smaller than the tiny preset: 1 x 64, 8 streams of 32 characters
SHAPE = {"layers": 1, "hidden": 64, "batch_size": 8, "seq_len": 32}
CHAR = [*TINY, *(f"--{k.replace('_', '-')}={v}" for k, v in SHAPE.items()), "--eval-every", "20", "--checkpoint-every",
        "5", "--ghostwriting-every", "0", "--device", "cpu"]


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


def char_run(corpus: Path, out: Path, max_steps: int, resume: bool = False) -> None:
    """The single-process run, in this process."""
    config = FinetuneConfig(corpus=str(corpus), model="char", out=out, max_steps=max_steps, eval_every=20,
                            checkpoint_every=5, sample_every=50, ghostwriting_every=0, seed=7, device="cpu",
                            resume=resume, options=None if resume else CharOptions(size="tiny", **SHAPE))  # type: ignore[arg-type]
    finetune(config, Reporter())


def test_sigterm_on_rank_1_stops_both_ranks_at_rank_0s_step_only_rank_0_writes_and_the_run_resumes_on_one(
        pkd_slice: Path, tmp_path: Path):
    """SIGTERM to rank 1 alone: rank 0 hears of it with the step's loss, decides, and both stop after the same step
    (a rank that stopped alone would leave the other waiting in a collective, and the run would fail). Rank 1's
    model directory is in /proc, where nobody, root included, can create one: the run succeeds, so rank 1 wrote
    nothing.
    The run then resumes on one process, and the whole loss curve is the single-process run's."""
    steps = 40
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
    straight = tmp_path / "one"
    char_run(pkd_slice, straight, steps)
    assert_same_curve(losses(out), losses(straight))


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
                                              dropout=0.0, **options))  # type: ignore[arg-type]


def test_gpt2_lora_with_gradient_checkpointing_on_two_processes(gpt2_base: Path, verse: Path, tmp_path: Path):
    """LoRA with gradient checkpointing under DDP (peft #313, #899: "marked ready twice", unused parameters): the
    curve is the single-process one, the step's 8 blocks are 4 on each rank (accumulation from the world size,
    nanoGPT #283), and the model directory holds the adapter alone, whole."""
    one, two = tmp_path / "one", tmp_path / "two"
    finetune(gpt2_config(gpt2_base, verse, one, 6, lora=True, lora_dropout=0.0, grad_checkpointing=True), Reporter())
    done = run_cli("finetune", str(verse), "--base", str(gpt2_base), *GPT2_TINY, "--dropout", "0", "--lora",
                   "--lora-dropout", "0", "--grad-checkpointing", "--max-steps", "6", "--eval-every", "3",
                   "--ghostwriting-every", "0", "--device", "cpu", "--out", str(two), "--nproc", "2", env=ONE_THREAD)
    assert done.returncode == 0, done.stderr
    assert "(4 x 2 accumulated, 1 x 4 on each of 2 processes)" in " ".join(done.stderr.split())
    assert_same_curve(losses(two), losses(one))
    assert (two / "adapter_model.safetensors").is_file() and not (two / "model.safetensors").exists()
    weights = [k for k in shapes(two / "last" / "checkpoint.safetensors") if k.startswith("model.")]
    assert weights and all("lora_" in k for k in weights)


def test_a_gpt2_run_on_one_process_resumes_on_two(gpt2_base: Path, verse: Path, tmp_path: Path):
    """All weights: 3 steps on one process, then 3 more on two, as on one."""
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        finetune(gpt2_config(gpt2_base, verse, out, 3), Reporter())
    finetune(FinetuneConfig(corpus=str(verse), out=one, max_steps=6, resume=True, device="cpu"), Reporter())
    ranks = start_ranks([[str(verse), "--out", str(two), "--resume", "--max-steps", "6", "--device", "cpu"]] * 2)
    for rank in ranks:
        assert rank.wait(timeout=300) == 0, rank.communicate()[1]
    assert_same_curve(losses(two), losses(one))
    assert read_jsonl(two / "history.jsonl")[-1]["step"] == 6


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
