"""What a user watches while a model trains.

On a terminal: a Rich progress bar with step, train and validation loss,
throughput and ETA, with messages and samples printed above it. Elsewhere
(a pipe, CI, a log file): plain lines at each evaluation and every few seconds.
"""

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

PLAIN_EVERY_S = 10.0
DOCUMENT_END = "<|endoftext|>"  # how GPT-2's tokenizer writes the token that ends one document and starts the next
DOCUMENT_BREAK = "\n──── end of a document; the sample goes on with a new one ────\n"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def format_rate(per_second: float, unit: str) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.1f}{suffix} {unit}s/s"
    return f"{per_second:.0f} {unit}s/s"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class Reporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.last_plain = 0.0

    def start(self, total: int, completed: int) -> None:
        """total: steps, or ticks of the time budget; the step itself is shown as a field."""
        if self.live:
            self.progress = Progress(
                TextColumn("step {task.fields[step]}"),
                BarColumn(),
                TextColumn("train {task.fields[train]}  val {task.fields[val]}  {task.fields[rate]}  ETA {task.fields[eta]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=total, completed=completed, step=completed, train="-", val="-", rate="-", eta="-"
            )

    def update(self, completed: int, step: int, train: float | None, val: float | None, val_step: int, rate: str,
               eta: float, force: bool = False) -> None:
        """`val` was measured at `val_step`: an older figure says so, so that a log line never passes it off as new."""
        shown = _loss(val) if val is None or val_step == step else f"{val:.3f} (step {val_step})"
        fields = {"step": step, "train": _loss(train), "val": shown, "rate": rate, "eta": format_duration(eta)}
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, **fields)
            return
        now = time.monotonic()
        if force or now - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = now
            self.console.print(
                f"step {step} | train {fields['train']} | val {fields['val']} | {rate} | ETA {fields['eta']}",
                highlight=False,
            )

    def message(self, text: str, style: str = "") -> None:
        self.console.print(escape(text), style=style, highlight=False)

    def sample(self, step: int, text: str) -> None:
        """The sample with each end of a document (GPT-2's `<|endoftext|>`) shown as a break a reader sees at once,
        not as a token glued between two texts."""
        self.console.print(f"[dim]--- sample at step {step} ---[/dim]")
        shown = Text()
        for i, part in enumerate(text.split(DOCUMENT_END)):
            if i:
                shown.append(DOCUMENT_BREAK, style="dim")
            shown.append(part, style="italic")
        self.console.print(shown, highlight=False)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
