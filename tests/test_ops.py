"""Operators' view of the box: Prometheus metrics and one-JSON-object-a-line logs."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.call.runtime import SayResult, StageSink
from assistant.core.dialog import (
    Digits,
    Event,
    Heard,
    Keypad,
    Listen,
    NoInput,
    Outcome,
    Say,
)
from assistant.core.errors import ConfigError
from assistant.core.ports import ListenMode, ListenSpec, Recognition
from assistant.ops.logs import JsonLogFormatter, call_context, mask_numbers, use_json_logs
from assistant.ops.metrics import BoxMetrics, MeteredChannel, MeteredSession, parse_listen, serve

# ------------------------------------------------------------------------------------- helpers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class FakeChannel:
    """Plays nothing; answers each listen with the next scripted event."""

    def __init__(self, events: list[Event]) -> None:
        self.events = list(events)
        self.said: list[str] = []
        self.stage: StageSink | None = None
        self.closed: Outcome | None = None

    def attach(self, stage: StageSink) -> None:
        self.stage = stage

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        self.said.append(say.prompt)
        if self.stage is not None:
            self.stage("reply_latency", 0.42)
        return SayResult.DONE

    def listen(self, listen: Listen) -> Event:
        return self.events.pop(0) if self.events else NoInput()

    def close(self, outcome: Outcome) -> None:
        self.closed = outcome


class FakeSession:
    """A recogniser session whose work takes ``cost`` seconds of the fake clock per call."""

    def __init__(self, clock: list[float], cost: float) -> None:
        self.clock = clock
        self.cost = cost
        self.fed = 0

    def begin(self, spec: ListenSpec) -> None:
        self.clock[0] += self.cost

    def feed(self, pcm: np.ndarray) -> str:
        self.clock[0] += self.cost
        self.fed += len(pcm)
        return ""

    def end(self) -> Recognition:
        self.clock[0] += self.cost
        return Recognition.of("một hai ba")

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------- metrics


def test_calls_in_progress_and_by_outcome() -> None:
    metrics = BoxMetrics()
    first = samples(metrics.render())
    for outcome in Outcome:  # every outcome is there from the start, at 0
        assert first[("vssid_calls_total", (("outcome", outcome.value),))] == 0
    metrics.call_started()
    metrics.call_started()
    assert samples(metrics.render())[("vssid_calls_in_progress", ())] == 2
    metrics.call_finished("password_issued")
    metrics.call_finished(None, "store_unavailable")
    page = samples(metrics.render())
    assert page[("vssid_calls_in_progress", ())] == 0
    assert page[("vssid_calls_total", (("outcome", "password_issued"),))] == 1
    assert page[("vssid_calls_total", (("outcome", "error"),))] == 1
    assert page[("vssid_errors_total", (("code", "store_unavailable"),))] == 1


def test_labels_never_carry_numbers_or_free_text() -> None:
    metrics = BoxMetrics()
    metrics.call_started()
    metrics.call_finished("0912345678")  # not an outcome: must not become a label
    metrics.error("password 12345678 for 0912345678")
    metrics.error("X-Secret")
    text = metrics.render()
    labels = re.findall(r"\{([^}]*)\}", text)
    assert labels and not any(re.search(r"\d{3,}", lab) for lab in labels), labels
    page = samples(text)
    assert page[("vssid_calls_total", (("outcome", "other"),))] == 1
    assert page[("vssid_errors_total", (("code", "other"),))] == 2


def test_reply_latency_and_rtf_histograms() -> None:
    metrics = BoxMetrics()
    for seconds in (0.25, 0.45, 1.7):
        metrics.stage("reply_latency", seconds)
    metrics.stage("tts", 9.0)  # not watched
    metrics.rtf(0.3)
    page = samples(metrics.render())
    assert page[("vssid_reply_latency_seconds_count", ())] == 3
    assert page[("vssid_reply_latency_seconds_sum", ())] == pytest.approx(2.4)
    assert page[("vssid_reply_latency_seconds_bucket", (("le", "0.5"),))] == 2
    assert page[("vssid_recognizer_rtf_count", ())] == 1
    assert page[("vssid_recognizer_rtf_bucket", (("le", "0.3"),))] == 1


def test_metered_channel_counts_spoken_and_keyed_readbacks() -> None:
    metrics = BoxMetrics()
    code = {"code": Digits("0123456789")}
    inner = FakeChannel([Heard.text("không một hai"), Keypad("0123456789#"), Heard.text("có")])
    channel = MeteredChannel(inner, metrics)
    timings: list[tuple[str, float]] = []
    channel.attach(lambda name, s: timings.append((name, s)))
    channel.say(Say("greeting"), interruptible=False)  # no digits heard yet: nothing counted
    channel.listen(Listen.digits(10))
    channel.say(Say("read_back_unsure", code), interruptible=True)
    channel.listen(Listen.digits(10))
    channel.say(Say("read_back", code), interruptible=True)
    channel.listen(Listen.yesno())  # a yes/no answer does not change how the code came in
    channel.say(Say("read_back", code), interruptible=True)
    channel.close(Outcome.GAVE_UP)
    assert inner.said == ["greeting", "read_back_unsure", "read_back", "read_back"]
    assert inner.closed is Outcome.GAVE_UP
    assert timings == [("reply_latency", 0.42)] * 4  # the runtime still gets every timing
    page = samples(metrics.render())
    readbacks = "vssid_code_readbacks_total"
    assert page[(readbacks, (("input", "speech"), ("unsure", "true")))] == 1
    assert page[(readbacks, (("input", "keypad"), ("unsure", "false")))] == 2
    assert page[(readbacks, (("input", "speech"), ("unsure", "false")))] == 0
    assert page[("vssid_recognizer_unsure_ratio", ())] == 1.0
    assert page[("vssid_reply_latency_seconds_count", ())] == 4


def test_unsure_ratio_is_zero_before_any_spoken_code() -> None:
    metrics = BoxMetrics()
    assert samples(metrics.render())[("vssid_recognizer_unsure_ratio", ())] == 0
    metrics.readback(spoken=True, unsure=False)
    metrics.readback(spoken=True, unsure=True)
    metrics.readback(spoken=True, unsure=False)
    metrics.readback(spoken=False, unsure=False)
    assert metrics.unsure_ratio() == pytest.approx(1 / 3)


def test_metered_session_reports_compute_over_audio_time() -> None:
    clock = [0.0]
    inner = FakeSession(clock, cost=0.05)
    ratios: list[float] = []
    session = MeteredSession(inner, 8000, ratios.append, clock=lambda: clock[0])
    session.begin(ListenSpec(ListenMode.DIGITS, 10))
    for _ in range(10):  # 10 x 0.2 s of audio, 0.05 s of work each
        session.feed(np.zeros(1600, dtype=np.int16))
    assert session.end().text == "một hai ba"
    # (1 begin + 10 feeds + 1 end) x 0.05 s over 2 s of audio
    assert ratios == [pytest.approx(12 * 0.05 / 2.0)]
    assert inner.fed == 16000
    session.begin(ListenSpec(ListenMode.YESNO))
    session.end()  # no audio: no ratio
    assert len(ratios) == 1


def test_metrics_served_over_http() -> None:
    metrics = BoxMetrics()
    metrics.call_started()
    server = serve(metrics, "127.0.0.1:0")
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        with urllib.request.urlopen(server.url, timeout=10) as reply:  # noqa: S310 (loopback)
            assert reply.status == 200
            assert "text/plain" in reply.headers["Content-Type"]
            body = reply.read().decode()
    finally:
        server.close()
    assert samples(body)[("vssid_calls_in_progress", ())] == 1


@pytest.mark.parametrize("text", ["9464", "127.0.0.1", "127.0.0.1:x", ":9464", "h:70000"])
def test_metrics_listen_must_be_host_port(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_listen(text)
    assert info.value.code == "metrics_listen_invalid"


def test_metrics_port_in_use_is_a_config_error() -> None:
    metrics = BoxMetrics()
    first = serve(metrics, "127.0.0.1:0")
    try:
        with pytest.raises(ConfigError) as info:
            serve(BoxMetrics(), f"127.0.0.1:{first.port}")
        assert info.value.code == "metrics_listen_failed"
    finally:
        first.close()


# ---------------------------------------------------------------------------------------- logs


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.ops.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    use_json_logs(logger)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_a_line_with_call_id_and_masked_numbers(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("answered sip-0a1b2c3d4e from 127.0.0.1:5070 (caller +84 912 345 678)")
    with call_context("sip-ffffffffff"):
        logger.warning("code 4801357924 read back\nsecond line")
    logger.info("plain", extra={"call_id": "sip-1234567890"})
    first, second, third = lines(stream)
    assert first["call_id"] == "sip-0a1b2c3d4e"
    assert first["msg"] == "answered sip-0a1b2c3d4e from 127.0.0.1:5070 (caller ********678)"
    assert first["level"] == "info" and first["logger"] == "test.ops.json"
    assert str(first["ts"]).endswith("+00:00")
    assert second["call_id"] == "sip-ffffffffff"
    assert second["msg"] == "code *******924 read back\nsecond line"
    assert third["call_id"] == "sip-1234567890"  # a call id is not a number to mask


def test_tracebacks_are_masked_too(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    try:
        raise ValueError("bad phone 0912345678")
    except ValueError:
        logger.exception("call failed")
    (entry,) = lines(stream)
    exc = entry["exc"]
    assert isinstance(exc, dict) and exc["type"] == "ValueError"
    assert "0912345678" not in json.dumps(entry)
    assert "*******678" in str(exc["trace"])


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4801357924", "*******924"),
        ("+84912345678", "********678"),
        ("RTP 40000-40999, port 5070", "RTP 40000-40999, port 5070"),
        ("12345 678901", "********901"),
        ("at 2026-12-02 00:40:29", "at 2026-12-02 00:40:29"),
    ],
)
def test_mask_numbers(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


def test_formatter_is_reusable_on_any_handler() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "pw %s", ("12345678",), None)
    assert json.loads(JsonLogFormatter().format(record))["msg"] == "pw *****678"
