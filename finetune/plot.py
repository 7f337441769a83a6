"""The loss curve as an SVG picture, written beside the history it draws.

A picture says at a glance what history.jsonl says in numbers: how fast the
loss fell, where validation parted from training, where the target lies.
Plain SVG text, so it needs no plotting library and opens in any browser.
"""

import math
from html import escape

W, H = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 45
COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "target": "#2ca02c"}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def loss_curve_svg(history: list[dict], unit: str, title: str, target: float | None = None) -> str:
    train = [(r["step"], r["train_smooth"]) for r in history if r.get("train_smooth") is not None]
    val = [(r["step"], r["val_loss"]) for r in history if r.get("val_loss") is not None]
    points = train + val
    if not points:
        return ""
    x_hi = max(1, max(s for s, _ in points))
    ys = [v for _, v in points] + ([target] if target is not None else [])
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.05 or 0.5
    y_lo, y_hi = max(0.0, y_lo - pad), y_hi + pad

    def x(step: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * step / x_hi

    def y(loss: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (y_hi - loss) / (y_hi - y_lo)

    def polyline(series: list[tuple[int, float]], colour: str, dots: bool = False) -> str:
        path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in series)
        out = f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
        if dots:
            out += "".join(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for s, v in series)
        return out

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for t in _ticks(y_lo, y_hi):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in _ticks(0, x_hi):
        parts.append(f'<text x="{x(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">step</text>')
    parts.append(
        f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">loss (nats/{unit})</text>'
    )
    if target is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            f'stroke="{COLOURS["target"]}" stroke-dasharray="6 4"/>'
        )
    parts.append(polyline(train, COLOURS["train"]))
    parts.append(polyline(val, COLOURS["val"], dots=True))
    legend = [("train (smoothed)", "train"), ("validation", "val")] + ([("target", "target")] if target else [])
    for i, (label, key) in enumerate(legend):
        lx = W - RIGHT - 150
        ly = TOP + 14 + 18 * i
        parts.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{COLOURS[key]}" stroke-width="3"/>')
        parts.append(f'<text x="{lx + 30}" y="{ly}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
