"""``replay-batch``: many recorded calls through the real conversation, and a report.

Scenarios come from a CSV file or a folder:

* CSV, header ``name,caller,turns,expect[,expect_digits]``: ``turns`` are ``;``-separated WAV
  paths relative to the CSV file; an empty ``caller`` is a withheld number; ``expect`` is an
  outcome (``password_issued``, ``mismatch``, ``no_caller_id``, ``gave_up``, ``hung_up``);
  ``expect_digits`` (optional) is the code the box must have confirmed (looked up) or, when it
  looked nothing up, last read back. Rows whose name starts with ``#`` are comments.
* a folder with one sub-folder per scenario (sub-folders in name order; names starting with
  ``.`` or ``_`` are skipped): its WAV files are the turns in natural name order (``turn2``
  before ``turn10``) and ``scenario.json`` holds ``{"caller", "expect", "expect_digits"}``.

Every WAV file is read before the first call; a scenario with an unreadable file (or an invalid
definition) is reported as failed with the error's code, and the others still run. The
recogniser is loaded once and shared by all calls. The report (Markdown, or a self-contained
HTML page) has the summary (counts, pass rate, engine, audio seconds, recognition time,
real-time factor, per-stage latency p50/p95), a table of scenarios, then each call turn by turn.
Passwords never appear (the runtime masks them); callers and expected codes are masked.
"""

from __future__ import annotations

import csv
import html
import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from assistant.accounts.store import SqlAccountStore
from assistant.asr.factory import SpeechSettings, make_recognizer
from assistant.audio.wav import read_wav, wav_info
from assistant.cli.replay import ReplayRequest, replay_call
from assistant.core.dialog import Digits, Event, Lookup, Outcome, Say
from assistant.core.errors import AssistantError, ConfigError, StoreError
from assistant.core.ports import Recognizer
from assistant.language.numbers import NumberReader
from assistant.language.phone import mask_code, mask_phone
from assistant.language.prompts import Prompts
from dialogs.reset import ResetDialog, ResetState, Result

OUTCOMES = tuple(o.value for o in Outcome)
CSV_REQUIRED = ("name", "caller", "turns", "expect")
SCENARIO_FILE = "scenario.json"
BOX_TEXT_MAX = 110  # characters of what the box said, per turn, in the report


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why a scenario cannot run: a stable code and a message (no codes, no passwords)."""

    code: str
    message: str


@dataclass(frozen=True)
class Scenario:
    name: str
    caller: str | None
    turns: tuple[Path, ...]
    expect: str
    expect_digits: str | None = None
    problem: Problem | None = None


def _natural_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _check_expectations(
    expect: str, expect_digits: str | None
) -> tuple[str | None, Problem | None]:
    """The normalised expected digits, or the problem with the expectations."""
    if expect not in OUTCOMES:
        return None, Problem(
            "scenario_invalid", f"expect {expect!r} is not one of {', '.join(OUTCOMES)}"
        )
    if expect_digits is None or not expect_digits.strip():
        return None, None
    digits = re.sub(r"[\s.\-]", "", expect_digits)
    if not digits.isdigit():
        return None, Problem("scenario_invalid", "expect_digits must hold digits only")
    return digits, None


def load_csv(path: Path) -> list[Scenario]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_REQUIRED if c not in header]
            if missing:
                raise ConfigError(
                    f"{path}: missing column(s) {', '.join(missing)} (header must be "
                    "name,caller,turns,expect[,expect_digits])",
                    code="scenarios_invalid",
                )
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(
            f"cannot read scenario file {path}: {exc}", code="scenarios_invalid"
        ) from exc
    base = path.parent
    out: list[Scenario] = []
    for line, row in enumerate(rows, start=2):
        name = row.get("name", "")
        if name.startswith("#"):
            continue
        name = name or f"line {line}"
        turns = tuple(base / t.strip() for t in row.get("turns", "").split(";") if t.strip())
        expect = row.get("expect", "")
        digits, problem = _check_expectations(expect, row.get("expect_digits"))
        out.append(Scenario(name, row.get("caller") or None, turns, expect, digits, problem))
    return out


def load_folder(path: Path) -> list[Scenario]:
    out: list[Scenario] = []
    for sub in sorted((p for p in path.iterdir() if p.is_dir()), key=_natural_key):
        if sub.name.startswith((".", "_")):
            continue
        turns = tuple(
            sorted(
                (p for p in sub.iterdir() if p.is_file() and p.suffix.lower() == ".wav"),
                key=_natural_key,
            )
        )
        meta_path = sub / SCENARIO_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            bad = Problem("scenario_invalid", f"{sub.name}/{SCENARIO_FILE}: {exc}")
            out.append(Scenario(sub.name, None, turns, "", None, bad))
            continue
        caller = meta.get("caller")
        expect = meta.get("expect")
        digits_raw = meta.get("expect_digits")
        if (
            not (caller is None or isinstance(caller, str | int))
            or not isinstance(expect, str)
            or not (digits_raw is None or isinstance(digits_raw, str | int))
        ):
            bad = Problem(
                "scenario_invalid",
                f"{sub.name}/{SCENARIO_FILE}: caller and "
                "expect_digits must be strings or null, expect a string",
            )
            out.append(Scenario(sub.name, None, turns, str(expect or ""), None, bad))
            continue
        digits, problem = _check_expectations(
            expect, None if digits_raw is None else str(digits_raw)
        )
        number = str(caller).strip() if caller is not None else ""
        out.append(Scenario(sub.name, number or None, turns, expect, digits, problem))
    return out


def load_scenarios(path: Path) -> list[Scenario]:
    """Scenarios from a CSV file or a folder; duplicate names are marked invalid."""
    if path.is_dir():
        scenarios = load_folder(path)
    elif path.is_file():
        scenarios = load_csv(path)
    else:
        raise ConfigError(
            f"scenarios {path} not found (a CSV file or a folder)", code="scenarios_missing"
        )
    if not scenarios:
        raise ConfigError(f"no scenarios in {path}", code="scenarios_empty")
    seen: set[str] = set()
    out: list[Scenario] = []
    for sc in scenarios:
        if sc.name in seen and sc.problem is None:
            out.append(
                Scenario(
                    sc.name,
                    sc.caller,
                    sc.turns,
                    sc.expect,
                    sc.expect_digits,
                    Problem("scenario_invalid", "duplicate scenario name"),
                )
            )
        else:
            out.append(sc)
        seen.add(sc.name)
    return out


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def validate_audio(scenario: Scenario, base: Path) -> tuple[float, Problem | None]:
    """Read every turn (at its own rate): total seconds, or the first file's problem."""
    total = 0.0
    for turn in scenario.turns:
        try:
            total += read_wav(turn, wav_info(turn).rate).duration
        except AssistantError as exc:
            return total, Problem(exc.code, f"{_shown(turn, base)}: {exc.message}")
    return total, None


