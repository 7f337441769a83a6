"""Every picture of a run, drawn with matplotlib: the loss curves, the ghostwriting report's panels, gate saturation.

One module draws them all, so the picture in a model directory (`loss.svg`,
redrawn as training goes), `assistant plot` and `assistant report` look
alike and read history.jsonl the same way. matplotlib is imported only inside
the drawing functions: `assistant --help` and training's import never load
it, and a run loads it the first time it draws.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.modeldir import Card
from corpora import UserError
from corpora.files import write_bytes

from .ghostwriting.choice import evaluated
from .overfit import memorizing_step

FORMATS = (".png", ".svg")
CURVE_NAMES = {"train_smooth": "training", "val_loss": "validation", "distinct_2": "distinct-2", "distinct_3": "distinct-3"}
REPORT_PANELS = [("copying (share of samples)", ("copying",)), ("style (share attributed to the author)", ("style",)),
                 ("prompt-following", ("prompt_following",)), ("diversity (distinct n-grams)", ("distinct_2", "distinct_3"))]


@dataclass(frozen=True)
class Curves:
    """One run as the pictures draw it: its history rows and the points worth marking on them."""

    name: str
    rows: list[dict]  # history.jsonl: a row per step, val_loss and the ghostwriting figures on evaluation steps
    unit: str  # what a loss is per: char or token
    target: float | None = None
    best_step: int | None = None
    ghostwriting_step: int | None = None
    memorizing_step: int | None = None  # where the evaluations first showed memorization

    @classmethod
    def of(cls, card: Card, rows: list[dict], unit: str | None = None, target: float | None = None) -> "Curves":
        """A model directory's curves; a running model's unit and target come from its training, a finished one's
        from its result."""
        result, training = card.result, card.training
        unit = unit or result.get("unit") or ("char" if "vocab" in card.extra else "token")
        target = target if target is not None else result.get("target_loss", training.get("target_loss"))
        patience = training.get("overfit_patience") or card.plan.get("overfit_patience") or 3
        rows = evaluated(rows)
        return cls(card.name, rows, unit, target, result.get("best_step"), result.get("ghostwriting_step"),
                   memorizing_step(rows, patience))

    def series(self, key: str, x: str = "step") -> tuple[list[float], list[float]]:
        """The rows holding `key`, as x and y lists (x: the step, or the training time in minutes)."""
        points = [(r[x] / 60 if x == "elapsed" else r[x], r[key]) for r in self.rows
                  if r.get(key) is not None and r.get(x) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    def band(self, key: str) -> tuple[list[float], list[float], list[float]]:
        """The steps where a share has its interval, and the interval's low and high ends there (older runs: none)."""
        points = [(r["step"], *r[f"{key}_ci"]) for r in self.rows if r.get(f"{key}_ci")]
        return [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]

    def minutes_at(self, step: int) -> float | None:
        """The training time (minutes) at a step, for marking it on the time axis."""
        return next((r["elapsed"] / 60 for r in self.rows if r["step"] == step and r.get("elapsed") is not None), None)


