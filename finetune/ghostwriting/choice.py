"""Which checkpoint ghostwrites: the figures' uncertainty, and a choice that respects it.

Copying, style and prompt-following are shares of a few dozen samples, so one
sample in 32 moves a share by three points. A choice made on the point values
follows that noise: a checkpoint whose style read 100% against 97% was kept
over one 0.075 nats/char better. So every share carries its Wilson score
interval (95%), and the rule reads the intervals:

1. A checkpoint is out when its copying is credibly over the limit (the whole
   interval above `--max-copying`), or when its style or its prompt-following
   is credibly below the best checkpoint's (its interval ends below where the
   best one's begins). The best is taken among the checkpoints that do not
   copy credibly: copying raises the style score, and must not set the bar.
2. Of the checkpoints left, the lowest validation loss wins. So when the
   figures agree within their noise, the ghostwriting checkpoint is the
   best-val one.

The starting weights (step 0) are measured for the curves, never chosen.
"""

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

Z = 1.96  # a 95% interval
SHARES = ("copying", "style", "prompt_following")  # the figures that are shares of samples
NAMES = {"copying": "copying", "style": "style", "prompt_following": "prompt-following"}


def wilson(share: float, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a share of n trials: unlike share ± z·se, it stays inside [0, 1] and is not
    empty at 0% or 100%, where a checkpoint's figures often sit."""
    if n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def interval(row: dict, key: str) -> tuple[float, float] | None:
    """A row's interval for a share: the one it records, else (older rows) the point value as a zero-width one."""
    if row.get(key) is None:
        return None
    found = row.get(f"{key}_ci")
    return (found[0], found[1]) if found else (row[key], row[key])


def share_text(row: dict, key: str) -> str:
    """'97% (84-99%)' with an en dash: a share with its interval, as the log, `report` and `compare` print it."""
    value = row.get(key)
    if value is None:
        return "-"
    found = row.get(f"{key}_ci")
    return f"{value:.0%}" + (f" ({found[0]:.0%}–{found[1]:.0%})" if found else "")


def evaluated(rows: Iterable[dict]) -> list[dict]:
    """A history's rows by step, those of one step merged: a checkpoint measured after later steps (the best-val
    weights, when the budget let them wait) logs its figures in a row of its own."""
    merged: dict[int, dict] = {}
    for row in rows:
        merged.setdefault(row["step"], {}).update(row)
    return [merged[step] for step in sorted(merged)]


@dataclass(frozen=True)
class Choice:
    """The rule's outcome: the step chosen (None: every candidate is out) and why each other checkpoint is out."""

    step: int | None
    out: dict[int, str]  # step -> the reason it was left out, in words with numbers


def choose(rows: Iterable[dict], max_copying: float, held: Collection[int] | None = None) -> Choice:
    """The ghostwriting checkpoint among measured `rows` (step, val_loss and figures), by the rule above.

    `held`: the steps whose weights can still be had (a run keeps the chosen
    checkpoint's and the ones in memory); the bars are set by every row, the
    choice is made among these. None: any.
    """
    measured = [r for r in rows if r["step"] > 0 and any(r.get(k) is not None for k in SHARES)]
    out: dict[int, str] = {}
    for r in measured:
        copying = interval(r, "copying")
        if copying is not None and copying[0] > max_copying:
            out[r["step"]] = f"copying is {share_text(r, 'copying')}, over the {max_copying:.0%} limit"
    fair = [r for r in measured if r["step"] not in out]
    for key in ("style", "prompt_following"):
        scored = [r for r in fair if r.get(key) is not None]
        if not scored:
            continue
        best = max(scored, key=lambda r: (r[key], -r["val_loss"]))
        bar = interval(best, key)[0]
        for r in scored:
            if r["step"] not in out and interval(r, key)[1] < bar:
                out[r["step"]] = (f"{NAMES[key]} is {share_text(r, key)}, credibly below step {best['step']}'s "
                                  f"{share_text(best, key)}")
    left = [r for r in fair if r["step"] not in out and (held is None or r["step"] in held)]
    chosen = min(left, key=lambda r: (r["val_loss"], r["step"]), default=None)
    return Choice(chosen["step"] if chosen else None, out)


def explain(choice: Choice, chosen: int | None, best_step: int | None) -> str:
    """The summary's one line on the ghostwriting checkpoint (`chosen`, what the run kept) against best-val."""
    if chosen is not None and chosen == best_step:
        return f"the ghostwriting checkpoint is the best-val one (step {best_step})"
    why = choice.out.get(best_step) if best_step is not None else None
    because = f"at {best_step} {why}" if why else f"best-val step {best_step} was not measured"
    if chosen is None:
        return f"no checkpoint qualifies as the ghostwriting one ({because}); the model writes with best-val"
    return f"step {chosen} instead of best-val {best_step}: {because}"