# -- running -----------------------------------------------------------------------------------


class WatchedDialog(ResetDialog):
    """The reset dialog, noting the codes it reads back and looks up (for ``expect_digits``)."""

    def __init__(self, reader: NumberReader) -> None:
        super().__init__(reader)
        self.read_back: list[str] = []
        self.looked_up: list[str] = []

    def step(self, state: ResetState, event: Event) -> Result:
        new, actions = super().step(state, event)
        for action in actions:
            if isinstance(action, Lookup):
                self.looked_up.append(action.code)
            elif isinstance(action, Say):
                code = action.params.get("code")
                if isinstance(code, Digits) and not code.secret:
                    self.read_back.append(code.value)
        return new, actions

    @property
    def confirmed(self) -> str | None:
        if self.looked_up:
            return self.looked_up[-1]
        return self.read_back[-1] if self.read_back else None


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


def _digits_reason(confirmed: str | None, expected: str) -> str | None:
    if confirmed == expected:
        return None
    if confirmed is None:
        return "no code was read back"
    if len(confirmed) != len(expected):
        return f"code read back has {len(confirmed)} digits, expected {len(expected)}"
    wrong = [str(i + 1) for i, (a, b) in enumerate(zip(confirmed, expected, strict=True)) if a != b]
    return "code read back differs from expect_digits at digit(s) " + ", ".join(wrong)


def run_scenario(
    scenario: Scenario,
    recognizer: Recognizer,
    *,
    db_url: str,
    speech: SpeechSettings,
    reader: NumberReader,
    prompts: Prompts,
    audio_s: float,
) -> ScenarioResult:
    result = ScenarioResult(
        name=scenario.name,
        caller_masked=mask_phone(scenario.caller),
        expect=scenario.expect,
        expect_digits_masked=mask_code(scenario.expect_digits) if scenario.expect_digits else None,
        audio_s=audio_s,
    )
    dialog = WatchedDialog(reader)
    request = ReplayRequest(
        db_url=db_url, caller=scenario.caller, turns=scenario.turns, speech=speech
    )
    t0 = time.perf_counter()
    try:
        summary, channel = replay_call(request, recognizer, dialog=dialog, prompts=prompts)
    except AssistantError as exc:
        result.run_s = time.perf_counter() - t0
        result.error = exc.code
        result.reason = f"[{exc.code}] {exc.message}"
        return result
    result.run_s = time.perf_counter() - t0
    result.call_id = summary.call_id
    result.outcome = summary.outcome
    result.turns = [t.as_dict() for t in summary.turns]
    result.stages = {k: list(v) for k, v in summary.stages.items()}
    result.asr_s = float(sum(summary.stages.get("asr", [])))
    result.recognised_s = max(0.0, audio_s - sum(a.duration for a in channel.turns))
    reasons: list[str] = []
    if summary.error:
        result.error = summary.error
        reasons.append(f"[{summary.error}] the account store failed during the call")
    if summary.outcome != scenario.expect:
        reasons.append(f"expected {scenario.expect}, got {summary.outcome or 'no outcome'}")
    if scenario.expect_digits is not None:
        why = _digits_reason(dialog.confirmed, scenario.expect_digits)
        if why:
            reasons.append(why)
    result.passed = not reasons
    result.reason = "; ".join(reasons) or None
    return result


