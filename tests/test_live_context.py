"""The line before a turn, heard as context: the recogniser first hears the caller's line from
just before the turn's own audio (during the prompt too), as context only. Simulated line, no
sleeps: every sample is checked against what the caller sent."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.call.channels.live import LineTail, LiveChannel, LiveSettings
from assistant.call.prompt_voice import PromptVoice
from assistant.core.dialog import Heard, Listen, Say
from assistant.core.errors import ConfigError
from assistant.core.ports import PCM, ListenMode
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer
from assistant.testing.media import (
    BoxDone,
    BoxSpeaks,
    ContextSession,
    ScriptedMedia,
    Silence,
    Speak,
    Step,
    ToneRecognizer,
)

RATE = 8000  # the recogniser at the line's rate: what it is given is what the line brought


@pytest.fixture()
def asr() -> ToneRecognizer:
    return ToneRecognizer(["đúng", "không"], sample_rate=RATE)


@pytest.fixture(scope="module")
def voice() -> PromptVoice:
    return PromptVoice(Prompts.load(), FakeSynthesizer(RATE, seconds_per_char=0.04), RATE)


def channel(
    media: ScriptedMedia,
    asr: ToneRecognizer,
    voice: PromptVoice,
    context_s: float,
    lead_in_s: float | None = LiveSettings().lead_in_s,
) -> tuple[LiveChannel, ContextSession]:
    session = ContextSession(asr.open_session())
    settings = LiveSettings(context_s=context_s, lead_in_s=lead_in_s)
    ch = LiveChannel(media, session, RATE, voice, clock=media.clock, settings=settings)
    return ch, session


def where(line: PCM, context: PCM, turn: PCM) -> int:
    """The line position the turn's audio starts at, the context being the line just before."""
    both = np.concatenate([context, turn])
    for start in range(len(line) - len(both) + 1):
        if np.array_equal(line[start : start + len(both)], both):
            return start + len(context)
    raise AssertionError("context and turn are not one stretch of the caller's line")


def test_the_context_is_the_line_just_before_the_turns_audio(
    asr: ToneRecognizer, voice: PromptVoice
) -> None:
    media = ScriptedMedia(
        [Silence(3.0), Speak(asr.clip("đúng", 0.6)), Silence(1.5)], rate=RATE, noise_dbfs=-50
    )
    ch, session = channel(media, asr, voice, context_s=1.2)
    event = ch.listen(Listen.yesno())
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    assert session.calls[:3] == ["begin", "context", "feed"]
    context, turn = session.contexts[0], session.turns[0]
    assert len(context) == round(1.2 * RATE)
    start = where(media.caller_audio().samples, context, turn)
    # the turn is heard from its lead-in (0.5 s) before the speech was confirmed (0.12 s in)
    assert start == pytest.approx(2.62 * RATE, abs=0.03 * RATE)


def test_the_context_reaches_back_into_the_prompt_the_caller_answered(
    asr: ToneRecognizer, voice: PromptVoice
) -> None:
    media = ScriptedMedia(
        [BoxDone(0.2), Speak(asr.clip("không", 0.6)), Silence(1.5)], rate=RATE, noise_dbfs=-50
    )
    ch, session = channel(media, asr, voice, context_s=1.2)
    ch.say(Say("ask_code"), interruptible=False)
    prompt_end = media.box_spans()[-1][1]
    event = ch.listen(Listen.yesno())
    assert isinstance(event, Heard) and event.recognition.text == "không"
    context, turn = session.contexts[0], session.turns[0]
    assert len(context) == round(1.2 * RATE)
    start = where(media.caller_audio().samples, context, turn)
    # the caller answered 0.2 s after the prompt: most of the context was heard during it
    assert (start - len(context)) / RATE < prompt_end - 0.5


def test_after_a_barge_in_the_context_comes_before_the_audio_kept_from_the_prompt(
    asr: ToneRecognizer, voice: PromptVoice
) -> None:
    media = ScriptedMedia(
        [BoxSpeaks(1.5), Speak(asr.clip("đúng", 0.6)), Silence(1.5)], rate=RATE, noise_dbfs=-50
    )
    ch, session = channel(media, asr, voice, context_s=1.0)
    ch.say(Say("ask_code"), interruptible=True)
    assert media.flushes, "the caller's speech did not stop the prompt"
    event = ch.listen(Listen.yesno())
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    # one stretch of the line, nothing heard twice and nothing left out
    where(media.caller_audio().samples, session.contexts[0], session.turns[0])
    assert len(session.contexts[0]) == RATE


