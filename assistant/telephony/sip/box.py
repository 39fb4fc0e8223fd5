"""The phone line: ``python -m assistant sip`` answers SIP calls and runs the conversation.

One recogniser model, one prompt voice (fixed prompts rendered once) and one account store are
shared by every call; each call gets its own dialog state, recogniser session and channel, in
the worker thread the transport gives it. One JSON summary per call goes to ``--log-dir``:
call id, masked caller, outcome, durations and per-stage latency (end of caller speech →
first audio of the reply), nothing secret: the SIP Call-ID (a trunk may embed the calling
number in it) is kept only as ``sip_call_id_hash``, an HMAC under the install's secret
(operators recompute it with the same store to match a trunk's log). SIGTERM drains: no new
calls, current calls finish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.accounts.limits import LimitSettings
from assistant.accounts.mint import MAX_POOL
from assistant.audio.vad import VoiceActivity, make_vad
from assistant.call.channels.live import LiveChannel, LiveSettings
from assistant.call.prompt_voice import PromptVoice
from assistant.call.wiring import Box, BoxSettings
from assistant.core.errors import AssistantError, ConfigError
from assistant.core.ports import CallMedia, Recognizer, RecognizerSession
from assistant.core.settings import SpeechSettings, check_vad
from assistant.ops.logs import call_context, use_json_logs
from assistant.ops.memory import limit_malloc_arenas, release_free_memory
from assistant.ops.metrics import BoxMetrics, MeteredChannel, MeteredSession, parse_listen, serve
from assistant.ops.startup import StartupClock
from assistant.telephony.sip.callerid import CallerTrust
from assistant.telephony.sip.rtprio import DEFAULT_PRIORITY

PHONE_RATE = 8000

log = logging.getLogger("assistant.sip")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class SipBox:
    """The per-call handler and summary writer given to the transport."""

    def __init__(
        self,
        box: Box,
        *,
        log_dir: Path | None,
        live: LiveSettings | None = None,
        metrics: BoxMetrics | None = None,
        vad: Callable[[int], VoiceActivity] | None = None,
        call_id_digest: Callable[[str], str] | None = None,
    ) -> None:
        """``vad`` makes each call's voice-activity detector (``None``: frame energy). Turns
        end early when the running reading is complete, judged by the dialog's own reader.
        ``call_id_digest`` hashes the Call-ID for the per-call summary (never the Call-ID)."""
        if box.recognizer is None or box.voice is None:
            raise ConfigError("the phone line needs a recogniser and a voice")
        self.box = box
        self.vad = vad
        self.judge = box.judge()
        self.recognizer: Recognizer = box.recognizer
        self.voice: PromptVoice = box.voice
        self.log_dir = log_dir
        self.live = live or LiveSettings()
        self.metrics = metrics
        self._digest = call_id_digest or _sha256_digest
        self._summaries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.finished = 0

    def handle_call(self, media: CallMedia) -> None:
        metrics = self.metrics

        def channel(session: RecognizerSession | None) -> LiveChannel | MeteredChannel:
            assert session is not None
            if metrics is not None:
                session = MeteredSession(session, self.recognizer.sample_rate, metrics.rtf)
            live = LiveChannel(
                media,
                session,
                self.recognizer.sample_rate,
                self.voice,
                settings=self.live,
                vad=self.vad,
                judge=self.judge,
            )
            return live if metrics is None else MeteredChannel(live, metrics)

        if metrics is not None:
            metrics.call_started()
        # what the metrics count if something unexpected escapes (the transport logs it)
        summary: dict[str, Any] = {"outcome": None, "error": "call_failed"}
        with call_context(media.call_id):
            try:
                result, _ = self.box.run_call(channel, caller=media.caller, call_id=media.call_id)
                summary = result.as_dict()
            except AssistantError as exc:  # the call could not even start (no session)
                log.error("call %s failed: %s", media.call_id, exc)
                summary = {"outcome": None, "call_id": media.call_id, "error": exc.code}
                media.hangup()
            finally:
                if metrics is not None:
                    metrics.call_finished(summary.get("outcome"), summary.get("error"))
        summary.pop("turns", None)  # what was heard may hold the code: not in the call log
        stages = summary.get("stages", {})
        summary["latency"] = {
            name: {"n": len(v), "p50": _percentile(v, 0.5), "max": max(v)}
            for name, v in stages.items()
            if v
        }
        with self._lock:
            self._summaries[media.call_id] = summary

    def call_ended(self, info: Mapping[str, Any]) -> None:
        call_id = str(info.get("call_id", ""))
        with self._lock:
            summary = self._summaries.pop(call_id, {"call_id": call_id, "outcome": None})
            self.finished += 1
        sip = dict(info)
        raw_call_id = sip.pop("sip_call_id", None)
        if raw_call_id:  # a trunk may embed the calling number in it: keep a keyed hash only
            sip["sip_call_id_hash"] = self._digest(str(raw_call_id))[:32]
        summary["sip"] = sip
        log.info("call %s: %s", call_id, summary.get("outcome"))
        if self.log_dir is not None:
            write_summary(self.log_dir / f"{call_id}.json", summary)


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    """``summary`` as JSON at ``path``, atomically: whoever lists the folder (an operator's log
    shipper, the tests) sees no file or the whole one, never a summary half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, ensure_ascii=False, indent=1, default=str)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _ports(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise ConfigError(f"--rtp-ports must look like 40000-40999, got {text!r}") from None
    if not 1024 <= lo < hi <= 65535:
        raise ConfigError(f"--rtp-ports {text!r} is not a valid range")
    return lo, hi


@dataclass(frozen=True)
class SipSettings:
    """The ``sip`` command's settings, validated before anything is loaded."""

    listen: str = "127.0.0.1:5070"
    db_url: str = ""
    log_dir: Path | None = None
    max_calls: int = 4
    trusted_peers: tuple[str, ...] = ()
    rtp_ports: str = "40000-40999"
    rtp_timeout_s: int = 15
    ready_file: Path | None = None
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    metrics_listen: str | None = None  # HOST:PORT for Prometheus, None: no metrics
    log_format: str = "json"  # "json": one object a line (see assistant.ops.logs), or "text"
    vad: str = "silero"  # voice activity: silero (Silero VAD), webrtc, or energy
    caller_trust: str = "trunk"
    max_calls_per_source: int = 2
    limits: str | None = None  # "phone_lookups=5,..." (None: $VSSID_LIMITS, else defaults)
    ready_passwords: int | None = None  # hashed ahead (None: one per call slot; 0: on demand)
    media_priority: int = DEFAULT_PRIORITY  # the stack's pacing threads' SCHED_FIFO (0: off)

    def __post_init__(self) -> None:
        if self.ready_passwords is not None and not 0 <= self.ready_passwords <= MAX_POOL:
            raise ConfigError(f"--ready-passwords must be within 0..{MAX_POOL}")
        check_vad(self.vad)
        if self.max_calls < 1:
            raise ConfigError("--max-calls must be at least 1")
        if self.max_calls_per_source < 1:
            raise ConfigError("--max-calls-per-source must be at least 1")
        CallerTrust(self.caller_trust)
        if not 0 <= self.media_priority <= 99:
            raise ConfigError("--media-priority must be within 0..99 (0: off)")
        if self.limits is not None:
            LimitSettings.parse(self.limits)
        _ports(self.rtp_ports)
        if self.metrics_listen is not None:
            parse_listen(self.metrics_listen)
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"--log-format must be json or text, got {self.log_format!r}")

    @property
    def rtp_range(self) -> tuple[int, int]:
        return _ports(self.rtp_ports)


