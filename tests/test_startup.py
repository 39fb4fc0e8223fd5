"""Where the box's start-up time goes (assistant.ops.startup)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.ops.startup import StartupClock, process_age_s


def fake_clock(*times: float) -> Callable[[], float]:
    it = iter(times)
    return lambda: next(it)


def test_each_stage_is_timed_and_the_summary_counts_from_the_process_start() -> None:
    clock = StartupClock(clock=fake_clock(10.0, 10.2, 11.0, 11.1, 11.4), age=lambda: 0.5)
    for stage in ("accounts", "engines", "prompts", "SIP"):
        clock.mark(stage)
    assert clock.total_s() == pytest.approx(1.9)
    assert clock.summary() == (
        "ready 1.90 s after the process started: interpreter and imports 0.50 s, "
        "accounts 0.20 s, engines 0.80 s, prompts 0.10 s, SIP 0.30 s"
    )


def test_without_the_process_start_the_summary_says_so() -> None:
    clock = StartupClock(clock=fake_clock(0.0, 1.25), age=lambda: None)
    clock.mark("engines")
    assert clock.summary() == "ready 1.25 s after start-up began: engines 1.25 s"


def test_process_age_reads_proc(tmp_path: Path) -> None:
    stat, uptime = tmp_path / "stat", tmp_path / "uptime"
    ticks = os.sysconf("SC_CLK_TCK")
    # the command name may hold spaces and parentheses: fields are counted after the last ")"
    fields = ["S", *["0"] * 18, str(int(100.0 * ticks)), "0"]
    stat.write_text("1234 (python (x) y) " + " ".join(fields) + "\n", encoding="ascii")
    uptime.write_text("102.50 200.00\n", encoding="ascii")
    assert process_age_s(stat, uptime) == pytest.approx(2.5)
    uptime.write_text("garbage\n", encoding="ascii")
    assert process_age_s(stat, uptime) is None
    assert process_age_s(tmp_path / "missing", uptime) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_this_process_has_an_age() -> None:
    age = process_age_s()
    assert age is not None and 0.0 <= age < 7 * 24 * 3600
