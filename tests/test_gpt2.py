"""GPT-2 retraining end to end with a tiny GPT-2 and the real tokenizer, on the CPU, offline.

The base is the `gpt2_base` fixture: a save_pretrained directory passed with
--base, which is the code path a user with a local base takes; the hub name
`gpt2` goes through the same loader.
"""

import json
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from assistant import load_model
from corpora import UserError
from corpora.files import FILE_MODE
from finetune.checkpoint import read_jsonl
from finetune.config import FinetuneConfig
from finetune.progress import Reporter
from finetune.run import finetune
from finetune.summary import describe_summary
from kinds.gpt2.options import GPT2Options

from .conftest import GPT2_TINY, GPT2_TOKENIZER, run_cli

SHAPE = {"block_size": 32, "micro_batch": 4, "batch_tokens": 256}


def _train(corpus: Path, out: Path, base: Path, gpt2: dict | None = None, **kwargs):
    options = GPT2Options(base=str(base), **{**SHAPE, "lr": 3e-3, **(gpt2 or {})})
    bounds = {"eval_every": 10, "sample_every": 1000, **kwargs}
    config = FinetuneConfig(corpus=str(corpus), out=out, seed=7, options=options, **bounds)
    summary = finetune(config, Reporter())
    print(f"{out.name}: {summary.steps} steps, train {summary.train_loss}, val {summary.val_loss}")
    return summary