def run_sip(settings: SipSettings) -> int:
    clock = StartupClock()
    from assistant.telephony.sip.transport import BaresipTransport

    if settings.log_format == "json":
        use_json_logs()
    limit_malloc_arenas()  # a thread per call: without a cap the box grows call after call
    box_settings = BoxSettings(
        db_url=settings.db_url, speech=settings.speech, recognizer=True, voice_rate=PHONE_RATE
    )
    from assistant.accounts.store import SqlAccountStore

    metrics = BoxMetrics() if settings.metrics_listen is not None else None
    limits = LimitSettings.parse(settings.limits) if settings.limits is not None else None
    ready = settings.max_calls if settings.ready_passwords is None else settings.ready_passwords
    store = SqlAccountStore(settings.db_url, limits=limits, ready_passwords=min(ready, MAX_POOL))
    clock.mark("accounts")
    with Box.open(box_settings, store=store) as box:
        clock.mark("engines")
        box.store.health()  # fail now, not on the first caller
        assert box.voice is not None and box.recognizer is not None
        box.voice.preload()  # fixed prompts rendered once, before the first call
        release_free_memory()  # what loading freed, back to the system before the calls
        clock.mark("prompts")
        handler = SipBox(
            box,
            log_dir=settings.log_dir,
            metrics=metrics,
            vad=make_vad(settings.vad, PHONE_RATE),
            call_id_digest=lambda value: store.keyed_digest("sip-call-id", value),
        )
        server = None
        if metrics is not None and settings.metrics_listen is not None:
            server = serve(metrics, settings.metrics_listen)
            log.warning("metrics on %s", server.url)
        transport = BaresipTransport(
            settings.listen,
            max_calls=settings.max_calls,
            trusted_peers=list(settings.trusted_peers),
            rtp_ports=settings.rtp_range,
            rtp_timeout_s=settings.rtp_timeout_s,
            caller_trust=CallerTrust(settings.caller_trust),
            max_calls_per_source=settings.max_calls_per_source,
            media_priority=settings.media_priority,
        )
        signal.signal(signal.SIGTERM, lambda *_: transport.drain())
        signal.signal(signal.SIGINT, lambda *_: transport.stop())
        ready_file = settings.ready_file

        def announce() -> None:
            if not transport.wait_ready(30):
                log.warning("the SIP stack was not ready 30 s after it was started")
                return
            clock.mark("SIP")
            log.warning("%s", clock.summary())
            if ready_file is not None:
                ready_file.write_text("ready\n", encoding="utf-8")

        threading.Thread(target=announce, daemon=True, name="sip-ready").start()
        log.warning("answering SIP calls on %s (engine %s)", settings.listen, box.recognizer.name)
        try:
            transport.serve(handler.handle_call, on_call_end=handler.call_ended)
        finally:
            if server is not None:
                server.close()
            store.close()
    print(json.dumps({"calls": handler.finished}))
    return 0
