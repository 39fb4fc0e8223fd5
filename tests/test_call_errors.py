"""An engine failing mid-call: the apology (when the line still works), one audit row, and the
outcome ``technical_error`` with the engine's stable code, for each kind of engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.call.channels.live import LiveChannel
from assistant.call.channels.replay import ReplayChannel
from assistant.call.channels.text import TextChannel
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallSummary
from assistant.call.wiring import Box, cli_caller
from assistant.core.errors import RecognizerError, StoreError, SynthesizerError, TransportError
from assistant.core.ports import (
    Audio,
    CallerId,
    CallerSource,
    LookupVerdict,
    MediaEvent,
    RecognizerSession,
)
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer, tone
from assistant.testing.media import BoxDone, ScriptedMedia, Speak, ToneRecognizer
from assistant.testing.recognizer import FakeRecognizer

CODE = "0123456789"
PHONE = "0912345678"
CODE_WORDS = "không một hai ba bốn năm sáu bảy tám chín"


@pytest.fixture()
def store(tmp_path: Path) -> SqlAccountStore:
    s = SqlAccountStore(f"sqlite:///{tmp_path / 'box.sqlite3'}")
    s.create_schema()
    s.add_account(CODE, PHONE)
    return s


def audit_outcomes(store: SqlAccountStore) -> list[str]:
    return [row.outcome for row in store.audit_rows()]


def test_a_recogniser_error_apologises_and_audits(store: SqlAccountStore) -> None:
    rec = FakeRecognizer([RecognizerError("decoder crashed", code="asr_decode_failed")])
    box = Box(store=store, recognizer=rec)
    said: list[str] = []

    def channel(session: RecognizerSession | None) -> ReplayChannel:
        assert session is not None
        return ReplayChannel([Audio(tone(300, 1.0, 16000), 16000)], session, None)

    summary, used = box.run_call(channel, caller=cli_caller(PHONE))
    said = [t.box for t in summary.turns]
    assert summary.outcome == "technical_error"
    assert summary.error == "asr_decode_failed"
    assert any("sự cố" in s for s in said)
    assert isinstance(used, ReplayChannel) and used.closed_with is not None
    assert used.closed_with.value == "technical_error"
    assert audit_outcomes(store) == ["technical_error"]
    assert rec.sessions[0].closed  # the call's session is closed whatever happened


class FailingStore:
    """The real store, whose lookups fail (a database that went away mid-call)."""

    def __init__(self, inner: SqlAccountStore) -> None:
        self.inner = inner

    def matches(self, phone: str, code: str) -> bool:
        raise StoreError("database went away", code="store_unavailable")

    def lookup(self, phone: str, code: str) -> LookupVerdict:
        return LookupVerdict.MATCH if self.matches(phone, code) else LookupVerdict.MISMATCH

    def reset_password(
        self, phone: str, code: str, *, call_id: str, caller_source: str, peer_class: str = ""
    ) -> str | None:
        raise AssertionError("never reached")

    def record(
        self,
        *,
        call_id: str,
        phone: str | None,
        code: str | None,
        outcome: str,
        caller_source: str,
        peer_class: str = "",
    ) -> None:
        self.inner.record(
            call_id=call_id, phone=phone, code=code, outcome=outcome, caller_source=caller_source
        )

    def health(self) -> dict[str, object]:
        return self.inner.health()


def text_call(box: Box, script: str) -> tuple[CallSummary, str]:
    out = io.StringIO()
    prompts = box.prompts
    summary, _ = box.run_call(
        lambda _s: TextChannel(prompts, io.StringIO(script), out, interactive=False),
        caller=CallerId(PHONE, CallerSource.CLI),
    )
    return summary, out.getvalue()


def test_a_store_error_apologises_and_audits(store: SqlAccountStore) -> None:
    box = Box(store=FailingStore(store))
    summary, transcript = text_call(box, f"#{CODE}\n#1\n")
    assert (summary.outcome, summary.error) == ("technical_error", "store_unavailable")
    assert "sự cố" in transcript
    assert audit_outcomes(store) == ["technical_error"]


class BrokenAuditStore(FailingStore):
    """Lookups work, but no audit row can be written either."""

    def matches(self, phone: str, code: str) -> bool:
        return self.inner.matches(phone, code)

    def record(self, **_kwargs: object) -> None:
        raise StoreError("database is locked", code="store_locked")


def test_a_store_that_cannot_even_audit_still_ends_the_call(store: SqlAccountStore) -> None:
    box = Box(store=BrokenAuditStore(store))
    summary, transcript = text_call(box, "#1111111111\n#1\n")  # a mismatch, then its audit row
    assert (summary.outcome, summary.error) == ("technical_error", "store_locked")
    assert "(Trợ lý gác máy: technical_error)" in transcript  # the box still hangs up


def test_a_voice_error_ends_the_call_without_a_prompt(store: SqlAccountStore) -> None:
    rec = ToneRecognizer([CODE_WORDS, "đúng"])
    synth = FakeSynthesizer(8000)
    voice = PromptVoice(Prompts.load(), synth, 8000)
    media = ScriptedMedia([BoxDone(), Speak(rec.clip(CODE_WORDS, 1.2), "code")], then="hangup")
    box = Box(store=store, recognizer=rec, voice=voice)
    synth.fail = SynthesizerError("espeak-ng died", code="tts_failed")

    def channel(session: RecognizerSession | None) -> LiveChannel:
        assert session is not None
        return LiveChannel(media, session, rec.sample_rate, voice, clock=media.clock)

    summary, _ = box.run_call(channel, caller=cli_caller(PHONE), clock=media.clock)
    assert (summary.outcome, summary.error) == ("technical_error", "tts_failed")
    assert audit_outcomes(store) == ["technical_error"]
    assert media.box_hung_up_at is not None  # the box hung up: the caller is not left waiting


class DeadLine(ScriptedMedia):
    """A line whose transport fails once the caller has spoken."""

    def receive(self, timeout: float) -> MediaEvent | None:
        if self.now_s > 2.0:
            raise TransportError("RTP socket closed", code="sip_media_failed")
        return super().receive(timeout)


def test_a_line_error_ends_the_call_and_audits(store: SqlAccountStore) -> None:
    rec = ToneRecognizer([CODE_WORDS])
    voice = PromptVoice(Prompts.load(), FakeSynthesizer(8000), 8000)
    media = DeadLine([BoxDone(), Speak(rec.clip(CODE_WORDS, 1.2), "code")], then="silence")
    box = Box(store=store, recognizer=rec, voice=voice)

    def channel(session: RecognizerSession | None) -> LiveChannel:
        assert session is not None
        return LiveChannel(media, session, rec.sample_rate, voice, clock=media.clock)

    summary, _ = box.run_call(channel, caller=cli_caller(PHONE), clock=media.clock)
    assert (summary.outcome, summary.error) == ("technical_error", "sip_media_failed")
    assert audit_outcomes(store) == ["technical_error"]
