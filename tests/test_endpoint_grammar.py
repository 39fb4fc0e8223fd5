"""Grammar-aware end of turn and pluggable voice activity, with time as data (no sleeps).

The endpointer is fed synthetic audio (speech-like tone bursts, silence) in 20 ms packets and
readings (:class:`TurnReading`) as the live channel would hand them over from the recogniser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from assistant.audio.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSettings,
    SpeechEnded,
    SpeechStarted,
    TurnReading,
)
from assistant.core.errors import ConfigError
from assistant.core.ports import PCM
from assistant.testing.audio import concat, silence, tone

R = 8000
PACKET = 160


def burst(seconds: float) -> PCM:
    """Speech-like: 180 ms syllables with 60 ms dips."""
    parts: list[PCM] = []
    t, k = 0.0, 0
    while t < seconds - 1e-9:
        on = min(0.18, seconds - t)
        parts.append(tone(300.0 + 40 * (k % 5), on, R, dbfs=-12.0))
        t += on
        if t < seconds - 1e-9:
            gap = min(0.06, seconds - t)
            parts.append(silence(gap, R))
            t += gap
        k += 1
    return concat(*parts)


def feed(ep: Endpointer, pcm: PCM) -> list[EndpointEvent]:
    events: list[EndpointEvent] = []
    for i in range(0, len(pcm), PACKET):
        events += ep.feed(pcm[i : i + PACKET])
    return events


def speak(settings: EndpointSettings | None = None) -> tuple[Endpointer, float]:
    """An endpointer that has heard 1 s of silence then 1.14 s of speech; the speech end."""
    ep = Endpointer(R, settings or EndpointSettings.digits())
    events = feed(ep, concat(silence(1.0, R), burst(1.14)))  # ends on a syllable
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert ep.speaking
    return ep, ep.now_s


def quiet_until(ep: Endpointer, reading: TurnReading | None, limit_s: float) -> SpeechEnded | None:
    """Feed silence packet by packet, handing ``reading`` over whenever it is wanted."""
    while ep.now_s < limit_s:
        for e in ep.feed(silence(PACKET / R, R)):
            if isinstance(e, SpeechEnded):
                return e
        if reading is not None and ep.wants_reading:
            got = ep.hear(reading)
            if got:
                assert isinstance(got[0], SpeechEnded)
                return got[0]
    return None


def test_a_complete_reading_ends_the_turn_after_a_short_silence() -> None:
    ep, spoke_until = speak()
    reading = TurnReading(True, covers_s=spoke_until + 0.2, trailing_blank_s=0.2)
    ended = quiet_until(ep, reading, spoke_until + 3.0)
    assert ended is not None and ended.complete
    waited = ended.at_s - ended.speech_end_s
    quick = EndpointSettings.digits().complete_silence_s
    assert quick == 0.2  # a code: 200 ms (a yes or no: 250 ms, below)
    assert quick - 1e-9 <= waited < quick + 0.021  # within one packet of complete_silence_s
    assert ended.speech_end_s == pytest.approx(spoke_until, abs=0.02)


def test_an_incomplete_reading_waits_for_the_long_silence() -> None:
    ep, spoke_until = speak()
    ended = quiet_until(ep, TurnReading(False, spoke_until + 0.25, 0.25), spoke_until + 3.0)
    assert ended is not None and not ended.complete
    assert ended.at_s - ended.speech_end_s == pytest.approx(1.4, abs=0.021)


def test_without_readings_the_turn_waits_as_before() -> None:
    ep, spoke_until = speak()
    ended = quiet_until(ep, None, spoke_until + 3.0)
    assert ended is not None and not ended.complete
    assert ended.at_s - ended.speech_end_s == pytest.approx(1.4, abs=0.021)


def test_a_complete_reading_that_is_still_open_waits_the_open_silence() -> None:
    """A code whose last word is a tens word ("... bốn mươi": 40) may still get its unit
    ("ba": 43, as many digits), so it waits ``open_silence_s``, not the short silence."""
    settings = EndpointSettings.digits()
    assert settings.open_silence_s is not None
    assert settings.complete_silence_s is not None
    assert settings.complete_silence_s < settings.open_silence_s < settings.end_silence_s
    ep, spoke_until = speak(settings)
    reading = TurnReading(True, covers_s=spoke_until + 0.2, trailing_blank_s=0.2, open=True)
    ended = quiet_until(ep, reading, spoke_until + 3.0)
    assert ended is not None and ended.complete
    waited = ended.at_s - ended.speech_end_s
    assert settings.open_silence_s - 1e-9 <= waited < settings.open_silence_s + 0.021


def test_an_open_reading_before_the_open_silence_leaves_the_turn_to_the_caller() -> None:
    """The unit that follows after the short silence is heard: the turn is still going."""
    ep, _ = speak()
    feed(ep, silence(0.3, R))  # past complete_silence_s after the speech
    assert ep.hear(TurnReading(True, covers_s=ep.now_s, trailing_blank_s=0.3, open=True)) == []
    events = feed(ep, burst(0.4))  # "ba"
    assert not ep.done and not any(isinstance(e, SpeechEnded) for e in events)
    ended = quiet_until(ep, TurnReading(True, ep.now_s + 0.2, 0.2), ep.now_s + 3.0)
    assert ended is not None and ended.complete
    assert ended.at_s - ended.speech_end_s == pytest.approx(0.2, abs=0.021)


def test_without_an_open_silence_an_open_reading_waits_the_long_silence() -> None:
    settings = EndpointSettings(end_silence_s=1.4, complete_silence_s=0.25)
    ep, spoke_until = speak(settings)
    reading = TurnReading(True, covers_s=spoke_until + 0.2, trailing_blank_s=0.2, open=True)
    ended = quiet_until(ep, reading, spoke_until + 3.0)
    assert ended is not None and not ended.complete
    assert ended.at_s - ended.speech_end_s == pytest.approx(1.4, abs=0.021)


def test_a_reading_that_has_not_heard_the_end_of_speech_does_not_end_the_turn() -> None:
    ep, spoke_until = speak()
    stale = TurnReading(True, covers_s=spoke_until - 0.4, trailing_blank_s=0.3)
    ended = quiet_until(ep, stale, spoke_until + 3.0)
    assert ended is not None and not ended.complete  # waited the long silence


def test_the_acoustic_model_must_show_blank_after_the_last_word() -> None:
    ep, spoke_until = speak()
    still_in_a_word = TurnReading(True, covers_s=spoke_until + 0.25, trailing_blank_s=0.0)
    ended = quiet_until(ep, still_in_a_word, spoke_until + 3.0)
    assert ended is not None and not ended.complete


def test_voice_activity_must_have_heard_some_silence_too() -> None:
    ep, spoke_until = speak()
    feed(ep, silence(0.1, R))
    # the model already says 0.3 s of blank, but the detector has heard only 0.1 s of silence
    assert ep.hear(TurnReading(True, covers_s=ep.now_s, trailing_blank_s=0.3)) == []
    assert not ep.done
    ended = quiet_until(ep, None, spoke_until + 3.0)  # the stored reading is used later
    assert ended is not None and ended.complete
    # the detector's end is late by at most coverage_slack_s (0.1): the stop is taken 0.1 s
    # before it, and min_vad_quiet_s (0.15) of silence ends the turn 0.25 s after that stop
    # (complete_silence_s, 0.2 s, has passed by then)
    assert ended.speech_end_s == pytest.approx(spoke_until - 0.1, abs=1e-6)
    assert ended.at_s - spoke_until == pytest.approx(0.15, abs=0.021)


def test_the_models_word_end_counts_when_the_detector_lags() -> None:
    ep, spoke_until = speak()
    # the model's last word ended 40 ms before the detector's end of speech
    reading = TurnReading(True, covers_s=spoke_until + 0.16, trailing_blank_s=0.2)
    ended = quiet_until(ep, reading, spoke_until + 3.0)
    assert ended is not None and ended.complete
    assert ended.speech_end_s == pytest.approx(spoke_until - 0.04, abs=1e-6)
    assert ended.at_s - spoke_until == pytest.approx(0.16, abs=0.021)  # 0.2 s after it


def test_a_reading_is_wanted_once_per_pause() -> None:
    ep, _ = speak()
    assert not ep.wants_reading  # still talking
    feed(ep, silence(0.12, R))
    assert not ep.wants_reading  # pause too short to be worth a reading
    feed(ep, silence(0.04, R))
    assert ep.wants_reading
    assert ep.hear(TurnReading(False, covers_s=ep.now_s, trailing_blank_s=0.2)) == []
    assert not ep.wants_reading  # this pause has been read: no second flush
    feed(ep, burst(0.6))  # the caller goes on
    assert not ep.wants_reading
    feed(ep, silence(0.16, R))
    assert ep.wants_reading  # a new pause, not covered by the old reading


def test_a_less_covering_reading_does_not_replace_a_better_one() -> None:
    ep, spoke_until = speak()
    feed(ep, silence(0.26, R))
    assert ep.hear(TurnReading(False, covers_s=ep.now_s, trailing_blank_s=0.2)) == []
    assert ep.hear(TurnReading(True, covers_s=spoke_until - 0.5, trailing_blank_s=0.1)) == []
    assert not ep.wants_reading and not ep.done


def test_yes_no_turns_end_early_too() -> None:
    ep, spoke_until = speak(EndpointSettings.yesno())
    ended = quiet_until(ep, TurnReading(True, spoke_until + 0.3, 0.3), spoke_until + 2.0)
    assert ended is not None and ended.complete
    assert ended.at_s - ended.speech_end_s == pytest.approx(0.25, abs=0.021)


def test_readings_before_speech_or_after_the_turn_do_nothing() -> None:
    ep = Endpointer(R, EndpointSettings.digits())
    assert ep.hear(TurnReading(True, 0.0, 1.0)) == []  # waiting for speech
    assert not ep.wants_reading
    ep2, spoke_until = speak(EndpointSettings(complete_silence_s=None))
    assert quiet_until(ep2, TurnReading(True, spoke_until + 1, 1.0), spoke_until + 0.5) is None
    assert not ep2.wants_reading  # grammar endpointing switched off


def test_grammar_settings_are_validated() -> None:
    for bad in (
        {"complete_silence_s": 0.0},
        {"complete_silence_s": 2.0},  # longer than end_silence_s
        {"min_blank_s": -0.1},
        {"speech_probability": 0.0},
        {"speech_probability": 0.4, "continue_probability": 0.6},
        {"complete_silence_s": 0.1},  # shorter than min_vad_quiet_s
        {"complete_silence_s": 0.25, "open_silence_s": 0.2},  # shorter than the short one
        {"complete_silence_s": 0.25, "open_silence_s": 2.0},  # longer than end_silence_s
        {"open_silence_s": 0.5},  # without complete_silence_s
    ):
        with pytest.raises(ConfigError):
            EndpointSettings(**bad)


# -- a pluggable voice-activity detector ---------------------------------------------------------


@dataclass
class ScriptedVad:
    """Says 'speech' (0.9) for frames louder than a level, 'maybe' (0.4) for quieter sound and
    0.05 for silence; records every frame size it was given."""

    rate: int = R
    frame_samples: int = 256
    sizes: list[int] = field(default_factory=list)

    def probability(self, frame: PCM) -> float:
        self.sizes.append(len(frame))
        level = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
        return 0.9 if level > 1000 else 0.4 if level > 50 else 0.05

    def reset(self) -> None:
        return None


def test_a_voice_activity_detector_decides_speech_in_its_own_windows() -> None:
    vad = ScriptedVad()
    ep = Endpointer(R, EndpointSettings(end_silence_s=0.5), vad=vad)
    events = feed(ep, concat(silence(0.5, R), tone(300.0, 0.6, R, dbfs=-12.0), silence(1.0, R)))
    assert set(vad.sizes) == {256}  # 32 ms windows, whatever the packet size
    started = [e for e in events if isinstance(e, SpeechStarted)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(started) == 1 and len(ended) == 1
    assert started[0].onset_s == pytest.approx(0.5, abs=0.033)
    assert ended[0].speech_end_s == pytest.approx(1.1, abs=0.033)


def test_probability_hysteresis_keeps_a_running_utterance_alive() -> None:
    # 'maybe' sound (0.4) cannot start speech (< 0.5) but keeps it going (>= 0.35)
    vad = ScriptedVad()
    settings = EndpointSettings(end_silence_s=0.3, continue_probability=0.35)
    ep = Endpointer(R, settings, vad=vad)
    murmur = tone(300.0, 0.8, R, dbfs=-50.0)
    assert feed(ep, murmur) == []
    events = feed(ep, concat(tone(300.0, 0.3, R, dbfs=-12.0), murmur, silence(0.5, R)))
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1
    assert ended[0].speech_end_s == pytest.approx(0.8 + 0.3 + 0.8, abs=0.033)
    # without hysteresis (the default) the murmur after the word does not keep it alive
    ep = Endpointer(R, EndpointSettings(end_silence_s=0.3), vad=ScriptedVad())
    feed(ep, murmur)
    events = feed(ep, concat(tone(300.0, 0.3, R, dbfs=-12.0), murmur, silence(0.5, R)))
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1
    assert ended[0].speech_end_s == pytest.approx(0.8 + 0.3, abs=0.033)


def test_a_detector_at_another_rate_is_refused() -> None:
    with pytest.raises(ConfigError):
        Endpointer(16000, vad=ScriptedVad())
