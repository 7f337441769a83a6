"""Which LSTM cells track what: the char-rnn picture of cell activations, whole.

Runs a char model over a text one character at a time (the fused single-step
path of `fast.py`, recording as it goes) and keeps, after each character,
every cell's state (tanh of c), every gate's activation and the model's five
likeliest next characters. The page shows the text shaded by one cell at a
time, switched on the page, with the guesses under each character (the
essay's red rows); ranks the cells against features a writer can see
(quotations, brackets, position in the line, word starts, line starts,
vowels, nesting depth), each ranked cell one click away; and gives each
layer's gate saturation, the share of time a gate is nearly shut (< 0.1) or
wide open (> 0.9), as in Karpathy, Johnson and Fei-Fei (2015), figure 3.
Cells are picked by how closely they follow quotations, or else by how much
they move.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import torch

from contract.modeldir import Card
from corpora import UserError
from finetune.plot import saturation_svg

from .data import DOC_START, corpus_text, ranges
from .fast import Stepper, fused
from .infer import CharDecoder

QUOTES = {'"', "\u201c", "\u201d"}
MAX_CHARS = 5000  # one forward step per character, one shaded span per character
GUESSES = 5  # next-character guesses shown under each character
GATES = {"input": 0, "forget": 1, "output": 3}  # nn.LSTM's gate order is i, f, g, o; g is no gate (tanh, not sigmoid)
SATURATED = 0.1  # a gate below this is left-saturated (shut), above 1 - this right-saturated (open)


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
    corpus, _ = card.corpus.find()
    if corpus is None:
        return None
    text = corpus_text(corpus)
    a, b = ranges(card.split["val"])[0]  # the first author's validation text, else the rest
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


@dataclass(frozen=True)
class Trace:
    """What the model did at each character of a text."""

    text: str  # the text as the model read it
    states: torch.Tensor  # (layers, T, hidden): tanh(c) after each character
    gates: torch.Tensor  # (layers, T, 4 * hidden): the gates' activations (i, f, g, o) at each character
    guesses: list[list[tuple[str, float]]]  # after each character, the likeliest next ones and their probabilities


class _Recorder(Stepper):
    """The single-step path, keeping each layer's gates and cell state as it goes."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.record: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _cell(self, layer: int) -> None:
        super()._cell(layer)
        self.record.append((self.gates.clone(), torch.tanh(self.c[layer])))


@torch.no_grad()
def trace(model: CharDecoder, text: str) -> Trace:
    """Read `text` after the model's document start, one character at a time, recording everything.

    Typographic characters are read as the model's own (a dash as "--"), so
    the trace's text can differ from the one given.
    """
    ids, dropped = model.vocab.encode_lenient(text)
    if dropped:
        raise UserError(f"the text has characters this model has never seen: {''.join(sorted(set(dropped)))!r}")
    if not 2 <= len(ids) <= MAX_CHARS:
        raise UserError(f"the text must have between 2 and {MAX_CHARS} characters, it has {len(ids)}")
    net = model.model.cpu()
    config = net.config
    zeros = torch.zeros(config.layers, 1, config.hidden)
    stepper = _Recorder(fused(net.embed, net.lstm, net.head), (zeros, zeros.clone()))
    for i in model.vocab.encode(model.prime):
        stepper.step(i)
    stepper.record.clear()
    guesses = []
    for i in ids:
        probs = torch.softmax(stepper.step(i), dim=0)
        top = torch.topk(probs, GUESSES)
        guesses.append([(model.vocab.chars[int(j)], float(v)) for v, j in zip(top.values, top.indices, strict=True)])
    gates = torch.stack([g for g, _ in stepper.record]).view(len(ids), config.layers, -1).transpose(0, 1)
    states = torch.stack([c for _, c in stepper.record]).view(len(ids), config.layers, -1).transpose(0, 1)
    return Trace(model.vocab.decode(ids), states.contiguous(), gates.contiguous(), guesses)


def cell_states(model: CharDecoder, text: str) -> tuple[torch.Tensor, str]:
    """tanh(c) after each character, (layers, T, hidden), and the text as the model read it."""
    t = trace(model, text)
    return t.states, t.text


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each column of a (T, H) with b (T,)."""
    a = a - a.mean(0)
    b = b - b.mean()
    denom = a.norm(dim=0) * b.norm()
    return torch.where(denom > 0, (a * b[:, None]).sum(0) / denom.clamp_min(1e-12), torch.zeros_like(denom))


def _line_position(text: str) -> list[float]:
    out, column = [], 0
    for c in text:
        out.append(float(column))
        column = 0 if c == "\n" else column + 1
    return out


def _depth(text: str) -> list[float]:
    """How many brackets are open at each character, the opening and closing ones counted in."""
    out, depth = [], 0
    for c in text:
        depth += c in "([{"
        out.append(float(depth))
        depth = max(0, depth - (c in ")]}"))
    return out


FEATURES: dict[str, Callable[[str], list[float]]] = {
    "inside quotes": inside_quotes,
    "inside brackets": lambda t: [min(1.0, d) for d in _depth(t)],
    "position in line": _line_position,
    "start of a word": lambda t: [float(c.isalnum() and (i == 0 or not t[i - 1].isalnum())) for i, c in enumerate(t)],
    "after a newline": lambda t: [float(i > 0 and t[i - 1] == "\n") for i in range(len(t))],
    "vowel": lambda t: [float(c.lower() in "aeiou") for c in t],
    "nesting depth": lambda t: [a + b for a, b in zip(_depth(t), inside_quotes(t), strict=True)],
}


@dataclass(frozen=True)
class Ranked:
    """A cell's correlation with a feature."""

    feature: str
    layer: int
    index: int
    corr: float


