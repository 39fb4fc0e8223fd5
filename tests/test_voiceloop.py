"""Live calls end to end on a simulated line: endpointing, keys, barge-in, hang-up, latency.

ScriptedMedia plays the caller on a media clock (nothing sleeps); ToneRecognizer hears its
phrases as tones; the real dialog, runtime, prompt voice (fake synthesiser) and store run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.call.channels.live import LiveChannel, LiveSettings
from assistant.call.channels.replay import ReplayChannel
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallRuntime, CallSummary
from assistant.core.dialog import Outcome
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer
from assistant.testing.media import (
    BoxDone,
    BoxSpeaks,
    Hangup,
    Press,
    ScriptedMedia,
    Silence,
    Speak,
    ToneRecognizer,
)
from dialogs.reset import ResetDialog

CODE_WORDS = "không một hai ba bốn năm sáu bảy tám chín"
PHRASES = [CODE_WORDS, "đúng rồi", "không", "không một hai ba", "bốn năm sáu bảy tám chín"]
CALLER = "0912345678"


@pytest.fixture()
def store(tmp_path: Path) -> SqlAccountStore:
    s = SqlAccountStore(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    s.create_schema()
    s.add_account("0123456789", CALLER)
    return s


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts.load()


@pytest.fixture(scope="module")
def voice(prompts: Prompts) -> PromptVoice:
    return PromptVoice(prompts, FakeSynthesizer(8000, seconds_per_char=0.01), 8000)


@pytest.fixture()
def asr() -> ToneRecognizer:
    return ToneRecognizer(PHRASES)


def say(asr: ToneRecognizer, text: str) -> Speak:
    return Speak(asr.clip(text, 1.0, rate=8000))


def run_call(
    media: ScriptedMedia,
    asr: ToneRecognizer,
    voice: PromptVoice,
    prompts: Prompts,
    store: SqlAccountStore,
    settings: LiveSettings | None = None,
) -> CallSummary:
    session = asr.open_session()
    channel = LiveChannel(  # the runtime attaches its timing sink to the channel
        media, session, asr.sample_rate, voice, settings=settings, clock=media.clock
    )
    runtime = CallRuntime(
        ResetDialog(NumberReader.load()),
        store,
        channel,
        prompts,
        caller=media.caller,
        call_id=media.call_id,
        clock=media.clock,
        reveal_password=True,
        reveal_codes=True,  # these tests read what was heard
    )
    return runtime.run()


def test_spoken_code_gets_a_password(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            say(asr, CODE_WORDS),
            BoxDone(0.3),
            say(asr, "đúng rồi"),
            BoxDone(0.3),
            say(asr, "không"),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert summary.password is not None
    assert store.check_password("0123456789", summary.password)
    assert media.box_hung_up_at is not None  # the box ended the call
    # End of caller speech -> first reply audio: the end-of-utterance wait plus processing.
    latencies = summary.stages["reply_latency"]
    assert len(latencies) == 3 and all(0.6 <= x <= 2.0 for x in latencies)
    heard = [t.heard for t in summary.turns if t.heard]
    assert heard == [CODE_WORDS, "đúng rồi", "không"]


def test_code_in_two_utterances_with_a_pause(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            say(asr, "không một hai ba"),
            Silence(2.5),
            say(asr, "bốn năm sáu bảy tám chín"),
            BoxDone(0.3),
            say(asr, "đúng rồi"),
            BoxDone(0.3),
            Hangup(),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert [t.parsed.get("digits") for t in summary.turns[:2]] == ["0123", "456789"]


def test_keypad_code(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            Press("0123456789#", gap_s=0.2),
            BoxDone(0.3),
            Press("1"),
            BoxDone(0.3),
            Press("2"),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert summary.turns[0].keys == "0123456789#"


def test_keypad_code_without_hash_ends_after_the_interdigit_pause(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store
) -> None:
    media = ScriptedMedia(
        [BoxDone(0.3), Press("0123456789", gap_s=0.3), BoxDone(0.3), Press("2")], then="hangup"
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.turns[0].parsed == {"digits": "0123456789"}
    assert summary.outcome == Outcome.HUNG_UP.value  # "2" = no: asked again, then the caller left


def test_speech_barges_in_on_a_prompt(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxSpeaks(0.5),
            say(asr, CODE_WORDS),
            BoxDone(0.3),
            say(asr, "đúng rồi"),
            BoxDone(0.3),
            Hangup(),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert media.flushes, "the greeting was not interrupted"
    assert summary.turns[0].heard == CODE_WORDS
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value


def test_keys_do_not_interrupt_the_password(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            Press("0123456789#"),
            BoxDone(0.3),
            Press("1"),
            BoxSpeaks(0.5),
            Press("5"),
            BoxDone(0.3),
            Hangup(),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert len(media.flushes) == 0


def test_hang_up_mid_flow(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia([BoxDone(0.3), say(asr, "không một hai ba"), Silence(0.5), Hangup()])
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.HUNG_UP.value
    assert media.box_hung_up_at is None
    rows = store.audit_rows(5)
    assert rows[0].outcome == "hung_up"


def test_silence_three_times_gives_up(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia([], limit_s=200)
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.GAVE_UP.value
    assert [t.event for t in summary.turns if t.event] == ["NoInput"] * 3


def test_noisy_line_is_not_speech(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia([], noise_dbfs=-55.0, limit_s=200)
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.GAVE_UP.value


def test_mismatch_for_another_number(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [BoxDone(0.3), say(asr, CODE_WORDS), BoxDone(0.3), say(asr, "đúng rồi")],
        caller="0987654321",
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.MISMATCH.value


def test_replay_channel_records_the_box_at_the_call_rate(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    turns = [asr.clip(CODE_WORDS, 1.0), asr.clip("đúng rồi", 1.0)]
    session = asr.open_session()
    channel = ReplayChannel(turns, session, voice)
    summary = CallRuntime(
        ResetDialog(NumberReader.load()), store, channel, prompts, caller=ScriptedMedia().caller
    ).run()
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    audio = channel.recording()
    assert audio is not None and audio.rate == 8000
    assert audio.duration > 5 and np.abs(audio.samples).max() > 1000


def test_keys_pressed_during_a_prompt_are_timed(asr, voice, prompts, store) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            Press("0123456789#"),
            BoxSpeaks(0.3),
            Press("1"),
            BoxSpeaks(0.3),
            BoxDone(0.3),
            Press("2"),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert media.flushes  # "1" interrupted the read-back
    assert len(summary.stages["reply_latency"]) == 3