def loss_picture(runs: Sequence[Curves], out: Path, title: str | None = None) -> None:
    """Training (smoothed) and validation loss against steps and against training time, one colour per run: the target
    as a horizontal line, the best checkpoint dashed, the point where memorizing began dotted, with a cross."""
    plt = _pyplot()
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for colour, run in zip(_colours(plt), runs, strict=False):
        for ax, x in ((by_step, "step"), (by_time, "elapsed")):
            # each line is named in an SVG (`step-val-NAME`), so a reader (a test) finds it
            ax.plot(*run.series("train_smooth", x), "-", color=colour, linewidth=1.5, label=f"{run.name} train (smoothed)",
                    gid=f"{x}-train-{run.name}")
            ax.plot(*run.series("val_loss", x), "--", color=colour, marker="o", markersize=3, label=f"{run.name} validation",
                    gid=f"{x}-val-{run.name}")
            if run.target is not None:
                ax.axhline(run.target, color=colour, linestyle=(0, (1, 3)), linewidth=1, label=f"{run.name} target")
            for step, line, what in ((run.best_step, "--", "best checkpoint"), (run.memorizing_step, ":", "memorizing")):
                at = step if x == "step" or step is None else run.minutes_at(step)
                if at is not None:
                    ax.axvline(at, color=colour, linestyle=line, linewidth=1, label=f"{run.name} {what}")
            if run.memorizing_step is not None:
                xs, ys = run.series("val_loss", x)
                steps = run.series("val_loss")[0]
                if run.memorizing_step in steps:
                    ax.plot([xs[steps.index(run.memorizing_step)]], [ys[steps.index(run.memorizing_step)]], "x",
                            color=colour, markersize=9)
    units = sorted({run.unit for run in runs})
    for ax, label in ((by_step, "step"), (by_time, "training time (minutes)")):
        ax.set_xlabel(label)
        ax.set_ylabel(f"loss (nats per {' / '.join(units)})")
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=7)
    fig.suptitle(title or ", ".join(run.name for run in runs), fontsize=11)
    _save(plt, fig, out)


# how the report marks its two checkpoints on every curve: shapes that stay visible where the two coincide
CHECKPOINT_MARKS = {"best-val": dict(marker="D", markersize=9, markerfacecolor="none", markeredgewidth=1.5),
                    "ghostwriting": dict(marker="*", markersize=8)}


def report_picture(runs: Sequence[Curves], out: Path) -> None:
    """The ghostwriting report, in a grid that reads on a laptop: loss, copying, style, prompt-following and diversity
    against steps, a colour per run, each share in its 95% interval's band. On every curve the best validation
    loss's step is a hollow diamond on a dashed line and the ghostwriting checkpoint's a star on a dotted one, so that
    both show where they are the same step; the sixth cell says which is which."""
    plt = _pyplot()
    panels = [("loss (nats)", ("train_smooth", "val_loss")), *REPORT_PANELS]
    fig, grid = plt.subplots(2, 3, figsize=(12.5, 7), constrained_layout=True)
    axes, key_cell = list(grid.flat[: len(panels)]), grid.flat[len(panels)]
    for colour, run in zip(_colours(plt), runs, strict=False):
        for ax, (title, keys) in zip(axes, panels, strict=True):
            for style, key in zip(("-", "--"), keys, strict=False):
                xs, ys = run.series(key)
                if xs:
                    ax.plot(xs, ys, style, color=colour, marker=".", label=f"{run.name} {CURVE_NAMES.get(key, key)}")
                    for name, step in (("best-val", run.best_step), ("ghostwriting", run.ghostwriting_step)):
                        if step in xs:
                            ax.plot([step], [ys[xs.index(step)]], linestyle="none", color=colour,
                                    gid=f"mark-{name}-{key}-{run.name}", **CHECKPOINT_MARKS[name])
                steps, low, high = run.band(key)
                if steps:  # the share's 95% interval: two checkpoints differ only where their bands part
                    ax.fill_between(steps, low, high, color=colour, alpha=0.18, linewidth=0, gid=f"band-{key}-{run.name}")
            for step, line in ((run.best_step, "--"), (run.ghostwriting_step, ":")):
                if step is not None:
                    ax.axvline(step, color=colour, linestyle=line, linewidth=1)
            ax.set_title(title, fontsize=10)
            if title != panels[0][0]:
                ax.set_ylim(-0.02, 1.02)  # shares: the same scale at every checkpoint and for every model
            ax.set_xlabel("step")
    for ax, (_, keys) in zip(axes, panels, strict=True):
        if len(keys) > 1:  # which line is which: solid the first, dashed the second
            ax.legend(fontsize=7)
    key_cell.axis("off")
    marks = [plt.Line2D([], [], color="#444", linestyle="--", label="best validation loss (NAME@best-val)",
                        **CHECKPOINT_MARKS["best-val"]),
             plt.Line2D([], [], color="#444", linestyle=":", label="ghostwriting checkpoint (NAME)",
                        **CHECKPOINT_MARKS["ghostwriting"])]
    marks += [plt.Line2D([], [], color=colour, linewidth=3, label=run.name) for colour, run in zip(_colours(plt), runs,
                                                                                                     strict=False)]
    key_cell.legend(handles=marks, loc="center", fontsize=9, frameon=False, title="checkpoints and models")
    _save(plt, fig, out)


