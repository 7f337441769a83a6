"""`assistant evolution`: the samples a run kept, step by step, as in char-rnn's "evolution of samples while training".

Training writes an unconditional sample every --sample-every steps into
samples.jsonl, with the losses at that step. Read in order they show what the
model learned first (spaces and word lengths), then words, then its author's
turns of phrase: in the terminal, or as a page that opens offline.
"""

from html import escape

from contract import modeldir
from contract.modeldir import Card
from finetune.checkpoint import read_jsonl

from .report import model_card


def samples(name_or_path: str) -> tuple[Card, list[dict]]:
    """A model's card and its training samples (step, train_loss, val_loss, text), in step order."""
    card = model_card(name_or_path)
    rows = sorted(read_jsonl(card.file(modeldir.SAMPLES)), key=lambda r: r["step"])
    return card, rows


def heading(row: dict) -> str:
    """A sample's step and the losses when it was written."""
    losses = ", ".join(f"{name} {row[key]:.3f}" for name, key in (("train", "train_loss"), ("val", "val_loss"))
                       if row.get(key) is not None)
    return f"step {row['step']}" + (f" ({losses})" if losses else "")


def render_html(card: Card, rows: list[dict]) -> str:
    """The samples as one page: a heading and the text of each, in step order."""
    title = f"Evolution of samples while training {card.name}"
    parts = ["<!doctype html><meta charset='utf-8'>", f"<title>{escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "pre{font-family:monospace;white-space:pre-wrap;background:#f6f6f6;padding:.6em}</style>",
             f"<h1>{escape(title)}</h1>",
             f"<p>{card.kind} on {escape(card.corpus.name if card.corpus else '-')}: an unconditional sample every "
             f"{card.plan.get('sample_every', '?')} steps, as the run wrote it.</p>"]
    parts += [f"<h2>{escape(heading(r))}</h2><pre>{escape(r['text'])}</pre>" for r in rows]
    return "\n".join(parts) + "\n"