def test_no_context_when_it_is_off_or_the_engine_takes_none(
    asr: ToneRecognizer, voice: PromptVoice
) -> None:
    script: list[Step] = [Silence(2.0), Speak(asr.clip("đúng", 0.6)), Silence(1.5)]
    media = ScriptedMedia(list(script), rate=RATE, noise_dbfs=-50)
    ch, session = channel(media, asr, voice, context_s=0.0)
    assert isinstance(ch.listen(Listen.yesno()), Heard)
    assert "context" not in session.calls
    # a quiet line (-70 dBFS, below context_min_dbfs) is not worth hearing as context
    media = ScriptedMedia(list(script), rate=RATE, noise_dbfs=-70)
    ch, session = channel(media, asr, voice, context_s=1.2)
    assert isinstance(ch.listen(Listen.yesno()), Heard)
    assert "context" not in session.calls
    # a session without context() (the tone session itself) hears the turn as before
    media = ScriptedMedia(list(script), rate=RATE, noise_dbfs=-50)
    plain = asr.open_session()
    ch = LiveChannel(media, plain, RATE, voice, clock=media.clock)
    event = ch.listen(Listen.yesno())
    assert isinstance(event, Heard) and event.recognition.text == "đúng"


def test_a_turn_heard_from_its_start_gets_the_line_before_it(
    asr: ToneRecognizer, voice: PromptVoice
) -> None:
    media = ScriptedMedia(
        [BoxDone(0.1), Speak(asr.clip("đúng", 0.6)), Silence(1.5)], rate=RATE, noise_dbfs=-50
    )
    ch, session = channel(media, asr, voice, context_s=0.8, lead_in_s=None)
    ch.say(Say("ask_code"), interruptible=False)
    assert isinstance(ch.listen(Listen.yesno()), Heard)
    assert len(session.contexts[0]) == round(0.8 * RATE)
    where(media.caller_audio().samples, session.contexts[0], session.turns[0])


@pytest.mark.parametrize("bad", [-0.1, 5.5])
def test_the_context_setting_is_checked(bad: float) -> None:
    with pytest.raises(ConfigError, match="context_s"):
        LiveSettings(context_s=bad)


def test_the_line_tail_keeps_positions() -> None:
    tail = LineTail(10)
    for i in range(6):
        tail.append(np.arange(i * 4, i * 4 + 4, dtype=np.int16))
    assert tail.end == 24
    assert tail.between(18, 22).tolist() == [18, 19, 20, 21]
    assert tail.between(0, 24).tolist() == list(range(12, 24))  # older samples are gone
    assert tail.between(30, 40).size == 0 and tail.between(5, 5).size == 0


@pytest.mark.parametrize("noise_dbfs", [-70.0, None])
def test_a_digits_turn_hears_the_line_before_it_whatever_its_level(
    asr: ToneRecognizer, voice: PromptVoice, noise_dbfs: float | None
) -> None:
    media = ScriptedMedia(
        [Silence(3.0), Speak(asr.clip("không", 0.6)), Silence(4.0)],
        rate=RATE,
        noise_dbfs=noise_dbfs,
    )
    ch, session = channel(media, asr, voice, context_s=1.2)
    event = ch.listen(Listen.digits(10))
    assert isinstance(event, Heard) and event.recognition.text == "không"
    assert session.calls[:3] == ["begin", "context", "feed"]
    assert len(session.contexts[0]) == round(1.2 * RATE)
    where(media.caller_audio().samples, session.contexts[0], session.turns[0])


def test_the_context_gate_is_per_listening_mode() -> None:
    settings = LiveSettings()
    assert settings.context_gate(ListenMode.DIGITS) is None
    assert settings.context_gate(ListenMode.YESNO) == settings.context_min_dbfs
    strict = LiveSettings(digits_context_min_dbfs=-40.0)
    assert strict.context_gate(ListenMode.DIGITS) == -40.0
