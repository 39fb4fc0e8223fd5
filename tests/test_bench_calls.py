"""The load benchmark's RTP analysis (``scripts/bench_calls.py``): slips told from late packets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_calls.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_calls", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_calls"] = module
    spec.loader.exec_module(module)
    return module


def stream(bench: ModuleType, arrivals: list[float], loud: bool = True) -> list[object]:
    rms = 2000.0 if loud else 0.0
    return [bench.Packet(at, 20000, 30000, seq % 65536, 0, rms) for seq, at in enumerate(arrivals)]


def on_time(n: int) -> list[float]:
    rng = np.random.default_rng(3)
    return [100.0 + 0.02 * k + float(rng.uniform(0, 0.004)) for k in range(n)]


def test_a_steady_stream_has_no_slip_and_nothing_late(bench: ModuleType) -> None:
    timing = bench.rtp_timing(stream(bench, on_time(500)), (20000, 20010))
    assert timing["slips"] == 0
    assert timing["late"] == 0


def test_one_empty_transmit_tick_is_one_slip_and_makes_the_rest_late(bench: ModuleType) -> None:
    times = on_time(500)
    slipped = times[:300] + [t + 0.02 for t in times[300:]]
    timing = bench.rtp_timing(stream(bench, slipped), (20000, 20010))
    assert timing["slips"] == 1
    assert timing["slips_in_audio"] == 1
    assert timing["missing"] == 0
    assert timing["late"] > 0  # the fitted schedule counts packets after the step as late
    assert timing["worst_late_between_slips_ms"] <= 4.5  # apart from the step, on time


def test_a_slip_in_silence_is_not_in_audio(bench: ModuleType) -> None:
    times = on_time(500)
    slipped = times[:12] + [t + 0.019 for t in times[12:]]  # near the start of the stream too
    timing = bench.rtp_timing(stream(bench, slipped, loud=False), (20000, 20010))
    assert timing["slips"] == 1
    assert timing["slips_in_audio"] == 0


def test_a_late_packet_that_is_caught_up_is_late_but_no_slip(bench: ModuleType) -> None:
    times = on_time(500)
    times[200] += 0.03
    timing = bench.rtp_timing(stream(bench, times), (20000, 20010))
    assert timing["slips"] == 0
    assert timing["late"] == 1
    assert timing["worst_late_between_slips_ms"] >= 30
