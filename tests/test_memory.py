"""--micro-batch auto: the search for the largest micro-batch a GPU holds, run on a CPU against a fake card."""

from pathlib import Path

import pytest
import torch

from corpora import UserError, load_corpus
from finetune import memory
from finetune.distributed import SINGLE
from kinds.gpt2.options import GPT2Options
from kinds.gpt2.train import GPT2Adapter

from .conftest import GPT2_TOKENIZER

# a new 1-layer GPT-2 with the real tokenizer; 512 tokens per step are 16 blocks of 32
TINY = {"base": str(GPT2_TOKENIZER), "from_scratch": True, "n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 32,
        "batch_tokens": 512}


def test_the_search_takes_the_largest_divisor_of_the_step_that_fits():
    tried: list[int] = []

    def holds(most: int) -> memory.Probe:
        def fits(blocks: int) -> bool:
            tried.append(blocks)
            return blocks <= most
        return fits

    assert memory.largest_fitting(holds(100), 32) == 32 and tried == [32]  # a large card: one try
    tried.clear()
    assert memory.largest_fitting(holds(12), 32) == 8 and len(tried) <= 4  # divisors only: the step keeps its size
    assert memory.largest_fitting(holds(11), 24) == 8  # 24's divisors: 1 2 3 4 6 8 12 24
    assert memory.largest_fitting(holds(1), 32) == 1
    assert memory.largest_fitting(holds(0), 32) == 0


