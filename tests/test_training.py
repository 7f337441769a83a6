"""Char-LSTM training end to end on real (small) text, tiny models, the CPU."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from safetensors import safe_open

from assistant import load_model
from corpora import UserError
from finetune.checkpoint import checkpoint_state, read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from kinds.charlstm.options import CharOptions

from .conftest import CORPORA, ROOT, TINY, ctrl_c_as_in_a_terminal, run_cli


def _train(corpus: Path, out: Path, **kwargs) -> object:
    options = kwargs.pop("char", CharOptions(size="tiny"))
    kwargs.setdefault("ghostwriting_every", 0)  # its set-up (corpus index, classifier) is most of a tiny run's time
    return finetune(FinetuneConfig(corpus=str(corpus), model="char", out=out, seed=7, options=options, **kwargs), Reporter())


def test_target_loss_stops_training_and_writes_a_loadable_model(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    summary = _train(pkd_slice, out, target_loss=2.6, max_steps=1000, eval_every=20, sample_every=50,
                     ghostwriting_every=None)  # finetune's default: the directory holds the ghostwriting checkpoint
    assert summary.stop_reason == "target" and summary.target_met
    assert summary.train_loss <= 2.6 and summary.steps < 1000
    files = {p.name for p in out.iterdir()}
    assert files == {"config.json", "model.safetensors", "history.jsonl", "samples.jsonl", "loss.svg", "last", "ghostwriting"}
    svg = ET.parse(out / "loss.svg").getroot()  # drawn by matplotlib (finetune/plot.py), each line named
    groups = {g.get("id"): g for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    evaluations = [r for r in read_jsonl(out / "history.jsonl") if "val_loss" in r]
    assert {"step-train-m", "step-val-m", "elapsed-train-m", "elapsed-val-m"} <= set(groups)
    assert len(groups["step-val-m"].findall(".//{http://www.w3.org/2000/svg}use")) == len(evaluations)
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "char" and config["format"] == 1
    assert config["corpus"]["checksum"] and config["corpus"]["documents"] == 2
    split = config["split"]
    assert split["train"][1] == split["val"][0] and split["val"][1] == split["test"][0]
    assert round(split["train"][1] / split["test"][1], 2) == 0.90
    assert config["result"]["stop_reason"] == "target" and config["result"]["best_val"] == summary.best_val
    history = read_jsonl(out / "history.jsonl")
    assert history[0]["step"] == 0 and history[0]["val_loss"] > 3.5  # an untrained model is near ln(vocab)
    vals = [r["val_loss"] for r in history if "val_loss" in r]
    assert vals[-1] < vals[0] - 1.0
    assert len(history) == summary.steps + 1
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["step"] for s in samples] == list(range(50, summary.steps + 1, 50))
    model = load_model(out)
    text = model.generate("The door opened and", max_new_chars=80, seed=1)
    assert len(text) == 80


def test_target_on_validation_loss(pkd_slice: Path, tmp_path: Path):
    summary = _train(pkd_slice, tmp_path / "m", target_loss=2.7, target_on="val", max_steps=1000, eval_every=10)
    assert summary.stop_reason == "target" and summary.val_loss <= 2.7 and summary.steps % 10 == 0


def test_existing_model_dir_is_refused_and_untouched(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    _train(pkd_slice, out, max_steps=5)
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(UserError, match="already exists: pass --resume"):
        _train(pkd_slice, out, max_steps=5)
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    summary = _train(pkd_slice, out, max_steps=3, force=True)
    assert summary.steps == 3 and len(read_jsonl(out / "history.jsonl")) == 4


def test_overfit_warning_fires_on_a_tiny_corpus_trained_long(tmp_path: Path, capsys: pytest.CaptureFixture):
    small = tmp_path / "small.txt"
    small.write_bytes((CORPORA / "pkd" / "the-eyes-have-it.txt").read_bytes()[:12000])
    char = CharOptions(size="tiny", hidden=256, batch_size=8, seq_len=32)
    summary = _train(small, tmp_path / "m", char=char, max_steps=1500, eval_every=25, stop_on_overfit=True)
    assert summary.overfit_warned and summary.stop_reason == "overfit"
    assert summary.steps < 1500 and summary.best_step < summary.steps
    assert capsys.readouterr().err.count("started to memorize its corpus") == 1


def test_copying_raises_the_memorization_warning_before_validation_loss_turns(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture):
    """A corpus of one sentence said over and over: validation loss only falls (the validation text is that sentence
    too), while the samples copy it word for word: copying over --max-copying warns, and --stop-on-overfit stops."""
    from .conftest import PARROT

    parrot = tmp_path / "parrot.txt"
    parrot.write_text(PARROT * 60)
    summary = _train(parrot, tmp_path / "m", char=CharOptions(size="tiny", lr=1e-2), max_steps=400, eval_every=10,
                     stop_on_overfit=True, ghostwriting_every=1, eval_samples=4)
    err = capsys.readouterr().err
    assert summary.stop_reason == "overfit" and summary.steps < 400, err
    assert summary.best_step == summary.steps  # validation loss had not turned
    assert err.count("started to memorize its corpus") == 1 and "over the --max-copying 5% limit" in " ".join(err.split())


def test_memorization_is_seen_through_a_jittery_validation_loss():
    from finetune.trainer import memorizing

    # [step, smoothed train, val]: best val at step 100, then up with a dip (2.36 -> 2.33), train falling
    evals = [[50, 3.0, 2.5], [100, 2.6, 2.3], [150, 2.3, 2.36], [200, 2.1, 2.33], [250, 1.9, 2.40]]
    assert memorizing(evals, 100, 2.3, patience=3) == ([100, 2.6, 2.3], [250, 1.9, 2.40])
    assert memorizing(evals[:4], 100, 2.3, patience=3) is None  # two evaluations since the best: too soon
    plateau = [*evals[:4], [250, 1.9, 2.31]]  # within 1% of the best: noise, not memorization
    assert memorizing(plateau, 100, 2.3, patience=3) is None
    assert memorizing([[e[0], 2.0, e[2]] for e in evals], 100, 2.3, patience=3) is None  # training loss flat
    # the best was the starting point (step 0, no training loss yet): the first evaluation after it is the reference
    assert memorizing(evals[2:], 0, 2.2, patience=3) == ([150, 2.3, 2.36], [250, 1.9, 2.40])
    # a bump after the best (a warm-up's), coming back down: still learning
    assert memorizing([[10, 3.4, 7.111], [20, 3.2, 8.317], [30, 3.0, 7.566], [40, 2.9, 7.273]], 10, 7.111, 3) is None


def test_nan_guard_stops_with_a_clear_message_and_keeps_the_last_checkpoint(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    char = CharOptions(size="tiny", lr=1e30)
    with pytest.raises(UserError, match=r"training diverged at step (\d+): the loss is not finite.*--resume") as e:
        _train(pkd_slice, out, char=char, max_steps=50, checkpoint_every=1, warmup_steps=0)
    diverged_at = int(re.search(r"step (\d+)", str(e.value)).group(1))
    assert _checkpoint_step(out) == diverged_at - 1  # the last finite step is the checkpoint, nothing after it
    assert json.loads((out / "config.json").read_text())["result"]["stop_reason"] == "diverged"


@pytest.mark.parametrize("where", ["train_loss", "evaluate"])
def test_running_out_of_memory_stops_in_one_line_and_keeps_the_last_checkpoint(pkd_slice: Path, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                                 where: str):
    """In a step (its third) or in a validation (the one after step 4; the first is before training)."""
    import torch

    from kinds.charlstm.train import CharLSTMAdapter

    real, calls = getattr(CharLSTMAdapter, where), []

    def runs_out(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *args)

    monkeypatch.setattr(CharLSTMAdapter, where, runs_out)
    out = tmp_path / "m"
    char = CharOptions(size="tiny", batch_size=8, seq_len=16)
    after = 2 if where == "train_loss" else 4
    with pytest.raises(UserError, match=rf"ran out of cpu memory after step {after}; the last good checkpoint is intact "
                                        r"in .*: start again with --force and a smaller --batch-size \(this run's is 8\)"):
        _train(pkd_slice, out, char=char, max_steps=10, eval_every=2, checkpoint_every=1)
    assert _checkpoint_step(out) == after - (where == "evaluate")  # a step taken, its validation not done: not saved
    assert json.loads((out / "config.json").read_text())["result"]["stop_reason"] == "out_of_memory"
    monkeypatch.setattr(CharLSTMAdapter, where, real)
    assert _train(pkd_slice, out, char=char, resume=True).steps == 10  # and it resumes from there


def test_running_out_of_memory_before_training_writes_nothing(pkd_slice: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    from kinds.charlstm.train import CharLSTMAdapter

    def runs_out(self, *args):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(CharLSTMAdapter, "evaluate", runs_out)
    with pytest.raises(UserError, match=r"validation before training ran out of cpu memory: run it again with a "
                                        r"smaller --batch-size \(this run's is \d+\) or --seq-len") as raised:
        _train(pkd_slice, tmp_path / "m", max_steps=2)
    assert "--force" not in str(raised.value)  # there is nothing to replace
    assert not (tmp_path / "m").exists()


def _checkpoint_step(out: Path) -> int:
    try:
        with safe_open(str(out / "last" / "checkpoint.safetensors"), framework="pt") as f:
            return json.loads(f.metadata()["state"])["run"]["step"]
    except (OSError, ValueError, KeyError, RuntimeError):  # not written yet, or replaced while read (see test_kill9)
        return 0


def test_resume_after_kill_9_gives_the_same_loss_curve(pkd_slice: Path, tmp_path: Path):
    args = [str(pkd_slice), *TINY, "--max-steps", "160", "--checkpoint-every", "10"]
    straight = tmp_path / "straight"
    assert run_cli("finetune", *args, "--out", str(straight)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "finetune", *args, "--out", str(killed)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while _checkpoint_step(killed) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = _checkpoint_step(killed)
    assert 40 <= stopped_at < 160, "the run must be killed mid-way"

    resumed = run_cli("finetune", *args, "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming at step {stopped_at}" in resumed.stderr
    a, b = read_jsonl(straight / "history.jsonl"), read_jsonl(killed / "history.jsonl")
    assert [r["step"] for r in b] == list(range(161))
    assert [r.get("train_loss") for r in a] == [r.get("train_loss") for r in b]
    assert [r.get("val_loss") for r in a] == [r.get("val_loss") for r in b]
    assert read_jsonl(straight / "samples.jsonl") == read_jsonl(killed / "samples.jsonl")
    assert (straight / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()


def test_resume_needs_a_checkpoint(pkd_slice: Path, tmp_path: Path):
    with pytest.raises(UserError, match="nothing to resume"):
        _train(pkd_slice, tmp_path / "none", resume=True)


def test_corpus_too_short_for_the_sequence_length(tmp_path: Path):
    short = tmp_path / "short.txt"
    short.write_text("A short story that ends soon.\n" * 20)
    with pytest.raises(UserError, match="corpus too short for the sequence length"):
        _train(short, tmp_path / "m", max_steps=5)


def test_force_checks_every_input_before_deleting_anything(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    _train(pkd_slice, out, max_steps=3)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="unknown --size"):
        _train(pkd_slice, out, max_steps=3, force=True, char=CharOptions(size="larg"))
    with pytest.raises(UserError, match="corpus too short"):
        _train(pkd_slice, out, max_steps=3, force=True, char=CharOptions(size="tiny", seq_len=100_000))
    assert (out / "model.safetensors").read_bytes() == before


def test_resume_takes_a_new_learning_rate_and_the_final_evaluation_is_logged(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    _train(pkd_slice, out, max_steps=10, eval_every=4, checkpoint_every=5)
    history = read_jsonl(out / "history.jsonl")
    assert "val_loss" in history[-1] and history[-1]["step"] == 10  # the last step was not an evaluation step
    _train(pkd_slice, out, max_steps=15, resume=True, char=CharOptions(lr=1e-4))
    assert json.loads((out / "config.json").read_text())["hparams"]["lr"] == 1e-4
    assert max(r["lr"] for r in read_jsonl(out / "history.jsonl")[11:]) <= 1e-4


def test_weight_decay_and_the_lr_floor_are_the_size_presets_unless_given(pkd_slice: Path, tmp_path: Path):
    """AdamW decays the matrices by the preset's rate (small: 0.15, tiny: 0.01), or by --weight-decay; never the
    biases and norms. The cosine ends at the preset's share of the peak learning rate: 0 for small, 0.1 for tiny."""
    def decays(out: Path) -> list[float]:
        return [g["weight_decay"] for g in checkpoint_state(out / "last" / "checkpoint.safetensors")["optimizer"]["groups"]]

    def last_lr_share(out: Path, peak: float) -> float:
        return [r["lr"] for r in read_jsonl(out / "history.jsonl") if "lr" in r][-1] / peak

    _train(pkd_slice, tmp_path / "small", max_steps=12, eval_every=12, char=CharOptions(size="small"))
    _train(pkd_slice, tmp_path / "tiny", max_steps=12, eval_every=12)
    assert last_lr_share(tmp_path / "small", 1.2e-2) < 0.05 < 0.1 < last_lr_share(tmp_path / "tiny", 3e-3) < 0.15
    flagged = run_cli("finetune", str(pkd_slice), "--model", "char", "--size", "small", "--weight-decay", "0.3",
                      "--max-steps", "1", "--ghostwriting-every", "0", "--out", str(tmp_path / "flag"))
    assert flagged.returncode == 0, flagged.stderr
    assert decays(tmp_path / "small") == [0.15, 0.0]
    assert decays(tmp_path / "tiny") == [0.01, 0.0]
    assert decays(tmp_path / "flag") == [0.3, 0.0]
    saved = json.loads((tmp_path / "small" / "config.json").read_text())["training"]  # what a resume takes
    assert (saved["weight_decay"], saved["min_lr_ratio"]) == (0.15, 0.0)


