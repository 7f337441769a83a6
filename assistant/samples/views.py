"""How samples look: listings, one sample, a memorization check, two models side by side, exports.

Shared by the `samples` commands and the REPL so both show the same thing.
Rich renderables for the terminal; plain strings for exports.
"""

import json
from dataclasses import asdict
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from corpora.index import CorpusIndex, Span

from .recording import stored_span
from .store import Sample


def flag(sample: Sample, min_span: int) -> str:
    """A short mark for a sample that copies at least `min_span` characters of its corpus."""
    return f"copies {sample.copied_chars}" if sample.copies(min_span) else ""


def local_time(created: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromisoformat(created).astimezone().strftime(fmt)


def preview(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def sample_table(samples: list[Sample], min_span: int, console: Console) -> RenderableType:
    """The samples at `console`'s width: id, the model and checkpoint that wrote each, its copy flag and the start of
    what it wrote (the prompt is the writer's own: it is in `samples show`); the other columns as room allows."""
    from ..tables import Column, fitted

    columns = [Column("id", wrap=False, right=True), Column("created"), Column("model", wrap=False), Column("mode"),
               Column("chars", wrap=False, right=True), Column("tags"), Column("copied", wrap=False),
               Column("continuation", preview=True)]
    rows = [[str(s.id), local_time(s.created, "%m-%d %H:%M"), Text(s.label),
             ("uncond" if s.mode == "unconditional" else s.mode) + (" (cancelled)" if s.cancelled else ""), str(s.chars),
             # Text(...), not str: a writer's text or tag such as "[/draft]" is shown as it is, never read as markup
             Text(", ".join(s.tags)), Text(flag(s, min_span), style="bold red"), Text(preview(s.text, 500))]
            for s in samples]
    table, hidden = fitted(console, columns, rows, optional=("mode", "chars", "created", "tags"))
    if table is None:  # not even a glimpse fits: one sample a line
        return Group(*(Text.assemble(f"#{s.id} {s.label} ", (flag(s, min_span), "bold red")) for s in samples))
    if not hidden:
        return table
    return Group(table, Text(f"({', '.join(hidden)} left out: the terminal is too narrow; assistant samples list --json "
                             "has all)", style="dim"))


def copy_warning(span: Span | None, text: str, min_span: int) -> str | None:
    """What a writer must be told wherever a sample that copies its corpus is shown: how much, from which document
    and where, and the passage itself (its start, when long); None when it copies less than `min_span` characters."""
    if span is None or span.length < min_span:
        return None
    passage = preview(text[span.sample_offset : span.sample_offset + span.length], 60)
    return (f"copies {span.length} characters of {span.document} word for word (its character {span.offset:,} on): "
            f"\u201c{passage}\u201d")


def status_line(sample: Sample, min_span: int) -> Text:
    """One dim line after a sample is written: its id, size, time, and a warning when it copies its corpus."""
    line = Text.assemble((f"#{sample.id} · {sample.chars} chars · {sample.duration_s or 0:.1f} s"
                          + (" · cancelled" if sample.cancelled else ""), "dim"))
    warning = copy_warning(stored_span(sample), sample.text, min_span)
    if warning:
        line.append(f"  {warning} (/check shows it)", style="bold red")
    return line


def describe(sample: Sample, min_span: int) -> Table:
    """Everything about a sample but its text, as a two-column table."""
    table = Table(show_header=False, box=None)
    params = ", ".join(f"{k} {v}" for k, v in sample.params.items() if v not in (None, [], ()))
    copied = ("not checked (no corpus)" if sample.copied_chars is None
              else f"{sample.copied_chars} characters" + (f" of {sample.copied_document}" if sample.copied_document else ""))
    for key, value in (
        ("sample", f"#{sample.id}" + (" (cancelled)" if sample.cancelled else "")),
        ("created", local_time(sample.created)),
        ("model", f"{sample.named} ({sample.model_kind}) {sample.model_path or '(the model has since been removed)'}"),
        ("corpus", sample.corpus or "-"),
        ("mode", f"{sample.mode}, from {sample.source}"),
        ("parameters", params),
        ("written", f"{sample.chars} characters in {sample.duration_s or 0:.2f} s"),
        ("tags", ", ".join(sample.tags) or "-"),
        ("longest copied span", Text(copied, style="bold red" if sample.copies(min_span) else "")),
    ):
        table.add_row(key, value if isinstance(value, Text) else Text(value))
    return table


def sample_text(sample: Sample) -> Text:
    """The prompt (dim) followed by what the model wrote."""
    return Text.assemble((sample.prompt, "dim"), sample.text)


def check_view(sample: Sample, span: Span | None, index: CorpusIndex, min_span: int, width: int) -> RenderableType:
    """The longest copied span, shown in the corpus and in the sample, with `width` characters of context."""
    if span is None:
        return Text(f"#{sample.id} shares not a single character with {sample.corpus}")
    verdict = (Text(f"#{sample.id} copies {span.length} characters of {sample.corpus}", style="bold red")
               if span.length >= min_span else
               Text(f"#{sample.id} is the model's own: its longest span found in {sample.corpus} is {span.length} characters"))
    before, match, after = index.context(span, width)
    s = span.sample_offset
    return Group(
        verdict,
        Text(f"\nin {span.document} at character {span.offset:,}:", style="bold"),
        Text.assemble("…" + before, (match, "reverse"), after + "…"),
        Text(f"\nin the sample at character {s:,}:", style="bold"),
        Text.assemble("…" + sample.text[max(0, s - width) : s], (sample.text[s : s + span.length], "reverse"),
                      sample.text[s + span.length : s + span.length + width] + "…"),
    )


def side_by_side(prompt: str, columns: list[tuple[str, str, str | None]]) -> RenderableType:
    """The same prompt through several models: one column each, headed by the model's name (and sample id), its
    text, and under it the warning of a text that copies its corpus."""
    table = Table(expand=True, show_lines=False)
    for head, _, _ in columns:
        table.add_column(head, ratio=1, overflow="fold")
    table.add_row(*(Text.assemble((prompt, "dim"), text, ("\n\n" + warning if warning else "", "bold red"))
                    for _, text, warning in columns))
    return table


def markdown(samples: list[Sample]) -> str:
    """Each sample as a section that says which model wrote it, from what prompt."""
    parts = []
    for s in samples:
        head = f"## Sample {s.id}\n\n*Written by {s.label} ({s.model_kind}"
        head += f", trained on {s.corpus})" if s.corpus else ")"
        head += f" on {local_time(s.created)}"
        head += f", from the prompt \u201c{' '.join(s.prompt.split())}\u201d.*" if s.prompt else ", unprompted.*"
        tags = f"\n\nTags: {', '.join(s.tags)}" if s.tags else ""
        parts.append(f"{head}{tags}\n\n{(s.prompt + s.text).strip()}\n")
    return "\n".join(parts)


SCENE_BREAK = "* * *"  # between two samples in a plain-text export, as between two scenes of a manuscript


def plain_text(samples: list[Sample]) -> str:
    """The samples' texts and nothing else, exactly as stored, each ending its line, a scene break between two: what
    a writer pastes into a manuscript (a blank line alone would be lost among the texts' own paragraphs)."""
    texts = [t if t.endswith("\n") else t + "\n" for t in (s.full_text for s in samples)]
    return f"\n{SCENE_BREAK}\n\n".join(texts)


def jsonl(samples: list[Sample]) -> str:
    return "".join(json.dumps(asdict(s), ensure_ascii=False) + "\n" for s in samples)
