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

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.accounts.store import SqlAccountStore
from assistant.audio.vad import VoiceActivity
from assistant.batch.charts import digit_stats
from assistant.batch.report import BatchReport, ScenarioResult, render_html, render_markdown
from assistant.batch.scenarios import Problem, Scenario, load_scenarios, validate_audio
from assistant.call.wiring import Box, BoxSettings
from assistant.cli.replay import ReplayRequest, replay_call
from assistant.core.dialog import Digits, Event, Lookup, Say
from assistant.core.errors import AssistantError, ConfigError, StoreError
from assistant.core.ports import Recognizer
from assistant.core.settings import SpeechSettings
from assistant.language.numbers import NumberReader
from assistant.language.phone import mask_code, mask_phone
from dialogs.reset import ResetDialog, ResetState, Result

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
    box: Box,
    *,
    speech: SpeechSettings,
    audio_s: float,
    reveal_codes: bool = False,
    vad: Callable[[int], VoiceActivity] | None = None,
) -> ScenarioResult:
    result = ScenarioResult(
        name=scenario.name,
        caller_masked=mask_phone(scenario.caller),
        expect=scenario.expect,
        expect_digits_masked=mask_code(scenario.expect_digits) if scenario.expect_digits else None,
        audio_s=audio_s,
    )
    dialog = WatchedDialog(box.reader)
    request = ReplayRequest(
        db_url="",
        caller=scenario.caller,
        turns=scenario.turns,
        speech=speech,
        reveal_codes=reveal_codes,
        vad=vad,
    )
    t0 = time.perf_counter()
    try:
        summary, channel = replay_call(request, box, dialog=dialog)
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
        reasons.append(f"[{summary.error}] {summary.error_message or 'an engine failed'}")
    if summary.outcome != scenario.expect:
        reasons.append(f"expected {scenario.expect}, got {summary.outcome or 'no outcome'}")
    if scenario.expect_digits is not None:
        result.digits = digit_stats(scenario.expect_digits, dialog.confirmed)
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


def run_batch(
    scenarios: Path,
    *,
    db_url: str,
    speech: SpeechSettings,
    report_path: Path,
    fmt: str | None,
    progress: bool,
    recognizer: Recognizer | None = None,
    reveal_codes: bool = False,
    vad: Callable[[int], VoiceActivity] | None = None,
) -> dict[str, Any]:
    """Replay every scenario, write the report, return the summary (see the module doc).

    Codes (heard digits, keys, read-backs) are masked in the report unless ``reveal_codes``;
    the report's header says so when they are not.

    ``recognizer``: an already loaded recogniser to use (tests); it is then not closed here.
    Otherwise the one ``speech`` names is loaded once, after every file has been checked.
    ``vad`` makes each turn's voice-activity detector, as on the phone line (``None``: energy).
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
    box = Box.open(
        BoxSettings(db_url=db_url, speech=speech, recognizer=runnable), recognizer=recognizer
    )
    rec = box.recognizer
    engine = rec.name if rec is not None else (speech.asr + " (not loaded)")
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    try:
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
                        box,
                        speech=speech,
                        audio_s=seconds,
                        reveal_codes=reveal_codes,
                        vad=vad,
                    )
                )
            passed = sum(r.passed for r in results)
            bar.set_postfix(passed=passed, failed=len(results) - passed, refresh=False)
        bar.close()
    finally:
        box.close()  # closes the recogniser only when the box loaded it
    report = BatchReport(
        source=str(source),
        engine=engine,
        results=results,
        wall_s=time.perf_counter() - started,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        codes_revealed=reveal_codes,
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
        "codes_revealed": reveal_codes,
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
