"""Which LSTM cells track what: the char-rnn picture of cell activations.

Runs a char model over a text one character at a time, records every cell's
state (tanh of c) after each character, and renders the text once per chosen
cell, each character shaded by that cell's value. Cells are chosen by how
closely they follow something a writer can see, being inside a quotation,
or else by how much they move.
"""

import re
from dataclasses import dataclass
from html import escape

import torch

from corpora import UserError
from corpora.load import find_trained_corpus

from ..modeldir import Card
from .data import DOC_START, corpus_text
from .infer import CharDecoder

QUOTES = {'"', "\u201c", "\u201d"}
MAX_CHARS = 5000  # one forward step per character, one shaded span per character and cell


@dataclass(frozen=True)
class Cell:
    layer: int
    index: int
    values: list[float]
    quote_corr: float

    @property
    def label(self) -> str:
        return f"layer {self.layer + 1}, cell {self.index}: correlation with being inside a quotation {self.quote_corr:+.2f}"


def validation_passage(card: Card, chars: int = 800) -> str | None:
    """A passage of the model's corpus holding a whole quotation, the feature the cells are ranked by: from its
    validation text when that has one, else from the rest of the corpus; None when neither has (or the corpus is
    not on this machine).

    The model's own samples may hold no quotation at all, and then every cell
    scores zero; the validation text is real prose the model has not trained
    on. A short corpus's validation text (the end of a story) may have no
    dialogue: then a passage it trained on still shows what the cells track.
    The passage starts at a paragraph and holds the most quotation marks of
    those tried.
    """
    if card.corpus is None or not (card.split or {}).get("val"):
        return None
    corpus, _ = find_trained_corpus(card.corpus.name, card.corpus.source, card.corpus.checksum)
    if corpus is None:
        return None
    text = corpus_text(corpus)
    a, b = card.split["val"]
    for part in (text[a:b], text[:a] + text[b:]):
        part = part.replace(DOC_START, "\n\n")
        starts = [0] + [m.end() for m in re.finditer(r"\n\s*\n", part)]
        windows = [w for i in starts if len(w := part[i : i + chars]) == chars and quotes(w) >= 2]
        if windows:
            return max(windows, key=quotes)
    return None


def quotes(text: str) -> int:
    return sum(text.count(q) for q in QUOTES)


def inside_quotes(text: str) -> list[float]:
    """1.0 for characters between an opening and a closing double quote."""
    inside, out = False, []
    for c in text:
        if c in QUOTES:
            inside = not inside
        out.append(1.0 if inside else 0.0)
    return out


@torch.no_grad()
def cell_states(model: CharDecoder, text: str) -> tuple[torch.Tensor, str]:
    """tanh(c) after each character, (layers, T, hidden), and the text as the model read it.

    Typographic characters are read as the model's own (a dash as "--"), so
    the returned text can differ from the one given.
    """
    ids, dropped = model.vocab.encode_lenient(text)
    if dropped:
        raise UserError(f"the text has characters this model has never seen: {''.join(sorted(set(dropped)))!r}")
    if not 2 <= len(ids) <= MAX_CHARS:
        raise UserError(f"the text must have between 2 and {MAX_CHARS} characters, it has {len(ids)}")
    net = model.model
    _, state = net(torch.tensor([model.vocab.encode(model.prime)], device=model.device))
    rows = []
    for i in ids:
        _, state = net(torch.tensor([[i]], device=model.device), state)
        rows.append(torch.tanh(state[1][:, 0, :]).float().cpu())
    return torch.stack(rows, dim=1), model.vocab.decode(ids)


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each column of a (T, H) with b (T,)."""
    a = a - a.mean(0)
    b = b - b.mean()
    denom = a.norm(dim=0) * b.norm()
    return torch.where(denom > 0, (a * b[:, None]).sum(0) / denom.clamp_min(1e-12), torch.zeros_like(denom))


def pick_cells(states: torch.Tensor, text: str, top: int) -> list[Cell]:
    """The cells that follow quotations most closely, or (no quotes in the text) that vary most."""
    quotes = torch.tensor(inside_quotes(text))
    by_quotes = bool(quotes.std() > 0)  # otherwise every correlation is 0: rank by movement instead
    scored = []
    for layer in range(states.size(0)):
        corr = _corr(states[layer], quotes)
        spread = states[layer].std(0)
        for index in range(states.size(2)):
            key = abs(float(corr[index])) if by_quotes else float(spread[index])
            scored.append((key, layer, index, float(corr[index])))
    scored.sort(reverse=True)
    return [Cell(layer, index, states[layer, :, index].tolist(), c) for _, layer, index, c in scored[:top]]


def _shade(value: float) -> str:
    """Blue for negative, red for positive, white at zero."""
    v = max(-1.0, min(1.0, value))
    fade = int(255 * (1 - abs(v)))
    return f"rgb(255,{fade},{fade})" if v > 0 else f"rgb({fade},{fade},255)"


def render_html(text: str, cells: list[Cell], title: str) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{font-family:monospace;white-space:pre-wrap;line-height:1.5}</style>",
        f"<h1>{escape(title)}</h1>",
        "<p>Each character is shaded by one LSTM cell's value after reading it: red positive, blue negative.</p>",
    ]
    for cell in cells:
        spans = "".join(
            f'<span style="background:{_shade(v)}">{escape(c)}</span>' for c, v in zip(text, cell.values, strict=True)
        )
        parts.append(f"<h2>{escape(cell.label)}</h2><pre>{spans}</pre>")
    return "\n".join(parts) + "\n"
