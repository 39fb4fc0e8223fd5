"""End-of-utterance / no-input detection, with time as data (samples fed), no sleeps."""

from __future__ import annotations

import pytest

from assistant.audio.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSettings,
    MaxSpeech,
    NoInput,
    SpeechEnded,
    SpeechStarted,
)
from assistant.audio.g711 import phone_line
from assistant.audio.wav import read_wav
from assistant.core.errors import ConfigError
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import PCM, Audio
from assistant.testing.audio import concat, mix, noise, silence, tone

R = 8000


def run(
    pcm: PCM, rate: int = R, chunk: int = 160, settings: EndpointSettings | None = None
) -> list[EndpointEvent]:
    ep = Endpointer(rate, settings)
    events: list[EndpointEvent] = []
    for i in range(0, len(pcm), chunk):
        events += ep.feed(pcm[i : i + chunk])
    return events


def burst(seconds: float, rate: int = R) -> PCM:
    """Speech-like: 180 ms syllables with 60 ms dips (never stationary for long)."""
    parts: list[PCM] = []
    t = 0.0
    k = 0
    while t < seconds - 1e-9:
        on = min(0.18, seconds - t)
        parts.append(tone(300.0 + 40 * (k % 5), on, rate, dbfs=-12.0))
        t += on
        if t < seconds - 1e-9:
            gap = min(0.06, seconds - t)
            parts.append(silence(gap, rate))
            t += gap
        k += 1
    return concat(*parts)


def test_settings_are_validated() -> None:
    for bad in (
        {"end_silence_s": 0},
        {"no_input_s": -1},
        {"frame_s": 0.5},
        {"min_speech_s": 30.0},
        {"hangover_db": 20.0},
        {"min_speech_dbfs": 5.0},
        {"max_gap_s": -0.1},
        {"noise_window_s": float("nan")},
    ):
        with pytest.raises(ConfigError):
            EndpointSettings(**bad)
    assert EndpointSettings.digits().end_silence_s > EndpointSettings().end_silence_s
    with pytest.raises(ConfigError):
        Endpointer(0)


def test_tone_burst_in_silence() -> None:
    events = run(concat(silence(1.0, R), burst(1.0), silence(2.0, R)))
    assert len(events) == 2
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.onset_s == pytest.approx(1.0, abs=0.02)
    assert started.at_s == pytest.approx(started.onset_s + 0.12, abs=0.021)
    assert ended.speech_end_s == pytest.approx(2.0, abs=0.04)
    assert ended.at_s == pytest.approx(ended.speech_end_s + 0.8, abs=0.021)


def test_line_noise_and_dither_through_a_phone_line_are_not_speech() -> None:
    for dbfs in (-70.0, -60.0, -52.0):
        line = phone_line(Audio(noise(8.0, 16000, dbfs=dbfs), 16000), band=True, noise_dbfs=-65.0)
        assert run(line.samples) == [NoInput(6.0)]


def test_speech_is_found_in_phone_noise() -> None:
    clean = concat(silence(1.5, 16000), burst(1.2, 16000), silence(2.0, 16000))
    noisy = mix(clean, noise(len(clean) / 16000, 16000, dbfs=-50.0, seed=2))
    line = phone_line(Audio(noisy, 16000), band=True, noise_dbfs=-65.0).samples
    events = run(line)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[0].onset_s == pytest.approx(1.5, abs=0.04)  # type: ignore[union-attr]


def test_noise_floor_adapts_to_a_louder_line() -> None:
    ep = Endpointer(R)
    for _ in range(20):
        ep.feed(noise(0.1, R, dbfs=-45.0, seed=_))
    assert ep.noise_floor_dbfs == pytest.approx(-45.0, abs=3.0)
    events: list[EndpointEvent] = []
    loud = mix(concat(burst(0.8), silence(1.5, R)), noise(2.3, R, dbfs=-45.0, seed=99))
    for i in range(0, len(loud), 160):
        events += ep.feed(loud[i : i + 160])
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_no_input_after_the_timeout() -> None:
    assert run(silence(10.0, R)) == [NoInput(6.0)]
    short = EndpointSettings(no_input_s=2.5)
    assert run(silence(10.0, R), settings=short) == [NoInput(2.5)]