def rank(states: torch.Tensor, text: str, top: int = 3) -> dict[str, list[Ranked]]:
    """For each feature the text shows (one that varies), the cells most correlated with it, either sign."""
    ranking = {}
    for name, feature in FEATURES.items():
        values = torch.tensor(feature(text))
        if not values.std() > 0:
            continue
        scored = [(abs(float(c)), layer, index, float(c))
                  for layer in range(states.size(0)) for index, c in enumerate(_corr(states[layer], values))]
        scored.sort(reverse=True)
        ranking[name] = [Ranked(name, layer, index, c) for _, layer, index, c in scored[:top]]
    return ranking


def saturation(gates: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per gate, (layers, hidden, 2): the share of characters each cell's gate is left- (< 0.1) and right-saturated."""
    hidden = gates.size(2) // 4
    out = {}
    for name, g in GATES.items():
        values = gates[:, :, g * hidden : (g + 1) * hidden]
        out[name] = torch.stack([(values < SATURATED).float().mean(1), (values > 1 - SATURATED).float().mean(1)], dim=-1)
    return out


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


def render_html(t: Trace, cells: list[Cell], ranking: dict[str, list[Ranked]], title: str) -> str:
    """One page, offline: the text shaded by one cell (a menu switches between the picked and the ranked cells), the
    five likeliest next characters under each character, the ranking of cells by feature (each a link to its
    cell), and each layer's gate saturation."""
    shown = {f"{c.layer + 1}-{c.index}": (c.label, c.values) for c in cells}
    for ranked in ranking.values():
        for r in ranked:
            key = f"{r.layer + 1}-{r.index}"
            if key not in shown:
                shown[key] = (f"layer {r.layer + 1}, cell {r.index}", t.states[r.layer, :, r.index].tolist())
    first = next(iter(shown.values()))[1]
    columns = []
    for c, v, guesses in zip(t.text, first, t.guesses, strict=True):
        rows = "".join(f'<span class="g" style="background:rgba(255,0,0,{p:.2f})">{_visible(g)}</span>'
                       for g, p in guesses)
        columns.append(f'<span class="col"><span class="ch" style="background:{_shade(v)}">{_visible(c)}</span>{rows}'
                       "</span>" + ("<br>" if c == "\n" else ""))
    options = "".join(f'<option value="{k}">{escape(label)}</option>' for k, (label, _) in shown.items())
    links = "".join(
        f"<tr><th>{escape(name)}</th><td>"
        + ", ".join(f'<a href="#cell-{r.layer + 1}-{r.index}">layer {r.layer + 1} cell {r.index}</a> ({r.corr:+.2f})'
                    for r in ranked) + "</td></tr>" for name, ranked in ranking.items())
    values = json.dumps({k: [round(x, 3) for x in v] for k, (_, v) in shown.items()})
    shares = saturation(t.gates)
    return "\n".join([
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "#text{font-family:monospace;line-height:1.1}.col{display:inline-flex;flex-direction:column;margin-bottom:.6em}"
        ".ch{padding:1px 0}.g{font-size:70%;color:#333;text-align:center}td,th{padding:2px 8px;text-align:left}</style>",
        f"<h1>{escape(title)}</h1>",
        "<p>Each character is shaded by one LSTM cell's value after reading it: red positive, blue negative. Under it, "
        "the model's five likeliest next characters, redder the likelier.</p>",
        f"<p><label>cell <select id='cell'>{options}</select></label></p>",
        f"<div id='text'>{''.join(columns)}</div>",
        "<h2>Cells by feature</h2><p>The cells whose value follows each feature of this text most closely (Pearson "
        f"correlation); click one to see it above.</p><table>{links}</table>",
        "<h2>Gate saturation</h2><p>The share of characters a gate is left-saturated (below 0.1: shut) or "
        "right-saturated (above 0.9: open), averaged over each layer's cells, and how many of its cells are so more "
        f"than half the time.</p>{_saturation_table(shares)}{saturation_svg(shares)}",
        f"<script>const cells={values};",
        "function shade(v){v=Math.max(-1,Math.min(1,v));const f=Math.round(255*(1-Math.abs(v)));"
        "return v>0?`rgb(255,${f},${f})`:`rgb(${f},${f},255)`}",
        "const menu=document.getElementById('cell'),chars=document.querySelectorAll('#text .ch');",
        "function show(k){if(!(k in cells))return;menu.value=k;cells[k].forEach((v,i)=>chars[i].style.background=shade(v))}",
        "menu.onchange=()=>{location.hash='cell-'+menu.value};",
        "window.onhashchange=()=>show(location.hash.replace('#cell-',''));window.onhashchange();</script>",
    ]) + "\n"


def _visible(c: str) -> str:
    """A character as a column shows it: a space and a line break as marks, the rest escaped."""
    return {" ": "&nbsp;", "\n": "\u21b5", "\t": "\u21e5"}.get(c, escape(c))


def _saturation_table(shares: dict[str, torch.Tensor]) -> str:
    rows = ["<table><tr><th>layer</th><th>gate</th><th>left-saturated</th><th>right-saturated</th>"
            "<th>cells mostly shut</th><th>cells mostly open</th></tr>"]
    for name, s in shares.items():
        for layer in range(s.size(0)):
            left, right = s[layer, :, 0], s[layer, :, 1]
            rows.append(f"<tr><td>{layer + 1}</td><td>{name}</td><td>{float(left.mean()):.0%}</td>"
                        f"<td>{float(right.mean()):.0%}</td><td>{int((left > 0.5).sum())} of {left.numel()}</td>"
                        f"<td>{int((right > 0.5).sum())} of {right.numel()}</td></tr>")
    return "".join(rows) + "</table>"
