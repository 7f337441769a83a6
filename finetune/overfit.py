"""When a model starts to memorize its corpus, told from its evaluations alone.

Pure Python on the numbers history.jsonl keeps, so the training core's warning
and the pictures (`finetune.plot`) read memorization the same way, and a
picture needs no torch.
"""

OVERFIT_MARGIN = 0.01  # validation loss this much (relative) above its best is no longer noise


def memorizing(evals: list[list[float]], best_step: int, best_val: float, patience: int) -> tuple[list, list] | None:
    """The evaluations that show memorization, (the one at or after the best, the latest), or None.

    `evals` holds [step, smoothed training loss, validation loss]. Memorizing: `patience` evaluations since
    the best validation loss, the latest clearly above it (OVERFIT_MARGIN) and still rising, training loss
    lower than at the best. Validation loss need not rise at every evaluation: it jitters on its way up, and
    a rule that waited for `patience` rises in a row warned a GPU run 1,500 steps after its best. It must be
    rising at the latest one: a loss coming back down from a bump (a learning-rate warm-up's, say) is
    learning again.
    """
    reference = next((e for e in evals if e[0] >= best_step), None)
    since = [e for e in evals if e[0] > best_step]
    if reference is None or len(since) < patience or len(evals) < 2:
        return None
    previous, last = evals[-2], evals[-1]
    if last[2] > best_val * (1 + OVERFIT_MARGIN) and last[2] >= previous[2] and last[1] < reference[1]:
        return reference, last
    return None


def memorizing_step(history: list[dict], patience: int) -> int | None:
    """The step at which a run's evaluations first showed memorization (where training warned), or None.

    The history is replayed evaluation by evaluation, the best so far kept as the trainer keeps it.
    """
    evals: list[list[float]] = []
    best_val: float | None = None
    best_step = 0
    for row in history:
        val = row.get("val_loss")
        if val is None:
            continue
        if row.get("train_smooth") is not None:  # the untrained model's evaluation (step 0) is the first best only
            evals.append([row["step"], row["train_smooth"], val])
        if best_val is None or val < best_val:
            best_val, best_step = val, row["step"]
        elif memorizing(evals, best_step, best_val, patience) is not None:
            return row["step"]
    return None
