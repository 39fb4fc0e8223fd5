"""What operators watch: Prometheus metrics of the phone box (``sip --metrics HOST:PORT``).

:class:`BoxMetrics` owns one :class:`prometheus_client.CollectorRegistry` (not the global one, so
tests and several boxes in one process stay apart) with:

* ``vssid_calls_in_progress`` (gauge) and ``vssid_calls_total{outcome}`` (outcome: the dialog's
  outcome values, ``error`` for a call that failed, ``none`` for one that ended before any);
* ``vssid_reply_latency_seconds`` (histogram): end of the caller's speech to the first audio of
  the box's reply (the live channel's ``reply_latency`` stage);
* ``vssid_recognizer_rtf`` (histogram): recogniser compute time over audio time per utterance
  (:class:`MeteredSession` measures it around any recogniser session);
* ``vssid_errors_total{code}``: errors by their stable code (``assistant.core.errors``);
* ``vssid_code_readbacks_total{input,unsure}`` and ``vssid_recognizer_unsure_ratio``: how often
  the box read a spoken code back as unsure (the dialog's ``read_back_unsure`` prompt) among
  the codes it heard spoken (:class:`MeteredChannel` watches the conversation).

Labels only take values from fixed sets (outcomes, error codes that look like codes, two input
kinds), never a number, code, password or call id. :func:`serve` exposes the registry over HTTP.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from assistant.call.runtime import Channel, SayResult, StageSink
from assistant.core.dialog import Event, Heard, Keypad, Listen, Outcome, Say
from assistant.core.errors import ConfigError
from assistant.core.ports import (
    PCM,
    ListenMode,
    ListenSpec,
    PartialReading,
    Recognition,
    RecognizerSession,
    partial_reading,
)

__all__ = [
    "BoxMetrics",
    "MeteredChannel",
    "MeteredSession",
    "MetricsServer",
    "parse_listen",
    "serve",
]

_CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")
#: Seconds: the reply-latency target is well under a second, the tail matters.
LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
READBACK_PROMPTS = {"read_back": False, "read_back_unsure": True}


def _outcome_label(outcome: str | None, known: frozenset[str]) -> str:
    if outcome is None:
        return "none"
    value = str(outcome)
    return value if value in known else "other"


def _code_label(code: str | None) -> str:
    value = str(code or "")
    return value if _CODE_RE.fullmatch(value) else "other"


class BoxMetrics:
    """The box's metrics; thread-safe (calls report from their worker threads)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._outcomes = frozenset(o.value for o in Outcome) | {"error"}
        self.in_progress = Gauge(
            "vssid_calls_in_progress", "Calls being answered now", registry=self.registry
        )
        self.calls = Counter(
            "vssid_calls", "Finished calls by outcome", ["outcome"], registry=self.registry
        )
        for label in sorted(self._outcomes | {"none"}):
            self.calls.labels(outcome=label)  # every outcome shows, at 0, from the start
        self.reply_latency = Histogram(
            "vssid_reply_latency_seconds",
            "End of caller speech to the first audio of the reply",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recognizer_rtf = Histogram(
            "vssid_recognizer_rtf",
            "Recogniser compute time divided by the audio time of an utterance",
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "vssid_errors", "Errors by stable code", ["code"], registry=self.registry
        )
        self.readbacks = Counter(
            "vssid_code_readbacks",
            "Codes read back to the caller, by how they were entered and whether unsure",
            ["input", "unsure"],
            registry=self.registry,
        )
        for kind in ("speech", "keypad"):
            for unsure in ("false", "true"):
                self.readbacks.labels(input=kind, unsure=unsure)
        self._lock = threading.Lock()
        self._spoken = 0
        self._unsure = 0
        ratio = Gauge(
            "vssid_recognizer_unsure_ratio",
            "Share of spoken codes read back as unsure (0 before the first)",
            registry=self.registry,
        )
        ratio.set_function(self.unsure_ratio)

    # -- reports -----------------------------------------------------------------------

    def call_started(self) -> None:
        self.in_progress.inc()

    def call_finished(self, outcome: str | None, error: str | None = None) -> None:
        self.in_progress.dec()
        label = "error" if error and outcome is None else _outcome_label(outcome, self._outcomes)
        self.calls.labels(outcome=label).inc()
        if error:
            self.error(error)

    def error(self, code: str) -> None:
        self.errors.labels(code=_code_label(code)).inc()

    def stage(self, name: str, seconds: float) -> None:
        """A per-stage timing from a channel (only the ones watched here are kept)."""
        if name == "reply_latency":
            self.reply_latency.observe(max(0.0, seconds))

    def rtf(self, ratio: float) -> None:
        self.recognizer_rtf.observe(max(0.0, ratio))

    def readback(self, *, spoken: bool, unsure: bool) -> None:
        self.readbacks.labels(
            input="speech" if spoken else "keypad", unsure="true" if unsure else "false"
        ).inc()
        if spoken:
            with self._lock:
                self._spoken += 1
                self._unsure += int(unsure)

    def unsure_ratio(self) -> float:
        with self._lock:
            return self._unsure / self._spoken if self._spoken else 0.0

    def render(self) -> str:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry).decode("utf-8")