@pytest.fixture(scope="module")
def random_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained weights saved like a real base: what a silently ignored argument would hand a fine-tuning run."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("random-base")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=128)).save_pretrained(path)
    AutoTokenizer.from_pretrained(GPT2_TOKENIZER).save_pretrained(path)
    return path


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_full_finetune_reaches_the_target_and_loads_with_plain_transformers(gpt2_base: Path, pkd_slice: Path,
                                                                            tmp_path: Path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "pkd-gpt2"
    summary = _train(pkd_slice, out, gpt2_base, target_loss=6.6, max_steps=300, eval_samples=3)
    assert summary.stop_reason == "target" and summary.train_loss <= 6.6 and summary.steps < 300
    history = read_jsonl(out / "history.jsonl")
    vals = [r["val_loss"] for r in history if "val_loss" in r]
    assert history[0]["step"] == 0 and vals[-1] < vals[0] - 0.5  # validation loss falls
    lines = describe_summary(summary)
    assert "nats/token" in lines[1] and "bits/char" in lines[1]

    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "gpt2" and config["init"] == "pretrained" and config["base"] == str(gpt2_base)
    assert config["model_type"] == "gpt2" and config["lora"] is None
    assert config["split"]["how"] == "contiguous" and 2 < config["split"]["chars_per_token"] < 6
    assert {"model.safetensors", "tokenizer.json", "generation_config.json", "loss.svg"} <= {p.name for p in out.iterdir()}

    plain = AutoModelForCausalLM.from_pretrained(out).eval()  # the best validation loss's weights
    ours = load_model(f"{out}@best-val", "cpu", "none")  # float32, as saved: int8 would round the logits
    ids = ours.decoder.tokenizer.encode("The door opened and the robot")
    torch.testing.assert_close(_logits(plain, ids), _logits(ours.decoder.model, ids))
    chosen = load_model(out, "cpu", "none")  # the ghostwriting checkpoint, a folder plain transformers loads too
    assert chosen.card.checkpoint == "ghostwriting"
    plain_chosen = AutoModelForCausalLM.from_pretrained(out / "ghostwriting").eval()
    torch.testing.assert_close(_logits(plain_chosen, ids), _logits(chosen.decoder.model, ids))
    with safe_open(str(out / "last" / "checkpoint.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "model.transformer.wte.weight" in names and "model.lm_head.weight" not in names  # tied: saved once


def test_lora_trains_an_adapter_and_merges_it(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    summary = _train(pkd_slice, out, gpt2_base, {"lora": True, "lr": 3e-3, "merge": True}, target_loss=7.52,
                     target_on="val", max_steps=60, eval_samples=3)  # the base starts at 7.66 on this (unwrapped) text
    chosen = {p.name for p in (out / "ghostwriting").iterdir()}
    assert "adapter_model.safetensors" in chosen and "model.safetensors" not in chosen  # its checkpoints: adapters
    assert summary.stop_reason == "target"
    files = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "merged"} <= files and "model.safetensors" not in files
    with safe_open(str(out / "last" / "checkpoint.safetensors"), "pt") as f:
        model_keys = [k for k in set(f.keys()) if k.startswith("model.")]
    assert model_keys and all("lora_" in k for k in model_keys)  # the frozen base is not copied into checkpoints
    config = json.loads((out / "config.json").read_text())
    assert config["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "targets": "c_attn,c_proj", "merged": True}

    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(gpt2_base), out).eval()
    merged = AutoModelForCausalLM.from_pretrained(out / "merged").eval()
    ids = list(range(100, 120))
    torch.testing.assert_close(_logits(adapted, ids), _logits(merged, ids), atol=1e-4, rtol=1e-4)
    base_logits = _logits(AutoModelForCausalLM.from_pretrained(gpt2_base).eval(), ids)
    assert not torch.allclose(base_logits, _logits(merged, ids), atol=1e-3)
    assert load_model(out, "cpu").generate("The door", max_new_tokens=10, seed=1)
    merged_config = json.loads((out / "merged" / "config.json").read_text())
    assert merged_config["n_layer"] == 2 and not {"kind", "name", "corpus", "result"} & set(merged_config)  # not the base's
    for weights in ("adapter_model.safetensors", "merged/model.safetensors", "last/checkpoint.safetensors"):
        assert stat.S_IMODE((out / weights).stat().st_mode) == FILE_MODE  # readable like every other file
    with pytest.raises(UserError, match=r"nothing to resume: .* reached --target-loss 7.52; to go on, --resume with a lower"):
        _train(pkd_slice, out, gpt2_base, {"lora": True, "merge": True}, resume=True)  # a finished run says how to go on
    again = _train(pkd_slice, out, gpt2_base, {"lora": True, "merge": True}, resume=True, target_loss=1.0,
                   max_steps=summary.steps + 2, eval_samples=3)
    assert again.steps == summary.steps + 2 and (out / "merged" / "model.safetensors").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_lora_model_knows_when_its_base_has_changed(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    base, out = tmp_path / "base", tmp_path / "lora"
    shutil.copytree(gpt2_base, base)
    _train(pkd_slice, out, base, {"lora": True}, max_steps=2, eval_every=2, ghostwriting_every=0)
    changed = AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        changed.transformer.wte.weight.mul_(1.01)  # the base trained on a little, say
    changed.save_pretrained(base)
    with pytest.raises(UserError, match="has changed since lora was trained"):
        _train(pkd_slice, out, base, {"lora": True}, max_steps=4, resume=True)
    with pytest.warns(UserWarning, match="has changed since lora was trained"):
        load_model(out, "cpu")


def test_batch_tokens_below_one_pass_shrink_the_micro_batch():
    from kinds.gpt2.hparams import resolve

    hp = resolve(GPT2Options(block_size=32, batch_tokens=64), 1024, torch.device("cpu"))
    assert (hp.micro_batch, hp.grad_accum) == (2, 1)
    hp = resolve(GPT2Options(micro_batch=16), 1024, torch.device("cpu"))  # a micro-batch alone sets the step
    assert (hp.micro_batch, hp.grad_accum) == (16, 1)
    with pytest.raises(UserError, match="--micro-batch 4 blocks of 32 tokens is more than --batch-tokens 64"):
        resolve(GPT2Options(block_size=32, micro_batch=4, batch_tokens=64), 1024, torch.device("cpu"))


class StopAtStep(Reporter):
    """Presses Ctrl-C (a real SIGINT) once the run reports a given step."""

    def __init__(self, step: int):
        super().__init__()
        self.at = step

    def update(self, completed: int, step: int, *args, **kwargs) -> None:
        super().update(completed, step, *args, **kwargs)
        if step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_resume_is_exact(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    """Without the ghostwriting evaluation, three quarters of these runs' time; it draws from its own seeded
    generator, and a char run's resume is exact with it on (tests/test_training.py)."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    options = GPT2Options(base=str(gpt2_base), **SHAPE, lr=3e-3, dropout=0.1)
    for out, reporter in ((straight, Reporter()), (stopped, StopAtStep(4))):
        summary = finetune(FinetuneConfig(corpus=str(pkd_slice), out=out, seed=7, max_steps=8, eval_every=3,
                                          sample_every=1000, ghostwriting_every=0, options=options), reporter)
    assert summary.stop_reason == "interrupted" and summary.steps == 5
    finetune(FinetuneConfig(corpus=str(pkd_slice), out=stopped, resume=True), Reporter())

    def losses(path: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("units_per_s", "elapsed")} for r in read_jsonl(path / "history.jsonl")]

    # the stop measured the weights it ended with, off the schedule (every stop does): step 5's validation is extra
    extra = [{k: v for k, v in r.items() if not (r["step"] == 5 and k == "val_loss")} for r in losses(stopped)]
    assert losses(stopped)[5]["val_loss"] is not None
    assert losses(straight) == extra and len(losses(straight)) == 9
    a, b = (load_model(f"{path}@last", "cpu", "none").decoder.model.state_dict() for path in (straight, stopped))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_token_cache_makes_the_second_run_skip_tokenizing(gpt2_base: Path, pkd_slice: Path, tmp_path: Path,
                                                           isolated_home: Path, monkeypatch: pytest.MonkeyPatch):
    from kinds.gpt2 import data

    monkeypatch.chdir(gpt2_base.parent)  # a base given by a relative path is recorded by its absolute one
    _train(pkd_slice, tmp_path / "a", Path(gpt2_base.name), max_steps=1, ghostwriting_every=0)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["base"] == str(gpt2_base)
    [cache] = (isolated_home / "corpora" / "tokens").iterdir()
    stamp = cache.stat().st_mtime_ns
    _train(pkd_slice, tmp_path / "b", gpt2_base, {"split": "document"}, max_steps=1, ghostwriting_every=0)
    assert cache.stat().st_mtime_ns == stamp
    tokens = data.tokenize(__import__("corpora").load_corpus(str(pkd_slice)), load_model(gpt2_base, "cpu").decoder.tokenizer)
    assert tokens.ids.dtype.name == "uint16" and tokens.ids[0] == 50256 and len(tokens.starts) == 2
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["split"]["how"] == "document" and len(config["split"]["val_documents"]) == 1


def test_a_random_base_is_refused_unless_from_scratch(random_base: Path, pkd_slice: Path, tmp_path: Path):
    out = tmp_path / "oops"
    with pytest.raises(UserError, match=r"starts at validation loss 1\d\.\d\d nats/token.*--from-scratch"):
        _train(pkd_slice, out, random_base, max_steps=2)
    assert not out.exists()  # nothing half-made to clean up

    result = run_cli("finetune", str(pkd_slice), "--from-scratch", "--base", str(random_base), "--n-layer", "1",
                     *GPT2_TINY, "--max-steps", "2", "--ghostwriting-every", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "FROM SCRATCH" in result.stderr.split("Before training")[0]
    config = json.loads((out / "config.json").read_text())
    assert config["init"] == "scratch" and config["n_layer"] == 1


@pytest.mark.parametrize(
    ("base", "fragment"),
    [
        ("no-such-user/no-such-model", "cannot load the tokenizer of base model 'no-such-user/no-such-model'"),
        ("./no/such/dir", "is not a directory saved with save_pretrained"),
        (str(GPT2_TOKENIZER), "cannot load the weights"),  # a tokenizer and config, but no weights
    ],
)
def test_a_missing_base_is_a_one_line_error(pkd_slice: Path, tmp_path: Path, base: str, fragment: str):
    result = run_cli("finetune", str(pkd_slice), "--base", base, "--max-steps", "1", "--out", str(tmp_path / "m"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert fragment in result.stderr and not (tmp_path / "m").exists()


def test_gpt2_default_base_offline_says_how_to_provide_it(pkd_slice: Path):
    result = run_cli("finetune", str(pkd_slice), "--target-loss", "2")
    assert result.returncode == 2 and "base model 'gpt2'" in result.stderr and "--base PATH" in result.stderr
    # and the writer's way out: train a char model now, or fetch gpt2 once while online
    assert "HF_HUB_OFFLINE=1 forbids" in result.stderr and "run this again while online" in result.stderr
    assert "add --model char" in result.stderr


def test_generation_streams_and_respects_lengths_stops_and_seeds(gpt2_base: Path):
    model = load_model(gpt2_base, "cpu")
    assert model.kind == "gpt2"
    a = model.generate("The robot said", max_new_tokens=20, seed=4)
    assert a == model.generate("The robot said", max_new_tokens=20, seed=4) != model.generate("The robot said",
                                                                                              max_new_tokens=20, seed=5)
    assert 0 < len(model.decoder.tokenizer.encode(a)) <= 20
    pieces = list(model.stream("", max_new_chars=100, seed=2))
    assert len(pieces) > 3 and len("".join(pieces)) <= 100
    full = model.generate("", max_new_chars=300, seed=2)
    stop = full[40:43]
    cut = model.generate("", max_new_chars=300, seed=2, stop=[stop])
    assert stop not in cut and full.startswith(cut)
    assert model.generate("x", max_new_chars=30, temperature=0) == model.generate("x", max_new_chars=30, top_k=1, seed=9)


def test_a_long_generation_slides_past_the_context_window(random_base: Path):
    model = load_model(random_base, "cpu")  # a plain save_pretrained directory: a base, used as it is
    assert model.decoder.n_ctx == 128 and model.name == str(random_base)
    text = model.generate("", max_new_tokens=300, seed=1)
    assert len(model.decoder.tokenizer.encode(text)) > 200


def test_generate_cli_with_tokens_and_an_unknown_base(gpt2_base: Path):
    ok = run_cli("generate", str(gpt2_base), "-p", "The door", "--tokens", "8", "--seed", "1")
    assert ok.returncode == 0 and ok.stdout.startswith("The door") and len(ok.stdout) > len("The door\n")
    bad = run_cli("generate", "gpt2")
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot load the configuration of base model 'gpt2'")
    assert "Hugging Face cache" in bad.stderr and "write with a model you trained" in bad.stderr


def test_a_from_scratch_shape_that_does_not_fit_is_a_clear_error(pkd_slice: Path, tmp_path: Path):
    with pytest.raises(UserError, match=r"cannot build that GPT-2 \(n_embd 100, n_head 12\)"):
        _train(pkd_slice, tmp_path / "m", GPT2_TOKENIZER, {"from_scratch": True, "n_layer": 1, "n_embd": 100}, max_steps=1)


def test_a_corpus_shorter_than_two_blocks_is_a_clear_error(gpt2_base: Path, tmp_path: Path):
    (tmp_path / "story.txt").write_text("The robot looked at the man and said nothing at all. " * 40)
    with pytest.raises(UserError, match=r"corpus too short for --block-size 1024: .* lower --block-size"):
        _train(tmp_path / "story.txt", tmp_path / "m", gpt2_base, dict.fromkeys(("block_size", "batch_tokens", "micro_batch")),
               max_steps=1)
    assert not (tmp_path / "m").exists()


def test_gradient_checkpointing_trains_the_same_model(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    plain, checkpointed = tmp_path / "plain", tmp_path / "checkpointed"
    _train(pkd_slice, plain, gpt2_base, {"dropout": 0.0}, max_steps=3, eval_every=3, ghostwriting_every=0)
    _train(pkd_slice, checkpointed, gpt2_base, {"dropout": 0.0, "grad_checkpointing": True}, max_steps=3, eval_every=3,
           ghostwriting_every=0)
    assert json.loads((checkpointed / "config.json").read_text())["hparams"]["grad_checkpointing"] is True
    losses = [[r["train_loss"] for r in read_jsonl(p / "history.jsonl") if "train_loss" in r] for p in (plain, checkpointed)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_the_padded_output_layer_gives_the_loss_and_gradients_of_the_plain_one():
    from transformers import GPT2Config, GPT2LMHeadModel

    from kinds.gpt2.loss import next_token_loss

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=64)).eval()  # no dropout; 50,257 tokens
    x, y = torch.randint(0, 50257, (2, 2, 16))
    results = []
    for pad_to in (None, 1, 64):  # None: transformers' own logits
        model.zero_grad()
        if pad_to is None:
            loss = torch.nn.functional.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())
        else:
            hidden = model.transformer(input_ids=x).last_hidden_state
            loss = next_token_loss(hidden, model.lm_head, y, pad_to)
        loss.backward()
        results.append((loss.detach(), model.transformer.wte.weight.grad.clone()))
    for loss, grad in results[1:]:
        assert torch.allclose(loss, results[0][0], rtol=1e-6)
        assert torch.allclose(grad, results[0][1], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("extra", [{}, {"lora": True}, {"grad_checkpointing": True}], ids=["full", "lora", "checkpointed"])
def test_the_compiled_training_step_has_no_graph_breaks(gpt2_base: Path, pkd_slice: Path, extra: dict):
    """torch.compile (on by default on a GPU) speeds up only what it can trace in one graph; a break costs speed."""
    from corpora import load_corpus
    from kinds.gpt2.train import GPT2Adapter

    adapter = GPT2Adapter(load_corpus(str(pkd_slice)), GPT2Options(base=str(gpt2_base), **SHAPE, **extra), 7,
                          torch.device("cpu"))
    adapter._pad_to = 64  # as on a GPU, under autocast as there
    x, y = adapter.data.batch(7, 0, 0)
    torch._dynamo.reset()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explained = torch._dynamo.explain(adapter._block_loss)(x, y)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    # and every layer's attention is SDPA's causal one, with no mask tensor (which would rule out flash attention)
    graphs = [m.graph for m in explained.graphs[0].modules() if isinstance(m, torch.fx.GraphModule)]  # checkpointed
    attention = [n for g in graphs for n in g.nodes if "scaled_dot_product_attention" in str(n.target)]  # layers too
    assert len(attention) == adapter.hf_config["n_layer"]
    assert all(n.kwargs.get("is_causal") is True and n.kwargs.get("attn_mask") is None for n in attention)


def test_under_autocast_the_residual_stream_is_bf16_and_the_loss_barely_moves(gpt2_base: Path, pkd_slice: Path):
    """Half the bytes for every residual add and LayerNorm on a GPU; float32 training (a CPU's) is untouched."""
    from corpora import load_corpus
    from kinds.gpt2.train import GPT2Adapter

    adapter = GPT2Adapter(load_corpus(str(pkd_slice)), GPT2Options(base=str(gpt2_base), **SHAPE), 7, torch.device("cpu"))
    adapter.model.eval()
    seen = []
    adapter._body.h[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    x, y = adapter.data.batch(7, 0, 0)
    with torch.no_grad():
        exact = adapter._block_loss(x, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = adapter._block_loss(x, y)
    assert seen == [torch.float32, torch.bfloat16]
    assert float(mixed) == pytest.approx(float(exact), rel=2e-2)


def test_a_lora_adapted_output_layer_is_trained_through_its_adapter(gpt2_base: Path, pkd_slice: Path):
    from corpora import load_corpus
    from kinds.gpt2.train import GPT2Adapter

    options = GPT2Options(base=str(gpt2_base), **SHAPE, lora=True, lora_targets="c_attn,lm_head")
    adapter = GPT2Adapter(load_corpus(str(pkd_slice)), options, 7, torch.device("cpu"))
    adapter._pad_to = 64
    adapter.model.eval()  # no dropout: the two losses must agree
    head_b = next(p for n, p in adapter.model.named_parameters() if "lm_head.lora_B" in n)
    with torch.no_grad():
        head_b.normal_()  # as if trained: the adapter now changes the logits
    x, y = adapter.data.batch(7, 0, 0)
    loss = adapter._block_loss(x, y)
    expected = torch.nn.functional.cross_entropy(adapter.model(input_ids=x).logits.flatten(0, 1), y.flatten())
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert head_b.grad is not None and head_b.grad.abs().sum() > 0


def test_cpu_bf16_runs_the_products_in_bf16_and_trains_to_about_the_float32_loss(gpt2_base: Path, pkd_slice: Path,
                                                                                  tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture):
    from finetune.device import cpu_has_native_bf16

    curves = {}
    for bf16 in (False, True, None):
        out = tmp_path / f"bf16-{bf16}"
        _train(pkd_slice, out, gpt2_base, {"lora": True, "cpu_bf16": bf16, "dropout": 0.0}, max_steps=4, eval_every=2,
               ghostwriting_every=0)
        curves[bf16] = [(r.get("train_loss"), r.get("val_loss")) for r in read_jsonl(out / "history.jsonl")]
        if bf16:
            assert json.loads((out / "config.json").read_text())["training"]["options"]["cpu_bf16"] is True
    assert curves[None] == curves[cpu_has_native_bf16()]  # the default: bf16 where the CPU has it in hardware
    assert curves[True] != curves[False]  # bf16 products round differently...
    pairs = [(a, b) for row_a, row_b in zip(curves[True], curves[False], strict=True)
             for a, b in zip(row_a, row_b, strict=True) if a is not None]
    assert pairs and max(abs(a - b) for a, b in pairs) < 0.05  # ...to about the same losses
    assert "bf16 products" in capsys.readouterr().err  # the first line of the bf16 run says so
    _train(pkd_slice, tmp_path / "bf16-True", gpt2_base, {"cpu_bf16": False}, max_steps=6, eval_every=2,
           ghostwriting_every=0, resume=True)  # the precision may change on resume: the weights are float32
    told = capsys.readouterr().err
    assert "Resuming at step 4" in told and "bf16 products" not in told


def test_the_ghostwriting_evaluation_writes_a_gpt2_through_the_chain(gpt2_base: Path, pkd_slice: Path, tmp_path: Path):
    """`finetune --max-copy N` on a GPT-2: its evaluation during training writes through the generation API's loop over
    the weights being trained (neither cast nor moved), so no sample holds more than N characters of the corpus, and
    training goes on from the same weights."""
    out = tmp_path / "guarded"
    summary = _train(pkd_slice, out, gpt2_base, max_steps=2, eval_every=2, ghostwriting_every=1, eval_samples=2,
                     copy_span=13, sampling={"max_copy": 12, "dry_multiplier": 0.8})
    assert summary.steps == 2
    card = json.loads((out / "config.json").read_text())
    assert card["ghostwriting"]["chain"] == {"max_copy": 12, "dry_multiplier": 0.8}
    rows = [r for r in read_jsonl(out / "history.jsonl") if "copying" in r]
    assert len(rows) >= 2 and all(r["copying"] == 0 and (r["copied_span"] or 0) <= 12 for r in rows)
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert all(weights.get_tensor(k).dtype == torch.float32 for k in weights.keys())  # noqa: SIM118 (safe_open is not iterable)
