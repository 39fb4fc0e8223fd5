"""Pictures for the replay-batch HTML report, drawn offline with matplotlib (Agg, no display).

Four charts, each a PNG embedded in the page as a ``data:`` URI (the page stays one file):

* digit confusion matrix: expected digit (rows) against the digit the box read back
  (columns, ``–`` when it read back fewer digits), over every scenario with ``expect_digits``;
* error rate by digit position: the share of scenarios whose read-back was wrong at 1..N;
* reply-latency histogram: the ``reply_latency`` stage when the calls have it (live channel),
  else the time to recognise each caller turn once it ended (``asr``: the recogniser's part
  of the reply latency, the part a replay can measure);
* outcome counts: calls per outcome, passed and failed stacked.

Inputs are aggregates only (:class:`DigitStats` keeps counts of digit pairs and per-position
errors, not the codes), so a picture cannot show a caller's code.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Chart", "DigitStats", "digit_stats", "render_charts"]

DIGITS = "0123456789"
MISSING = "–"
_DPI = 100


@dataclass
class DigitStats:
    """One scenario's read-back against its expected code, without the code itself.

    ``pairs`` counts (expected digit, read-back digit or ``–``) over the positions; ``wrong``
    holds, per position of the expected code, whether the read-back differed there.
    """

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong: list[bool] = field(default_factory=list)


def digit_stats(expected: str, heard: str | None) -> DigitStats:
    """Compare position by position (``heard`` None: the box never read a code back)."""
    got = heard or ""
    stats = DigitStats()
    for i, want in enumerate(expected):
        have = got[i] if i < len(got) else MISSING
        stats.pairs[(want, have)] += 1
        stats.wrong.append(have != want)
    return stats


@dataclass(frozen=True)
class Chart:
    """One picture: its title, a sentence saying what it shows, and the PNG."""

    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)  # Agg: no display, no global pyplot state
    return figure


def confusion_chart(stats: Sequence[DigitStats]) -> Chart | None:
    total: Counter[tuple[str, str]] = Counter()
    for s in stats:
        total.update(s.pairs)
    if not total:
        return None
    columns = DIGITS + MISSING
    matrix = np.zeros((len(DIGITS), len(columns)), dtype=np.int64)
    for (want, have), n in total.items():
        if want in DIGITS and have in columns:
            matrix[DIGITS.index(want), columns.index(have)] += n
    figure = _figure(6.4, 5.2)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", aspect="auto")
    axes.set_xticks(range(len(columns)), list(columns))
    axes.set_yticks(range(len(DIGITS)), list(DIGITS))
    axes.set_xlabel("digit read back")
    axes.set_ylabel("digit expected")
    peak = matrix.max() or 1
    for row in range(matrix.shape[0]):
        for col in range(matrix.shape[1]):
            if matrix[row, col]:
                colour = "white" if matrix[row, col] > peak / 2 else "black"
                axes.text(col, row, str(matrix[row, col]), ha="center", va="center", color=colour)
    figure.colorbar(image, ax=axes, label="digits")
    wrong = int(matrix.sum() - np.trace(matrix[:, : len(DIGITS)]))
    caption = (
        f"{int(matrix.sum())} expected digits in {len(stats)} scenario(s), {wrong} read back "
        "wrong (off the diagonal) or missing (–)."
    )
    return Chart("Digit confusion matrix", caption, _png(figure))


def position_chart(stats: Sequence[DigitStats]) -> Chart | None:
    length = max((len(s.wrong) for s in stats), default=0)
    if length == 0:
        return None
    errors = np.zeros(length)
    seen = np.zeros(length)
    for s in stats:
        for i, bad in enumerate(s.wrong):
            seen[i] += 1
            errors[i] += bad
    rate = np.divide(errors, seen, out=np.zeros(length), where=seen > 0)
    figure = _figure(6.4, 3.4)
    axes = figure.add_subplot()
    positions = np.arange(1, length + 1)
    axes.bar(positions, rate * 100, color="#b03a2e")
    axes.set_xticks(positions)
    axes.set_xlabel("digit position in the code")
    axes.set_ylabel("scenarios wrong there (%)")
    axes.set_ylim(0, max(5.0, float(rate.max() * 100) * 1.15))
    for x, r in zip(positions, rate, strict=True):
        axes.text(float(x), r * 100, f"{r * 100:.0f}%", ha="center", va="bottom", fontsize=8)
    caption = (
        f"Share of the {len(stats)} scenario(s) with expect_digits whose read-back was wrong "
        "at each position."
    )
    return Chart("Error rate by digit position", caption, _png(figure))


def latency_chart(stages: Iterable[dict[str, list[float]]]) -> Chart | None:
    stage_list = list(stages)
    name = "reply_latency"
    values = [v for s in stage_list for v in s.get(name, [])]
    if not values:
        name = "asr"
        values = [v for s in stage_list for v in s.get(name, [])]
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    figure = _figure(6.4, 3.4)
    axes = figure.add_subplot()
    axes.hist(arr, bins=min(30, max(5, len(arr) // 2)), color="#2e86c1")
    p50, p95 = (float(np.percentile(arr, q)) for q in (50, 95))
    for value, label in ((p50, "p50"), (p95, "p95")):
        axes.axvline(value, color="black", linestyle="--", linewidth=1)
        axes.text(value, axes.get_ylim()[1] * 0.95, f" {label} {value:.2f} s", fontsize=8)
    axes.set_xlabel("seconds")
    axes.set_ylabel("turns")
    if name == "reply_latency":
        what = "end of caller speech to the first audio of the reply"
    else:
        what = "time to recognise a caller turn once it ended (the recogniser's part of the reply)"
    caption = f"{len(arr)} turns: {what}; p50 {p50:.2f} s, p95 {p95:.2f} s."
    return Chart("Reply latency", caption, _png(figure))


def outcome_chart(outcomes: Sequence[tuple[str, bool]]) -> Chart | None:
    if not outcomes:
        return None
    names = sorted({o for o, _ in outcomes})
    passed = [sum(1 for o, ok in outcomes if o == n and ok) for n in names]
    failed = [sum(1 for o, ok in outcomes if o == n and not ok) for n in names]
    figure = _figure(6.4, 3.4)
    axes = figure.add_subplot()
    y = np.arange(len(names))
    axes.barh(y, passed, color="#1e8449", label="passed")
    axes.barh(y, failed, left=passed, color="#b03a2e", label="failed")
    axes.set_yticks(y, names)
    axes.set_xlabel("calls")
    axes.legend(loc="lower right")
    for i, (p, f) in enumerate(zip(passed, failed, strict=True)):
        axes.text(p + f, i, f" {p + f}", va="center", fontsize=8)
    caption = f"{len(outcomes)} calls by outcome ({sum(passed)} passed, {sum(failed)} failed)."
    return Chart("Outcomes", caption, _png(figure))


def render_charts(
    stats: Sequence[DigitStats],
    stages: Iterable[dict[str, list[float]]],
    outcomes: Sequence[tuple[str, bool]],
) -> list[Chart]:
    """Every chart there is data for, in the report's order."""
    charts = [
        confusion_chart(stats),
        position_chart(stats),
        latency_chart(stages),
        outcome_chart(outcomes),
    ]
    return [c for c in charts if c is not None]