def test_clicks_do_not_start_speech() -> None:
    click = tone(1000.0, 0.03, R, dbfs=-3.0)
    pops = concat(*(concat(silence(0.7, R), click) for _ in range(10)))
    assert run(pops) == [NoInput(6.0)]


def test_minimum_speech_duration() -> None:
    short = concat(silence(1.0, R), tone(300.0, 0.08, R), silence(6.0, R))
    assert [type(e) for e in run(short)] == [NoInput]
    enough = concat(silence(1.0, R), tone(300.0, 0.2, R), silence(2.0, R))
    assert [type(e) for e in run(enough)] == [SpeechStarted, SpeechEnded]


def test_pauses_inside_a_code_need_the_digits_setting() -> None:
    reading = concat(silence(0.5, R), burst(1.0), silence(1.0, R), burst(1.0), silence(3.0, R))
    default = run(reading)
    assert [type(e) for e in default] == [SpeechStarted, SpeechEnded]
    assert default[1].speech_end_s == pytest.approx(1.5, abs=0.05)  # type: ignore[union-attr]
    digits = run(reading, settings=EndpointSettings.digits())
    assert [type(e) for e in digits] == [SpeechStarted, SpeechEnded]
    assert digits[1].speech_end_s == pytest.approx(3.5, abs=0.05)  # type: ignore[union-attr]
    assert digits[1].at_s == pytest.approx(3.5 + 1.4, abs=0.05)


def test_max_speech() -> None:
    long_talk = concat(silence(0.5, R), burst(25.0))
    events = run(long_talk)
    assert [type(e) for e in events] == [SpeechStarted, MaxSpeech]
    assert events[1].at_s == pytest.approx(0.5 + 20.0, abs=0.03)


def test_stationary_hum_is_absorbed_into_the_floor() -> None:
    hum = concat(silence(1.0, R), tone(100.0, 8.0, R, dbfs=-20.0))
    events = run(hum)
    assert all(not isinstance(e, MaxSpeech) for e in events)
    assert isinstance(events[-1], SpeechEnded)


@pytest.mark.parametrize("chunk", [1, 37, 160, 321, 4000])
def test_frame_size_does_not_change_events(chunk: int) -> None:
    signal = concat(silence(0.7, R), burst(1.3), silence(1.5, R))
    assert run(signal, chunk=chunk) == run(signal, chunk=160)


def test_speech_starting_at_the_deadline_wins_over_no_input() -> None:
    late = concat(silence(5.96, R), burst(1.0), silence(2.0, R))
    assert [type(e) for e in run(late)] == [SpeechStarted, SpeechEnded]


def test_turn_is_over_until_reset_and_clock_keeps_running() -> None:
    ep = Endpointer(R)
    first = ep.feed(concat(silence(0.5, R), burst(0.6), silence(1.0, R)))
    assert [type(e) for e in first] == [SpeechStarted, SpeechEnded] and ep.done
    assert ep.feed(burst(1.0)) == []
    assert ep.now_s == pytest.approx(3.1)
    ep.reset(EndpointSettings(no_input_s=1.0))
    assert not ep.done and not ep.speaking
    assert ep.feed(silence(2.0, R)) == [NoInput(pytest.approx(4.1))]


def test_corpus_word_padded_with_silence() -> None:
    corpus = shared_corpus_dir()
    if corpus is None:
        pytest.skip("shared corpus ../shared/corpus/real_vi_dev not present")
    word = read_wav(corpus / "lephuongbg_words" / "lephuong" / "bay.wav", 16000)
    padded = concat(silence(1.0, 16000), word.samples, silence(2.0, 16000))
    mic = run(mix(padded, noise(len(padded) / 16000, 16000, dbfs=-65.0)), rate=16000, chunk=320)
    line = run(phone_line(Audio(padded, 16000), band=True, noise_dbfs=-65.0).samples)
    for events in (mic, line):
        assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
        started, ended = events
        assert 1.0 <= started.onset_s <= 1.0 + word.duration  # type: ignore[union-attr]
        assert ended.speech_end_s <= 1.0 + word.duration + 0.05  # type: ignore[union-attr]
