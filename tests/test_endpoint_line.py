"""Speech above the line: voices around the caller do not start a turn or barge in.

A voice-activity detector says whether a frame is speech, not whose. With
``EndpointSettings.above_line_db`` a frame starts an utterance only when it is also that
far above the median level of the line heard while waiting. Time is data: synthetic audio fed
in 20 ms packets, no sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from assistant.audio.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSettings,
    NoInput,
    SpeechEnded,
    SpeechStarted,
)
from assistant.core.errors import ConfigError
from assistant.core.ports import PCM
from assistant.testing.audio import concat, silence, tone

R = 8000
PACKET = 160


@dataclass
class TalkVad:
    """Every sound louder than -40 dBFS RMS is speech to it, as voices nearby are to a real
    detector."""

    rate: int = R
    frame_samples: int = 256

    def probability(self, frame: PCM) -> float:
        level = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
        return 0.9 if level > 330 else 0.05

    def reset(self) -> None:
        return None


def talk(seconds: float, dbfs: float, base_hz: float = 250.0) -> PCM:
    """Speech-like: 180 ms syllables with 60 ms dips, at ``dbfs`` peak."""
    parts: list[PCM] = []
    t, k = 0.0, 0
    while t < seconds - 1e-9:
        on = min(0.18, seconds - t)
        parts.append(tone(base_hz + 37 * (k % 7), on, R, dbfs=dbfs))
        t += on
        gap = min(0.06, seconds - t)
        if gap > 0:
            parts.append(silence(gap, R))
            t += gap
        k += 1
    return concat(*parts)


def crowd(seconds: float) -> PCM:
    """Voices around the caller: continuous talk at -26 dBFS peak (about -29 dBFS RMS), in a
    register no word of the tone recogniser has."""
    return talk(seconds, -26.0, base_hz=1500.0)


def over(a: PCM, b: PCM) -> PCM:
    n = max(len(a), len(b))
    x = np.zeros(n)
    x[: len(a)] += a
    x[: len(b)] += b
    return np.clip(x, -32768, 32767).astype(np.int16)


def feed(ep: Endpointer, pcm: PCM) -> list[EndpointEvent]:
    events: list[EndpointEvent] = []
    for i in range(0, len(pcm), PACKET):
        events += ep.feed(pcm[i : i + PACKET])
    return events


def endpointer(above: float | None = 6.0, **kw: float) -> Endpointer:
    settings = EndpointSettings(above_line_db=above, no_input_s=5.0, **kw)
    return Endpointer(R, settings, vad=TalkVad())


def started(events: list[EndpointEvent]) -> list[SpeechStarted]:
    return [e for e in events if isinstance(e, SpeechStarted)]


def test_the_default_starts_six_db_above_the_line() -> None:
    assert EndpointSettings().above_line_db == 6.0
    assert EndpointSettings.digits().above_line_db == 6.0
    assert EndpointSettings.yesno().above_line_db == 6.0


def heard_the_line(above: float | None = 6.0, **kw: float) -> Endpointer:
    """An endpointer that has heard 1.5 s of the crowd before the turn (the prompt's time)."""
    ep = endpointer(above, **kw)
    ep.hear_line(crowd(1.5))
    return ep


def test_voices_around_the_caller_do_not_start_an_utterance() -> None:
    ep = heard_the_line()
    assert ep.line_dbfs == pytest.approx(-29.0, abs=1.5)
    events = feed(ep, crowd(6.0))
    assert started(events) == []
    assert any(isinstance(e, NoInput) for e in events)


def test_without_the_gate_the_same_voices_start_one() -> None:
    ep = heard_the_line(None)
    assert started(feed(ep, crowd(3.0)))


def test_the_caller_over_the_crowd_starts_it_at_their_first_word() -> None:
    ep = heard_the_line()
    caller = concat(silence(2.0, R), talk(1.5, -6.0), silence(1.0, R))
    begun = started(feed(ep, over(crowd(4.5), caller)))
    assert len(begun) == 1
    assert begun[0].onset_s == pytest.approx(2.0, abs=0.04)


def test_a_caller_quieter_than_the_margin_is_not_started() -> None:
    # 3 dB above the crowd is within it: the margin decides
    caller = concat(silence(1.0, R), talk(1.5, -23.0))
    assert started(feed(heard_the_line(), over(crowd(2.5), caller))) == []
    assert started(feed(heard_the_line(2.0), over(crowd(2.5), caller)))


def test_a_running_utterance_is_not_gated() -> None:
    # once the caller speaks, frames no louder than the line keep the utterance going (gating
    # them ended the detector's speech in every pause between digits: README)
    ep = heard_the_line(end_silence_s=0.5)
    events = feed(ep, concat(crowd(1.0), talk(0.5, -6.0), crowd(1.0), silence(1.0, R)))
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(started(events)) == 1 and len(ended) == 1
    assert ended[0].speech_end_s == pytest.approx(2.5, abs=0.07)


def test_on_a_quiet_line_quiet_syllables_keep_the_turn_going() -> None:
    # a word at -6 dBFS, then syllables 30 dB quieter: the turn ends after the quiet ones
    # (their last full syllable ends at 1.4 s), exactly as without the gate
    ends = []
    for above in (6.0, None):
        ep = endpointer(above, end_silence_s=0.5)
        ep.hear_line(silence(1.5, R))
        events = feed(ep, concat(talk(0.5, -6.0), talk(1.0, -36.0), silence(1.0, R)))
        ended = [e for e in events if isinstance(e, SpeechEnded)]
        assert len(started(events)) == 1 and len(ended) == 1
        ends.append(ended[0].speech_end_s)
    assert ends[0] == ends[1] == pytest.approx(1.4, abs=0.04)


def test_with_no_line_heard_yet_nothing_is_gated() -> None:
    # a recording that starts with speech: its first frame has no line to be above
    ep = endpointer()
    assert ep.line_dbfs is None
    begun = started(feed(ep, crowd(1.0)))
    assert begun and begun[0].onset_s == pytest.approx(0.0, abs=0.04)


def test_the_line_is_what_was_heard_while_waiting() -> None:
    ep = endpointer(end_silence_s=0.3)
    clock = ep.now_s
    ep.hear_line(silence(1.0, R))
    assert ep.now_s == clock  # the line before the turn is not the turn's time
    assert ep.line_dbfs is not None and ep.line_dbfs < -100
    feed(ep, concat(talk(1.0, -6.0), silence(0.5, R)))  # an utterance, then its end
    assert ep.line_dbfs is not None and ep.line_dbfs < -100  # its frames are not the line
    ep.reset()  # kept across turns: it describes the line, not the turn
    assert ep.line_dbfs is not None and ep.line_dbfs < -100
    ep.hear_line(crowd(1.5))  # 1.5 s of the crowd replace the silence
    assert ep.line_dbfs == pytest.approx(-29.0, abs=1.5)


def test_frame_energy_detection_is_not_changed() -> None:
    # without a detector the energy threshold over the adaptive floor decides, as before
    settings = EndpointSettings(above_line_db=30.0)
    ep = Endpointer(R, settings)
    events = feed(ep, concat(silence(1.0, R), talk(1.0, -12.0)))
    assert len(started(events)) == 1


@pytest.mark.parametrize("bad", [-1.0, 41.0, float("nan"), float("inf")])
def test_the_margin_is_validated(bad: float) -> None:
    with pytest.raises(ConfigError):
        EndpointSettings(above_line_db=bad)


# -- a live call: the line heard during the prompt is the line the turn must start above ------


def test_a_live_turn_does_not_start_on_the_crowd_heard_during_the_prompt() -> None:
    from assistant.call.channels.live import LiveChannel
    from assistant.call.prompt_voice import PromptVoice
    from assistant.core.dialog import Heard, Listen, Say
    from assistant.core.dialog import NoInput as TurnNoInput
    from assistant.language.prompts import Prompts
    from assistant.testing.audio import FakeSynthesizer
    from assistant.testing.media import ScriptedMedia, Speak, ToneRecognizer

    asr = ToneRecognizer(["đúng", "không"], sample_rate=R)
    voice = PromptVoice(Prompts.load(), FakeSynthesizer(R, seconds_per_char=0.04), R)

    def call(caller: PCM) -> object:
        media = ScriptedMedia([Speak(caller)], rate=R)
        ch = LiveChannel(media, asr.open_session(), R, voice, clock=media.clock, vad=TalkVad)
        ch.say(Say("ask_code"), interruptible=False)
        return ch.listen(Listen.yesno())

    # the crowd all through the prompt and the turn: the turn hears no caller
    assert isinstance(call(crowd(20.0)), TurnNoInput)
    # the caller's answer, well above it, is heard
    answer = concat(silence(6.0, R), asr.clip("đúng", 0.6).samples, silence(1.5, R))
    event = call(over(crowd(9.0), answer))
    assert isinstance(event, Heard) and event.recognition.text == "đúng"


def test_the_crowd_does_not_barge_in_on_the_next_prompt_but_the_caller_does() -> None:
    from assistant.call.channels.live import LiveChannel
    from assistant.call.prompt_voice import PromptVoice
    from assistant.call.runtime import SayResult
    from assistant.core.dialog import Listen, NoInput, Say
    from assistant.language.prompts import Prompts
    from assistant.testing.audio import FakeSynthesizer
    from assistant.testing.media import ScriptedMedia, Speak, ToneRecognizer

    asr = ToneRecognizer(["đúng", "không"], sample_rate=R)
    voice = PromptVoice(Prompts.load(), FakeSynthesizer(R, seconds_per_char=0.04), R)

    def call(later: PCM) -> tuple[ScriptedMedia, SayResult]:
        """A prompt and a turn over the crowd (no caller), then the next prompt over ``later``."""
        media = ScriptedMedia([Speak(crowd(9.5)), Speak(later)], rate=R)
        ch = LiveChannel(media, asr.open_session(), R, voice, clock=media.clock, vad=TalkVad)
        ch.say(Say("ask_code"), interruptible=False)
        assert isinstance(ch.listen(Listen.yesno()), NoInput)
        assert media.now_s < 9.5  # the next prompt starts over the crowd (at 8.9 s)
        return media, ch.say(Say("ask_code_again"), interruptible=True)

    # the crowd goes on under the next prompt: it is not the caller, the prompt plays on
    media, result = call(crowd(8.0))
    assert result is SayResult.DONE and media.flushes == []
    # the caller speaks up over it 0.8 s into the prompt: that stops it
    media, result = call(over(crowd(8.0), concat(silence(0.2, R), talk(1.0, -6.0))))
    assert result is SayResult.INTERRUPTED and len(media.flushes) == 1


def test_the_line_is_handed_on_to_another_endpointer_of_the_call() -> None:
    first = heard_the_line()
    feed(first, concat(talk(0.5, -6.0), silence(1.0, R)))  # a turn: its words are not the line
    levels = first.line_levels
    assert len(levels) == 12000 // 256  # the 1.5 s of the crowd, frame by frame
    second = endpointer()
    second.seed_line(levels)
    assert second.line_dbfs == first.line_dbfs == pytest.approx(-29.0, abs=1.5)
    assert started(feed(second, crowd(2.0))) == []


def test_the_line_median_is_kept_over_its_window() -> None:
    import random

    from assistant.audio.endpoint import _LineLevels

    rng = random.Random(3)
    window = _LineLevels(47)
    assert window.median() is None
    values: list[float] = []
    for _ in range(500):
        values.append(rng.choice([-120.0, rng.uniform(-80, -10)]))
        window.add(values[-1])
        assert window.median() == pytest.approx(float(np.median(values[-47:])))
    assert list(window) == values[-47:] and len(window) == 47
    window.clear()
    assert window.median() is None and len(window) == 0
