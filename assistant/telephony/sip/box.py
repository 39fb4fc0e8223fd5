"""The phone line: ``python -m assistant sip`` answers SIP calls and runs the conversation.

One recogniser model, one prompt voice (fixed prompts rendered once) and one account store are
shared by every call; each call gets its own dialog state, recogniser session and channel, in
the worker thread the transport gives it. One JSON summary per call goes to ``--log-dir``:
call id, masked caller, outcome, durations and per-stage latency (end of caller speech →
first audio of the reply), nothing secret. SIGTERM drains: no new calls, current calls finish.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant.accounts.store import SqlAccountStore
from assistant.asr.factory import SpeechSettings, make_recognizer, make_synthesizer
from assistant.call.channels.live import LiveChannel, LiveSettings
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallRuntime
from assistant.core.errors import AssistantError, ConfigError
from assistant.core.ports import AccountStore, CallMedia, Recognizer
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from dialogs.reset import ResetDialog

log = logging.getLogger("assistant.sip")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class SipBox:
    """The per-call handler and summary writer given to the transport."""

    def __init__(
        self,
        dialog: ResetDialog,
        prompts: Prompts,
        store: AccountStore,
        recognizer: Recognizer,
        voice: PromptVoice,
        *,
        log_dir: Path | None,
        live: LiveSettings | None = None,
    ) -> None:
        self.dialog = dialog
        self.prompts = prompts
        self.store = store
        self.recognizer = recognizer
        self.voice = voice
        self.log_dir = log_dir
        self.live = live or LiveSettings()
        self._summaries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.finished = 0

    def handle_call(self, media: CallMedia) -> None:
        session = self.recognizer.open_session()
        try:
            runtime: CallRuntime | None = None

            def stage(name: str, seconds: float) -> None:
                if runtime is not None:
                    runtime.summary.add_stage(name, seconds)

            channel = LiveChannel(
                media,
                session,
                self.recognizer.sample_rate,
                self.voice,
                settings=self.live,
                stage=stage,
            )
            runtime = CallRuntime(
                self.dialog,
                self.store,
                channel,
                self.prompts,
                caller=media.caller,
                call_id=media.call_id,
            )
            summary = runtime.run().as_dict()
        except AssistantError as exc:
            log.error("call %s failed: %s", media.call_id, exc)
            summary = {"outcome": None, "call_id": media.call_id, "error": exc.code}
            media.hangup()
        finally:
            session.close()
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
        summary["sip"] = dict(info)
        log.info("call %s: %s", call_id, summary.get("outcome"))
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"{call_id}.json"
            path.write_text(
                json.dumps(summary, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
            )


def _ports(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise ConfigError(f"--rtp-ports must look like 40000-40999, got {text!r}") from None
    if not 1024 <= lo < hi <= 65535:
        raise ConfigError(f"--rtp-ports {text!r} is not a valid range")
    return lo, hi


def run_sip(args: argparse.Namespace, speech: SpeechSettings) -> int:
    from assistant.telephony.sip.transport import BaresipTransport

    if args.max_calls < 1:
        raise ConfigError("--max-calls must be at least 1")
    rtp = _ports(args.rtp_ports)
    prompts = Prompts.load()
    dialog = ResetDialog(NumberReader.load())
    store = SqlAccountStore(args.db)
    store.health()  # fail now, not on the first caller
    recognizer = make_recognizer(speech)
    synthesizer = make_synthesizer(speech)
    try:
        voice = PromptVoice(prompts, synthesizer, 8000, speech.prompt_pack)
        voice.preload()  # fixed prompts rendered once, before the first call
        box = SipBox(dialog, prompts, store, recognizer, voice, log_dir=args.log_dir)
        transport = BaresipTransport(
            args.listen,
            max_calls=args.max_calls,
            trusted_peers=args.trusted_peer,
            rtp_ports=rtp,
            rtp_timeout_s=args.rtp_timeout,
        )
        signal.signal(signal.SIGTERM, lambda *_: transport.drain())
        signal.signal(signal.SIGINT, lambda *_: transport.stop())
        if args.ready_file is not None:
            ready_file: Path = args.ready_file

            def announce() -> None:
                if transport.wait_ready(30):
                    ready_file.write_text("ready\n", encoding="utf-8")

            threading.Thread(target=announce, daemon=True, name="sip-ready").start()
        log.warning("answering SIP calls on %s (engine %s)", args.listen, recognizer.name)
        transport.serve(box.handle_call, on_call_end=box.call_ended)
    finally:
        recognizer.close()
        synthesizer.close()
        store.close()
    print(json.dumps({"calls": box.finished}))
    return 0
