"""A char-LSTM step's streams shared out between the CPU's cores (finetune.cores): the same training as one thread
gives, repeatable, on threads that really run side by side."""

import threading
from pathlib import Path

import pytest
import torch

from corpora import load_corpus
from finetune.cores import Cores, shares_for
from kinds.charlstm.presets import CharHParams
from kinds.charlstm.train import CharLSTMAdapter

CPU = torch.device("cpu")
HP = CharHParams(2, 48, 0.0, 16, 32, 3e-3, 0, 0, 0, 0)


def _adapter(corpus: Path, shares: int, hp: CharHParams = HP) -> CharLSTMAdapter:
    torch.manual_seed(0)  # the same first weights for every adapter
    return CharLSTMAdapter(load_corpus(str(corpus)), "tiny", hp, seed=3, device=CPU, shares=shares)


def _steps(adapter: CharLSTMAdapter, n: int) -> list[float]:
    """n plain Adam steps as the core takes them (loss, backward, step); their losses."""
    optimizer = torch.optim.Adam(adapter.model.parameters(), lr=adapter.hp.lr)
    losses = []
    for _ in range(n):
        loss = adapter.train_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_shared_steps_train_as_one_thread_does(pkd_slice: Path):
    one, two = _adapter(pkd_slice, 1), _adapter(pkd_slice, 2)
    assert two.cores.n == 2
    assert _steps(two, 4) == pytest.approx(_steps(one, 4), rel=1e-5)
    for (name, a), b in zip(one.model.named_parameters(), two.model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    assert one.state is not None and two.state is not None
    for a, b in zip(one.state, two.state, strict=True):  # every stream's state carried to the next window
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    for max_units in (10**9, 40):  # the whole split, and a split too short to give every share a stream
        assert two.evaluate("val", max_units) == pytest.approx(one.evaluate("val", max_units), rel=1e-6)
    assert two.model.training  # the evaluation put the model back as it found it


def test_shared_steps_repeat_exactly(pkd_slice: Path):
    """Gradients are summed in share order, not as threads finish: a resumed run retraces the one it resumes."""
    first, second = _adapter(pkd_slice, 2), _adapter(pkd_slice, 2)
    assert _steps(first, 3) == _steps(second, 3)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_each_share_runs_on_its_own_thread_with_one_intra_op_thread():
    caller = torch.get_num_threads()
    cores = Cores(2)
    assert torch.get_num_threads() == caller  # the process's own count is left as it was
    together = threading.Barrier(2, timeout=10)  # broken, not passed, if the shares ran one after the other

    def share(i: int) -> tuple[int, int]:
        together.wait()
        return threading.get_ident(), torch.get_num_threads()

    (first, one), (second, other) = cores.map(share)
    assert first != second and first != threading.get_ident()
    assert one == other == 1


def test_a_batch_is_shared_between_as_many_cores_as_divide_it_with_enough_streams_each():
    assert shares_for(CPU, 64, threads=2) == 2
    assert shares_for(CPU, 64, threads=8) == 4  # 16 streams each at least
    assert shares_for(CPU, 48, threads=4) == 3
    assert shares_for(CPU, 40, threads=4) == 2  # 40 streams do not split in 3
    assert shares_for(CPU, 16, threads=4) == 1
    assert shares_for(torch.device("meta"), 64, threads=4) == 1  # a GPU runs the whole batch at once


def test_a_model_with_dropout_is_not_shared(pkd_slice: Path):
    """Its masks come from the one generator: shares drawing in whatever order they ran would not repeat."""
    from dataclasses import replace

    corpus = load_corpus(str(pkd_slice))
    assert CharLSTMAdapter(corpus, "tiny", replace(HP, dropout=0.1), 3, CPU).cores.n == 1
    assert CharLSTMAdapter(corpus, "tiny", HP, 3, CPU).cores.n == shares_for(CPU, HP.batch_size)