class MeteredSession:
    """Any recogniser session, its real-time factor (compute seconds / audio seconds of the
    utterance) passed to ``on_rtf`` at each ``end``; otherwise unchanged."""

    def __init__(
        self,
        inner: RecognizerSession,
        sample_rate: int,
        on_rtf: Callable[[float], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._inner = inner
        self._rate = float(sample_rate)
        self._on_rtf = on_rtf
        self._clock = clock
        self._busy = 0.0
        self._audio = 0.0

    def begin(self, spec: ListenSpec) -> None:
        self._busy = self._audio = 0.0
        t0 = self._clock()
        self._inner.begin(spec)
        self._busy += self._clock() - t0

    def feed(self, pcm: PCM) -> str:
        t0 = self._clock()
        partial = self._inner.feed(pcm)
        self._busy += self._clock() - t0
        self._audio += len(pcm) / self._rate
        return partial

    def end(self) -> Recognition:
        t0 = self._clock()
        result = self._inner.end()
        self._busy += self._clock() - t0
        if self._audio > 0:
            self._on_rtf(self._busy / self._audio)
        return result

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading | None:
        """The inner session's running reading (so metered calls end turns as early)."""
        t0 = self._clock()
        result = partial_reading(self._inner, flush=flush, urgent=urgent)
        self._busy += self._clock() - t0
        return result

    def close(self) -> None:
        self._inner.close()


class MeteredChannel:
    """A call channel that tells :class:`BoxMetrics` about code read-backs: spoken or keyed
    (the last digits turn before the read-back), and unsure or not (which prompt)."""

    def __init__(self, inner: Channel, metrics: BoxMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._digits_spoken: bool | None = None

    def attach(self, stage: StageSink) -> None:
        def both(name: str, seconds: float) -> None:
            stage(name, seconds)
            self._metrics.stage(name, seconds)

        self._inner.attach(both)

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        unsure = READBACK_PROMPTS.get(say.prompt)
        if unsure is not None and self._digits_spoken is not None:
            self._metrics.readback(spoken=self._digits_spoken, unsure=unsure)
        return self._inner.say(say, interruptible=interruptible)

    def listen(self, listen: Listen) -> Event:
        event = self._inner.listen(listen)
        if listen.spec.mode is ListenMode.DIGITS:
            if isinstance(event, Heard):
                self._digits_spoken = True
            elif isinstance(event, Keypad):
                self._digits_spoken = False
        return event

    def close(self, outcome: Outcome) -> None:
        self._inner.close(outcome)


@dataclass
class MetricsServer:
    """The HTTP server of :func:`serve` (``url`` ends in ``/metrics``)."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; port 0 picks a free one) or ConfigError."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(
            f"--metrics must be HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}",
            code="metrics_listen_invalid",
        )
    return host, int(port_text)


def serve(metrics: BoxMetrics, listen: str) -> MetricsServer:
    """Serve ``metrics`` at ``http://HOST:PORT/metrics`` in a daemon thread."""
    host, port = parse_listen(listen)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics on {listen}: {error.strerror or error}",
            code="metrics_listen_failed",
        ) from None
    return MetricsServer(host, int(server.server_address[1]), server, thread)