def test_the_probe_answers_out_of_memory_and_leaves_the_random_state_as_it_was():
    def one_pass(blocks: int) -> None:
        torch.rand(blocks)  # draws from the global generator, as dropout does
        if blocks > 8:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {blocks} GiB")

    fits = memory.out_of_memory_probe(one_pass, torch.device("cpu"), reserve_bytes=1024)
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    assert fits(8) and not fits(16)
    assert torch.equal(torch.rand(4), expected)
    with pytest.raises(ValueError):  # anything but running out of memory is a real failure, not a "no"
        memory.out_of_memory_probe(lambda blocks: int("x"), torch.device("cpu"), 0)(1)

    def library_fails(message: str):
        def one_pass(blocks: int) -> None:
            raise RuntimeError(message)
        return memory.out_of_memory_probe(one_pass, torch.device("cpu"), 0)

    # cuBLAS or cuDNN running out raises a plain RuntimeError: still a "no"; another RuntimeError is still a failure
    assert not library_fails("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")(1)
    assert not library_fails("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")(1)
    assert not library_fails("CUDA error: out of memory")(1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        library_fails("size mismatch, m1: [4 x 3], m2: [2 x 2]")(1)
    assert memory.probe(one_pass, torch.device("cpu"), 0) is None  # a CPU is never probed


class FakeCard:
    """A GPU of `blocks` blocks' memory: each probe runs the adapter's real training pass on the CPU, then runs out
    of memory if the card could not have held it."""

    def __init__(self, blocks: int):
        self.blocks = blocks
        self.passes: list[int] = []
        self.held: list[int] = []

    def probe(self, one_pass, device: torch.device, reserve_bytes: int) -> memory.Probe:
        def on_card(blocks: int) -> None:
            one_pass(blocks)
            self.passes.append(blocks)
            if blocks > self.blocks:
                raise torch.OutOfMemoryError("CUDA out of memory")

        self.held.append(reserve_bytes)
        return memory.out_of_memory_probe(on_card, device, reserve_bytes)


def test_a_gpt2_run_takes_as_many_blocks_per_pass_as_the_card_holds(pkd_slice: Path, monkeypatch: pytest.MonkeyPatch):
    corpus = load_corpus(str(pkd_slice))
    card = FakeCard(blocks=5)
    monkeypatch.setattr(memory, "probe", card.probe)
    adapter = GPT2Adapter(corpus, GPT2Options(**TINY), 7, torch.device("cpu"))
    adapter.fit_memory(SINGLE)  # as finetune calls it, on every rank once all have made their adapter
    assert (adapter.hp.micro_batch, adapter.hp.grad_accum, adapter.data.micro_batch) == (4, 4, 4)
    assert adapter.units_per_step == 512 and adapter.grad_accum == 4
    assert card.passes[0] == 16 and set(card.passes) <= {1, 2, 4, 8, 16}
    trained = sum(p.numel() for p in adapter.model.parameters() if p.requires_grad)
    assert card.held == [2 * 4 * trained]  # AdamW's two float32 moments of every trained weight
    assert all(p.grad is None for p in adapter.model.parameters())  # the probe's gradients are not the first step's
    assert torch.isfinite(adapter.train_loss())
    # what is said when it runs out all the same: passes a resume takes, a new run's shapes only without a checkpoint
    passes = "--micro-batch 2 (this run passes 4 blocks at a time) or --resume --grad-checkpointing"
    assert memory.advice(adapter.less_memory(), checkpoint=True, written=True) == f"continue with --resume {passes}"
    new_run = "--micro-batch 2 (this run passes 4 blocks at a time) or --grad-checkpointing or --lora or a smaller --block-size"
    assert memory.advice(adapter.less_memory(), checkpoint=False, written=True) == f"start again with --force and {new_run}"
    assert memory.advice(adapter.less_memory(), checkpoint=False, written=False) == f"run it again with {new_run}"

    given = FakeCard(blocks=5)
    monkeypatch.setattr(memory, "probe", given.probe)
    adapter = GPT2Adapter(corpus, GPT2Options(**TINY, micro_batch=8), 7, torch.device("cpu"))
    adapter.fit_memory(SINGLE)
    assert adapter.hp.micro_batch == 8 and given.passes == []  # the writer's number is taken as it is

    monkeypatch.setattr(memory, "probe", FakeCard(blocks=0).probe)
    with pytest.raises(UserError, match="does not fit in this GPU's memory even one block of 32 tokens"):
        GPT2Adapter(corpus, GPT2Options(**TINY), 7, torch.device("cpu")).fit_memory(SINGLE)


def test_a_run_out_of_memory_resumes_on_a_smaller_card_and_trains_as_if_uninterrupted(
        pkd_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A pass too big for the card stops the run in one line, saying how to go on; resumed on a card that holds less,
    --micro-batch auto measures that card again: the step keeps its blocks, only its passes change, and the losses
    are the uninterrupted run's."""
    from contract.modeldir import read
    from finetune.checkpoint import read_jsonl
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune

    def run(out: Path, card: FakeCard, resume: bool = False, **given) -> object:
        monkeypatch.setattr(memory, "probe", card.probe)
        options = GPT2Options(**TINY, dropout=0.0, cpu_bf16=False, **given)  # no mask or rounding differs by pass
        return finetune(FinetuneConfig(corpus=str(pkd_slice), out=out, seed=7, max_steps=6, eval_every=3,
                                       sample_every=1000, checkpoint_every=1, ghostwriting_every=0, resume=resume,
                                       options=options), Reporter())

    def losses(out: Path) -> list[float]:
        return [r["train_loss"] for r in read_jsonl(out / "history.jsonl") if "train_loss" in r]

    run(tmp_path / "straight", FakeCard(blocks=16))
    real, calls = GPT2Adapter.train_loss, []

    def fourth_runs_out(self):
        calls.append(1)
        if len(calls) == 4:  # cuBLAS failing to allocate raises a plain RuntimeError
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
        return real(self)

    monkeypatch.setattr(GPT2Adapter, "train_loss", fourth_runs_out)
    cut = tmp_path / "cut"
    with pytest.raises(UserError, match=r"ran out of cpu memory after step 3; the last good checkpoint is intact in .*: "
                                        r"continue with --resume --micro-batch 8 \(this run passes 16 blocks at a "
                                        r"time\) or --resume --grad-checkpointing"):
        run(cut, FakeCard(blocks=16))
    monkeypatch.setattr(GPT2Adapter, "train_loss", real)
    assert len(losses(cut)) == 3

    with pytest.raises(UserError, match=r"--micro-batch 5 does not divide this run's step of 16 blocks: give one of "
                                        r"1, 2, 4, 8, 16"):
        run(cut, FakeCard(blocks=4), resume=True, micro_batch=5)
    run(cut, FakeCard(blocks=4), resume=True, grad_checkpointing=True)  # a smaller card, and checkpointing turned on
    saved = read(cut)
    assert (saved.hparams["micro_batch"], saved.hparams["grad_accum"]) == (4, 4)
    assert saved.hparams["grad_checkpointing"] and saved.training["options"]["grad_checkpointing"]
    torch.testing.assert_close(losses(cut), losses(tmp_path / "straight"), rtol=1e-5, atol=1e-5)