def test_the_fused_cpu_optimizer_trains_as_the_per_tensor_one_and_resumes_its_checkpoints(
        pkd_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """AdamW's fused kernel on a CPU (finetune.trainer.FUSED_ADAM) gives the per-tensor loop's losses to within
    rounding, and a checkpoint the per-tensor optimizer wrote (as every CPU run before it did) resumes under it."""
    import finetune.trainer

    def losses(out: Path) -> list[float]:
        return [r["train_loss"] for r in read_jsonl(out / "history.jsonl") if "train_loss" in r]

    def fused_flags(out: Path) -> set[bool]:
        return {group["fused"] for group in checkpoint_state(out / "last" / "checkpoint.safetensors")["optimizer"]["groups"]}

    _train(pkd_slice, tmp_path / "fused", max_steps=8, eval_every=4)
    monkeypatch.setattr(finetune.trainer, "FUSED_ADAM", ("cuda",))
    _train(pkd_slice, tmp_path / "loop", max_steps=8, eval_every=4)
    for run in ("resumed-fused", "resumed-loop"):  # 4 steps, then 4 more on a new schedule (max_steps changes)
        _train(pkd_slice, tmp_path / run, max_steps=4, eval_every=4)
    _train(pkd_slice, tmp_path / "resumed-loop", max_steps=8, resume=True)
    monkeypatch.undo()
    _train(pkd_slice, tmp_path / "resumed-fused", max_steps=8, resume=True)
    fused = losses(tmp_path / "fused")
    assert len(fused) == 8 and fused[-1] < fused[0] - 0.5  # it trains
    assert fused_flags(tmp_path / "fused") == {True} and fused_flags(tmp_path / "loop") == {False}
    assert fused_flags(tmp_path / "resumed-fused") == {True}  # the per-tensor checkpoint's flags are not taken over
    assert losses(tmp_path / "loop") == pytest.approx(fused, abs=2e-3)
    resumed = losses(tmp_path / "resumed-fused")
    assert len(resumed) == 8 and resumed == pytest.approx(losses(tmp_path / "resumed-loop"), abs=2e-3)


def test_max_time_bounds_a_run(pkd_slice: Path, tmp_path: Path):
    summary = _train(pkd_slice, tmp_path / "m", max_time=2.0, eval_every=1000)
    assert summary.stop_reason == "max_time" and 2.0 <= summary.elapsed < 30 and summary.steps >= 1  # timing: a loaded CI


def _ctrl_c_after_step_20(args: list[str], out: Path) -> str:
    """Run `assistant ARGS` as a writer at a terminal does, press Ctrl-C once its checkpoint is past step 20, and
    return what it said (it must exit with 130, as an interrupted command does)."""
    proc = subprocess.Popen([sys.executable, "-m", "assistant", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy(), preexec_fn=ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while _checkpoint_step(out) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    return stderr


def test_ctrl_c_saves_and_the_run_resumes(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    args = ["finetune", str(pkd_slice), *TINY, "--max-steps", "5000", "--checkpoint-every", "10", "--out", str(out)]
    stderr = _ctrl_c_after_step_20(args, out)
    assert "interrupted; continue with --resume" in stderr and "Traceback" not in stderr
    stopped = _checkpoint_step(out)
    assert f"Stopped after {stopped} steps" in stderr
    assert len(read_jsonl(out / "history.jsonl")) == stopped + 1  # every step up to the interrupt is logged
    resumed = run_cli(*args[:-4], "--max-steps", str(stopped + 5), "--out", str(out), "--resume")
    assert resumed.returncode == 0 and f"Stopped after {stopped + 5} steps" in resumed.stderr


def test_ctrl_c_before_the_first_validation_keeps_the_trained_weights(pkd_slice: Path, isolated_home: Path):
    """A writer's Ctrl-C at step ~20 of a run that validates every 100,000 steps: the stop measures the weights it ends
    with, so the model kept (and the ghostwriting checkpoint) is the trained one, not the untrained start."""
    out = isolated_home / "models" / "m"
    args = ["finetune", str(pkd_slice), "--model", "char", "--size", "tiny", "--seed", "7", "--eval-every", "100000",
            "--max-steps", "100000", "--checkpoint-every", "10", "--ghostwriting-every", "1000", "--eval-samples", "2",
            "--name", "m"]
    stderr = _ctrl_c_after_step_20(args, out)
    stopped = _checkpoint_step(out)
    result = json.loads((out / "config.json").read_text())["result"]
    assert result["best_step"] == stopped > 0 and result["best_val"] < 3.5, stderr  # not the untrained step 0
    assert "did not learn" not in stderr
    assert result["ghostwriting_step"] == stopped
    assert read_jsonl(out / "history.jsonl")[-1]["val_loss"] == result["best_val"]
    assert json.loads(run_cli("models", "--json").stdout.splitlines()[0])["status"] == "interrupted"


def test_jsonl_rows_survive_unicode_line_separators(tmp_path: Path):
    from finetune.checkpoint import append_jsonl, truncate_jsonl

    path = tmp_path / "samples.jsonl"
    rows = [{"text": "one\u2028two\u0085three"}, {"text": "four"}, {"text": "five"}]
    append_jsonl(path, rows)
    assert read_jsonl(path) == rows
    truncate_jsonl(path, 2)
    assert read_jsonl(path) == rows[:2]


def test_a_target_met_before_the_first_step_still_leaves_a_full_model_dir(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    summary = _train(pkd_slice, out, target_loss=10.0, target_on="val", max_steps=50)
    assert summary.stop_reason == "target" and summary.steps == 0
    assert _checkpoint_step(out) == 0 and (out / "last" / "checkpoint.safetensors").exists()
    assert [r["step"] for r in read_jsonl(out / "history.jsonl")] == [0]


def test_resuming_a_finished_run_is_refused_before_any_work(trained_model: Path, pkd_slice: Path):
    """The run stopped at --max-steps: --resume says so in its one line, before the ghostwriting evaluation's set-up
    (the style classifier's line) or anything else is said or done."""
    before = (trained_model / "config.json").read_text()
    again = run_cli("finetune", str(pkd_slice), "--model", "char", "--out", str(trained_model), "--resume")
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert again.stderr.startswith("error: nothing to resume: training stopped at step 150")
    assert (trained_model / "config.json").read_text() == before


def test_limits_given_on_resume_replace_the_saved_ones(pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "m"
    _train(pkd_slice, out, max_steps=10, eval_every=5)
    with pytest.raises(UserError, match=r"nothing to resume: .* --max-time 0.001s of training; to go on"):
        _train(pkd_slice, out, max_time=0.001, resume=True)  # 10 steps took longer: nothing to do, and it says so
    summary = _train(pkd_slice, out, max_steps=15, resume=True)  # the old time limit does not hold this one back
    assert (summary.steps, summary.stop_reason) == (15, "max_steps")


def test_resuming_with_another_corpus_names_the_one_it_was_trained_on(trained_model: Path):
    with pytest.raises(UserError, match=r"tiny-pkd was trained on corpus 'pkd-slice\d*', not 'shakespeare'"):
        _train(Path("shakespeare"), trained_model, resume=True)


def test_replacing_writes_a_file_or_a_folder_whole_or_not_at_all(tmp_path: Path):
    """The one atomic-write helper: weights, checkpoints, caches and merged/ all go through it."""
    import stat

    from corpora.files import FILE_MODE, replacing

    def names() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(weights) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert weights.read_bytes() == b"old" and names() == ["model.safetensors"]  # no temporary left behind
    with replacing(weights) as tmp:
        tmp.write_bytes(b"new")
        tmp.chmod(0o600)  # as safetensors writes its files
    assert weights.read_bytes() == b"new" and stat.S_IMODE(weights.stat().st_mode) == FILE_MODE

    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "stale.json").write_text("{}")
    with pytest.raises(RuntimeError), replacing(merged) as tmp:
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-save")
    assert [p.name for p in merged.iterdir()] == ["stale.json"] and names() == ["merged", "model.safetensors"]
    with replacing(merged) as tmp:
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"w")
    assert [p.name for p in merged.iterdir()] == ["model.safetensors"]  # the old folder's files are gone with it
    assert stat.S_IMODE((merged / "model.safetensors").stat().st_mode) == FILE_MODE
    assert names() == ["merged", "model.safetensors"]


def test_a_killed_writers_temporary_goes_at_the_next_write_and_a_live_ones_stays(tmp_path: Path):
    from corpora.files import replacing

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    dead, live = (tmp_path / f".checkpoint.safetensors.{host}.{pid}.tmp" for pid in (int(gone.stdout), os.getppid()))
    elsewhere = tmp_path / f".checkpoint.safetensors.another-machine.{int(gone.stdout)}.tmp"  # a shared disk
    elsewhere.write_bytes(b"being written on another machine")
    dead.write_bytes(b"half of a checkpoint a kill -9 left")
    live.write_bytes(b"another process writing now")
    with replacing(tmp_path / "checkpoint.safetensors") as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["checkpoint.safetensors", live.name, elsewhere.name])


def test_a_corpus_too_small_warns_before_and_after_and_the_untrained_model_is_marked(tmp_path: Path,
                                                                                     isolated_home: Path):
    """A writer's short story whose last lines (a table of figures) are nothing like the rest: the validation loss
    only rises as the model learns the prose, so the weights kept are the untrained ones, and every place says so."""
    story = (CORPORA / "pkd" / "the-eyes-have-it.txt").read_text(encoding="utf-8-sig")
    start = story.index("It was quite by accident")
    corpus = tmp_path / "story.txt"
    corpus.write_text(story[start : start + 1500] + "\n\n" + "2093 4417 8820 1216 3379\n" * 6)
    args = ["finetune", str(corpus), "--model", "char", "--size", "tiny", "--batch-size", "8", "--seq-len", "16",
            "--eval-every", "10", "--max-steps", "30", "--seed", "7", "--ghostwriting-every", "0"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "too little to train a model from scratch: it needs at least 20,000" in err
    assert "the validation split is only" in err
    assert err.index("too little to train") < err.index("Before training")  # warned before the first step
    assert "at step 0" in err and "the model did not learn" in err and "`story-char@last`" in err
    rows = [json.loads(line) for line in run_cli("models", "--json").stdout.splitlines()]
    assert rows[0]["status"] == "max_steps, UNTRAINED (best at step 0)"
    again = run_cli(*args[:-6], "--resume")  # a finished run: say how to go on, change nothing
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "nothing to resume: training stopped at step 30 because it reached --max-steps 30" in again.stderr
    assert "--resume with a higher --max-steps" in " ".join(again.stderr.split())
    assert run_cli(*args[:-6], "--resume", "--max-steps", "40").returncode == 0


def test_enough_text_gives_no_size_warning(pkd_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from finetune.amount import TextAmounts, before_training

    assert before_training(TextAmounts(train_chars=780_000, val_chars=40_000, parameters=600_000, from_scratch=True)) == []
    assert before_training(TextAmounts(train_chars=5_000, val_chars=2_500, parameters=124_000_000, from_scratch=False)) == []
    big = before_training(TextAmounts(train_chars=50_000, val_chars=2_500, parameters=21_000_000, from_scratch=True))
    assert len(big) == 1 and "learn the text by heart" in big[0]


def test_a_log_line_says_how_old_its_validation_figure_is():
    import io

    from rich.console import Console

    log = io.StringIO()
    reporter = Reporter(Console(file=log, width=200))  # not a terminal: plain lines, as in a log file
    reporter.update(40, 40, 2.5, 2.4, 40, "1k chars/s", 10.0, force=True)
    reporter.update(47, 47, 2.3, 2.4, 40, "1k chars/s", 9.0, force=True)
    first, second = log.getvalue().splitlines()
    assert "| val 2.400 |" in first and "| val 2.400 (step 40) |" in second


@pytest.mark.parametrize("kind", ["char", "char-transformer"])
def test_cpu_bf16_trains_a_char_model_to_about_the_float32_loss_and_resumes_in_float32(kind: str, pkd_slice: Path,
                                                                                      tmp_path: Path):
    """bf16 products (the default on a CPU with bf16 in hardware) round differently and land near float32's losses;
    the weights and the carried state stay float32 on disk, so a bf16 run resumes with --no-cpu-bf16."""
    from finetune.device import cpu_has_native_bf16

    curves = {}
    for bf16 in (False, True, None):
        out = tmp_path / f"{kind}-{bf16}"
        finetune(FinetuneConfig(corpus=str(pkd_slice), model=kind, out=out, seed=7, max_steps=30, eval_every=10,
                                ghostwriting_every=0, options=CharOptions(size="tiny", cpu_bf16=bf16)), Reporter())
        curves[bf16] = [(r.get("train_loss"), r.get("val_loss")) for r in read_jsonl(out / "history.jsonl")]
    assert curves[None] == curves[cpu_has_native_bf16()]
    assert curves[True] != curves[False]
    pairs = [(a, b) for row_a, row_b in zip(curves[True], curves[False], strict=True)
             for a, b in zip(row_a, row_b, strict=True) if a is not None]
    assert pairs and max(abs(a - b) for a, b in pairs) < 0.05
    resumed = finetune(FinetuneConfig(corpus=str(pkd_slice), model=kind, out=tmp_path / f"{kind}-True", max_steps=40,
                                      resume=True, options=CharOptions(cpu_bf16=False)), Reporter())
    assert resumed.steps == 40 and resumed.val_loss < curves[True][-1][1] + 0.05
