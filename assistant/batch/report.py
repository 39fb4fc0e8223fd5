"""Batch results and their report: Markdown, or one self-contained HTML page.

Passwords never appear (the runtime masks them); callers and expected codes are masked.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.batch.charts import DigitStats, render_charts

BOX_TEXT_MAX = 110  # characters of what the box said, per turn, in the report


@dataclass
class ScenarioResult:
    name: str
    caller_masked: str
    expect: str
    expect_digits_masked: str | None
    outcome: str | None = None
    passed: bool = False
    reason: str | None = None
    error: str | None = None  # stable code when the call could not run or the store failed
    audio_s: float = 0.0  # all turns of the scenario
    recognised_s: float = 0.0  # turns the box actually listened to
    asr_s: float = 0.0
    run_s: float = 0.0
    call_id: str | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    digits: DigitStats | None = None  # read-back against expect_digits (counts only)


@dataclass
class BatchReport:
    source: str
    engine: str
    results: list[ScenarioResult]
    wall_s: float
    generated_at: str
    codes_revealed: bool = False  # --reveal-codes: the report holds codes in the clear

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.results) if self.results else 0.0

    @property
    def audio_s(self) -> float:
        return sum(r.audio_s for r in self.results)

    @property
    def recognised_s(self) -> float:
        return sum(r.recognised_s for r in self.results)

    @property
    def asr_s(self) -> float:
        return sum(r.asr_s for r in self.results)

    @property
    def rtf(self) -> float | None:
        return self.asr_s / self.recognised_s if self.recognised_s > 0 else None

    def latencies(self) -> list[tuple[str, int, float, float]]:
        """(stage, count, p50, p95) over every call, stages in first-seen order; ratios
        (``*_rtf``) are left out (the real-time factor is in the summary)."""
        merged: dict[str, list[float]] = {}
        for r in self.results:
            for name, values in r.stages.items():
                if not name.endswith("_rtf"):
                    merged.setdefault(name, []).extend(values)
        out = []
        for name, values in merged.items():
            if values:
                arr = np.asarray(values, dtype=np.float64)
                out.append(
                    (
                        name,
                        len(values),
                        float(np.percentile(arr, 50)),
                        float(np.percentile(arr, 95)),
                    )
                )
        return out


# -- rendering ---------------------------------------------------------------------------------


def _truncate(text: str, limit: int = BOX_TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fmt_s(seconds: float | None, digits: int = 2) -> str:
    return "–" if seconds is None else f"{seconds:.{digits}f}"


def _expected(r: ScenarioResult) -> str:
    return r.expect + (f" (code {r.expect_digits_masked})" if r.expect_digits_masked else "")


def _turn_answer(turn: dict[str, Any]) -> str:
    parts = []
    if turn.get("keys") is not None:
        parts.append(f"keys {turn['keys']}")
    if turn.get("digits") is not None:
        parts.append(f"digits {turn['digits']}")
    if "answer" in turn:
        parts.append(f"answer {turn['answer'] or '–'}")
    return ", ".join(parts) or "–"


REVEALED = "Codes revealed (--reveal-codes): this report holds social-insurance codes in clear"


def _summary_rows(report: BatchReport) -> list[tuple[str, str]]:
    return [
        ("Scenarios", f"{len(report.results)} ({report.source})"),
        ("Passed", str(report.passed)),
        ("Failed", str(report.failed)),
        ("Pass rate", f"{report.pass_rate:.1%}"),
        ("Recogniser", report.engine),
        ("Caller audio", f"{report.audio_s:.2f} s ({report.recognised_s:.2f} s listened to)"),
        ("Recognition time", f"{report.asr_s:.2f} s"),
        ("Real-time factor", _fmt_s(report.rtf, 3)),
        ("Batch run time", f"{report.wall_s:.2f} s"),
        ("Generated", report.generated_at),
        ("Codes", REVEALED if report.codes_revealed else "masked"),
    ]


def _scenario_rows(report: BatchReport) -> Iterable[list[str]]:
    for r in report.results:
        yield [
            r.name,
            r.caller_masked,
            _expected(r),
            r.outcome or "–",
            "pass" if r.passed else "FAIL",
            _fmt_s(r.audio_s),
            _fmt_s(r.run_s),
            r.reason or "",
        ]


SCENARIO_HEADER = [
    "Scenario",
    "Caller",
    "Expected",
    "Outcome",
    "Result",
    "Audio (s)",
    "Run (s)",
    "Reason",
]
TURN_HEADER = ["#", "Box said", "Heard", "Digits / answer", "Event"]
LATENCY_HEADER = ["Stage", "Count", "p50 (s)", "p95 (s)"]


def _turn_rows(r: ScenarioResult) -> Iterable[list[str]]:
    for i, turn in enumerate(r.turns, start=1):
        heard = turn.get("heard")
        yield [
            str(i),
            _truncate(str(turn.get("box", ""))),
            "–" if heard is None else (heard or "(nothing)"),
            _turn_answer(turn),
            str(turn.get("event") or "–"),
        ]


def _md(text: str) -> str:
    return (
        " ".join(str(text).split())
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: BatchReport) -> str:
    lines = ["# Replay batch report", ""]
    if report.codes_revealed:
        lines += [f"**{REVEALED}**", ""]
    lines += ["## Summary", ""]
    lines += _md_table(["", ""], _summary_rows(report))
    latencies = report.latencies()
    if latencies:
        lines += ["", "### Latency per stage", ""]
        lines += _md_table(
            LATENCY_HEADER,
            ([n, str(c), f"{p50:.3f}", f"{p95:.3f}"] for n, c, p50, p95 in latencies),
        )
    lines += ["", "## Scenarios", ""]
    lines += _md_table(SCENARIO_HEADER, _scenario_rows(report))
    lines += ["", "## Calls", ""]
    for r in report.results:
        status = "pass" if r.passed else "FAIL"
        lines += [f"### {_md(r.name)} — {status}", ""]
        facts = (
            f"Caller {_md(r.caller_masked)}, expected {_md(_expected(r))}, outcome "
            f"{_md(r.outcome or '–')}"
        )
        if r.call_id:
            facts += f", call {_md(r.call_id)}"
        lines += [facts + ".", ""]
        if r.reason and not r.passed:
            lines += [f"**Reason:** {_md(r.reason)}", ""]
        if r.turns:
            lines += _md_table(TURN_HEADER, _turn_rows(r))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
tr.fail td{background:#fdeaea}
tr.pass td.result{color:#137333;font-weight:bold}
tr.fail td.result{color:#b3261e;font-weight:bold}
details{margin:.4em 0}
summary{cursor:pointer;font-weight:bold}
.reason{color:#b3261e}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}
figure{margin:0;max-width:40em}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444}
""".strip()


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], row_classes: Sequence[str] | None = None
) -> list[str]:
    out = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in header) + "</tr></thead>",
        "<tbody>",
    ]
    for i, row in enumerate(rows):
        cls = f' class="{_h(row_classes[i])}"' if row_classes else ""
        cells = "".join(
            f'<td class="result">{_h(c)}</td>' if header[j] == "Result" else f"<td>{_h(c)}</td>"
            for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out += ["</tbody>", "</table>"]
    return out


def _html_charts(report: BatchReport) -> list[str]:
    """The pictures (matplotlib PNGs inlined as data: URIs, so the page stays one file)."""
    charts = render_charts(
        [r.digits for r in report.results if r.digits is not None],
        [r.stages for r in report.results],
        [(r.outcome or r.error or "none", r.passed) for r in report.results],
    )
    if not charts:
        return []
    out = ["<h2>Pictures</h2>", '<div class="charts">']
    for chart in charts:
        out += [
            "<figure>",
            f'<img alt="{_h(chart.title)}" src="{chart.data_uri}">',
            f"<figcaption><b>{_h(chart.title)}.</b> {_h(chart.caption)}</figcaption>",
            "</figure>",
        ]
    out.append("</div>")
    return out


def render_html(report: BatchReport) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Replay batch report</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>Replay batch report</h1>",
        *([f"<p><strong>{REVEALED}</strong></p>"] if report.codes_revealed else []),
        "<h2>Summary</h2>",
        "<table><tbody>",
    ]
    parts += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in _summary_rows(report)]
    parts.append("</tbody></table>")
    latencies = report.latencies()
    if latencies:
        parts.append("<h3>Latency per stage</h3>")
        parts += _html_table(
            LATENCY_HEADER,
            [[n, str(c), f"{p50:.3f}", f"{p95:.3f}"] for n, c, p50, p95 in latencies],
        )
    parts += _html_charts(report)
    parts.append("<h2>Scenarios</h2>")
    parts += _html_table(
        SCENARIO_HEADER,
        list(_scenario_rows(report)),
        ["pass" if r.passed else "fail" for r in report.results],
    )
    parts.append("<h2>Calls</h2>")
    for r in report.results:
        status = "pass" if r.passed else "FAIL"
        opened = "" if r.passed else " open"
        parts.append(f"<details{opened}><summary>{_h(r.name)} — {_h(status)}</summary>")
        facts = f"Caller {r.caller_masked}, expected {_expected(r)}, outcome {r.outcome or '–'}" + (
            f", call {r.call_id}" if r.call_id else ""
        )
        parts.append(f"<p>{_h(facts)}.</p>")
        if r.reason and not r.passed:
            parts.append(f'<p class="reason">{_h(r.reason)}</p>')
        if r.turns:
            parts += _html_table(TURN_HEADER, list(_turn_rows(r)))
        parts.append("</details>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