def _failed(scenario: Scenario, problem: Problem, audio_s: float = 0.0) -> ScenarioResult:
    return ScenarioResult(
        name=scenario.name,
        caller_masked=mask_phone(scenario.caller),
        expect=scenario.expect or "?",
        expect_digits_masked=mask_code(scenario.expect_digits) if scenario.expect_digits else None,
        reason=f"[{problem.code}] {problem.message}",
        error=problem.code,
        audio_s=audio_s,
    )


@dataclass
class BatchReport:
    source: str
    engine: str
    results: list[ScenarioResult]
    wall_s: float
    generated_at: str

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


def run_batch(
    scenarios: Path,
    *,
    db_url: str,
    speech: SpeechSettings,
    report_path: Path,
    fmt: str | None,
    progress: bool,
    recognizer: Recognizer | None = None,
) -> dict[str, Any]:
    """Replay every scenario, write the report, return the summary (see the module doc).

    ``recognizer``: an already loaded recogniser to use (tests); it is then not closed here.
    Otherwise the one ``speech`` names is loaded once, after every file has been checked.
    """
    report_format = report_format_for(report_path, fmt)
    source = Path(scenarios)
    loaded = load_scenarios(source)
    base = source if source.is_dir() else source.parent
    _check_store(db_url)
    checked: list[tuple[Scenario, float, Problem | None]] = []
    for sc in loaded:
        if sc.problem is not None:
            checked.append((sc, 0.0, sc.problem))
        else:
            seconds, problem = validate_audio(sc, base)
            checked.append((sc, seconds, problem))
    runnable = any(problem is None for _sc, _s, problem in checked)
    own = recognizer is None and runnable
    rec = make_recognizer(speech) if own else recognizer
    engine = rec.name if rec is not None else (speech.asr + " (not loaded)")
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    try:
        reader = NumberReader.load()
        prompts = Prompts.load()
        bar = tqdm(
            checked, desc="replay", unit="call", file=sys.stderr, disable=not progress, leave=False
        )
        for sc, seconds, problem in bar:
            if problem is not None or rec is None:
                results.append(_failed(sc, problem or Problem("scenario_invalid", "?"), seconds))
            else:
                results.append(
                    run_scenario(
                        sc,
                        rec,
                        db_url=db_url,
                        speech=speech,
                        reader=reader,
                        prompts=prompts,
                        audio_s=seconds,
                    )
                )
            passed = sum(r.passed for r in results)
            bar.set_postfix(passed=passed, failed=len(results) - passed, refresh=False)
        bar.close()
    finally:
        if own and rec is not None:
            rec.close()
    report = BatchReport(
        source=str(source),
        engine=engine,
        results=results,
        wall_s=time.perf_counter() - started,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    text = render_html(report) if report_format == "html" else render_markdown(report)
    _write(report_path, text)
    rtf = report.rtf
    return {
        "scenarios": len(results),
        "passed": report.passed,
        "failed": report.failed,
        "pass_rate": round(report.pass_rate, 4),
        "report": str(report_path),
        "format": report_format,
        "engine": engine,
        "audio_s": round(report.audio_s, 3),
        "recognition_s": round(report.asr_s, 3),
        "rtf": None if rtf is None else round(rtf, 4),
        "failures": [r.name for r in results if not r.passed],
    }


def report_format_for(path: Path, fmt: str | None) -> str:
    if fmt is None:
        return "html" if Path(path).suffix.lower() in (".html", ".htm") else "md"
    if fmt not in ("md", "html"):
        raise ConfigError(f"report format must be md or html, got {fmt!r}", code="config_invalid")
    return fmt


def _check_store(db_url: str) -> None:
    """Fail before loading anything when the account database cannot be used at all."""
    store = SqlAccountStore(db_url)
    try:
        health = store.health()
    finally:
        store.close()
    if not health.get("ok"):
        raise StoreError(
            f"account database {health.get('db')}: {health.get('message')}",
            code=str(health.get("error") or "store_unavailable"),
        )


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the report {path}: {exc.strerror or exc}", code="report_unwritable"
        ) from exc


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
    lines = ["# Replay batch report", "", "## Summary", ""]
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