def sweep_picture(name: str, results: Sequence[tuple[float, str, dict]], out: Path) -> None:
    """`report --sweep`: copying and style over temperature (rows) and the other settings tried (columns: top-p, the
    copy guard, DRY) as two heat maps, each cell with its share written in it, so the settings that write like the
    author without copying stand out. `results`: (temperature, setting in words, figures)."""
    plt = _pyplot()
    temperatures = sorted({t for t, _, _ in results})
    settings = list(dict.fromkeys(s for _, s, _ in results))
    figures = {(t, s): f for t, s, f in results}
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * len(settings), 1.2 + 0.7 * len(temperatures)),
                             constrained_layout=True)
    for ax, (key, colours) in zip(axes, (("copying", "Reds"), ("style", "Greens")), strict=True):
        grid = [[figures.get((t, s), {}).get(key) for s in settings] for t in temperatures]
        shown = ax.imshow([[float("nan") if v is None else v for v in row] for row in grid], cmap=colours, vmin=0, vmax=1,
                          aspect="auto", gid=f"sweep-{key}")
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, i, "-" if value is None else f"{value:.0%}", ha="center", va="center", fontsize=9,
                        color="white" if value is not None and value > 0.6 else "black")
        ax.set_xticks(range(len(settings)), settings, rotation=20)
        ax.set_yticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
        ax.set(xlabel="setting", ylabel="temperature", title=f"{key} (share of samples)")
        fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.suptitle(f"{name}: sampling settings", fontsize=10)
    _save(plt, fig, out)


def saturation_svg(shares: dict[str, Any]) -> str:
    """The gate-saturation figure of Karpathy, Johnson and Fei-Fei (2015), as SVG text for a page: per layer, a point
    per cell and gate at (share of characters left-saturated, share right-saturated). `shares`: per gate, an array
    (layers, cells, 2) of those shares."""
    plt = _pyplot()
    layers = next(iter(shares.values())).shape[0]
    fig, axes = plt.subplots(1, layers, figsize=(3.6 * layers, 3.4), squeeze=False, constrained_layout=True)
    for layer, ax in enumerate(axes[0]):
        for colour, (gate, share) in zip(_colours(plt), shares.items(), strict=False):
            ax.scatter(share[layer, :, 0], share[layer, :, 1], s=8, alpha=0.6, color=colour, label=f"{gate} gate")
        ax.plot([0, 1], [1, 0], color="#999", linewidth=0.8)  # a gate saturated all the time, one way or the other
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=f"layer {layer + 1}", xlabel="share left-saturated (< 0.1)",
               ylabel="share right-saturated (> 0.9)")
    axes[0][0].legend(fontsize=7)
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the element alone, to sit inside a page


def check_output(out: Path) -> None:
    """A picture goes to a .png or an .svg file: said before any work is done."""
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"cannot draw {out}: give a file name ending in .png or .svg")


def _pyplot() -> Any:
    """matplotlib's pyplot without a display (it draws to files only), imported now and not before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(plt: Any) -> list[str]:
    return plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4


def _save(plt: Any, fig: Any, out: Path) -> None:
    """The figure as PNG or SVG by the file's suffix, written whole (a reader never sees half a picture)."""
    check_output(out)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=out.suffix.lower()[1:], dpi=110)
    finally:
        plt.close(fig)
    try:
        write_bytes(out, buffer.getvalue())
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}") from None
