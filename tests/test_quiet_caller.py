"""A quiet caller: the detector and the acoustic model hear them lifted to a level they know.

Synthetic audio fed in 20 ms packets (time is data, no sleeps). The model on the corpus
speaker's digits at about -56 dBFS over a μ-law line: ``tests/test_asr_onnx.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from assistant.asr.features import compute_fbank
from assistant.asr.level import FEATURE_PER_DB, InputGain
from assistant.audio.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSettings,
    NoInput,
    SpeechStarted,
)
from assistant.audio.level import SILENT_DBFS, SpeechPeak, lift_db
from assistant.core.errors import ConfigError
from assistant.core.ports import PCM
from assistant.testing.audio import concat, noise, silence, tone

R = 8000


@dataclass
class LoudVad:
    """Calls a frame speech only above -40 dBFS RMS, as Silero VAD misses quiet speech (it
    called 36 % of a -56 dBFS caller's speech frames speech, 98 % of the same 12 dB louder);
    keeps every frame it was shown."""

    rate: int = R
    frame_samples: int = 256
    seen: list[PCM] = field(default_factory=list)

    def probability(self, frame: PCM) -> float:
        self.seen.append(frame.copy())
        level = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
        return 0.9 if level > 330 else 0.05

    def reset(self) -> None:
        return None


def words(dbfs: float) -> PCM:
    """Four 200 ms syllables 100 ms apart at ``dbfs`` peak, after 0.5 s of a silent line."""
    parts = [silence(0.5, R)]
    for k in range(4):
        parts += [tone(300.0 + 40 * k, 0.2, R, dbfs=dbfs), silence(0.1, R)]
    return concat(*parts, silence(1.0, R))


def events(ep: Endpointer, pcm: PCM) -> list[EndpointEvent]:
    out: list[EndpointEvent] = []
    for i in range(0, len(pcm), 160):
        out += ep.feed(pcm[i : i + 160])
    return out


def settings(**kw: Any) -> EndpointSettings:
    return EndpointSettings(no_input_s=2.5, **kw)


# -- the level of the loudest stretch ---------------------------------------------------------


def test_the_peak_is_the_loudest_100_ms_in_any_chunks() -> None:
    pcm = concat(silence(0.3, R), noise(0.3, R, dbfs=-30.0, seed=3), silence(0.2, R))
    whole = SpeechPeak(R // 100, 10)
    assert whole.add(pcm) == pytest.approx(-30.0, abs=0.5)
    for size in (1, 7, 80, 333):
        pieces = SpeechPeak(R // 100, 10)
        for i in range(0, len(pcm), size):
            pieces.add(pcm[i : i + size])
        assert pieces.peak_dbfs == pytest.approx(whole.peak_dbfs, abs=1e-6)


def test_the_peak_settles_once_it_is_loud_enough() -> None:
    """Then it ignores what follows: the box's hot path stops paying for it."""
    peak = SpeechPeak(R // 100, 10, enough_dbfs=-30.0)
    peak.add(noise(0.3, R, dbfs=-40.0, seed=2))
    assert not peak.settled and peak.peak_dbfs == pytest.approx(-40.0, abs=0.5)
    peak.add(noise(0.3, R, dbfs=-25.0, seed=3))
    assert peak.settled
    settled_at = peak.peak_dbfs
    assert peak.add(noise(0.3, R, dbfs=-6.0, seed=4)) == settled_at
    assert peak.add_power(1.0) == settled_at


def test_a_click_is_not_a_peak_and_silence_has_none() -> None:
    peak = SpeechPeak(R // 100, 10)
    assert peak.add(silence(1.0, R)) == SILENT_DBFS
    click = concat(
        silence(0.2, R), tone(1000.0, 0.01, R, dbfs=-6.0, ramp_s=0.0005), silence(0.2, R)
    )
    # 10 ms at about -9 dBFS RMS, averaged over 100 ms: about 10 dB lower
    assert peak.add(click) == pytest.approx(-19.0, abs=1.0)


@pytest.mark.parametrize(
    ("peak", "lift"),
    [(-10.0, 0.0), (-30.0, 0.0), (-36.0, 6.0), (-50.0, 18.0), (-64.0, 18.0), (-65.0, 0.0)],
)
def test_the_lift_brings_a_quiet_peak_to_the_target(peak: float, lift: float) -> None:
    assert lift_db(peak, -30.0, 18.0, -65.0) == lift


# -- the detector hears a quiet caller ---------------------------------------------------------


def test_a_quiet_caller_starts_a_turn_when_lifted_and_not_as_they_come() -> None:
    quiet = words(-52.0)  # about -55 dBFS RMS: under the detector's -40
    lifted = events(Endpointer(R, settings(), vad=LoudVad()), quiet)
    assert any(isinstance(e, SpeechStarted) for e in lifted)
    plain = events(Endpointer(R, settings(vad_lift_to_dbfs=None), vad=LoudVad()), quiet)
    assert not any(isinstance(e, SpeechStarted) for e in plain)
    assert isinstance(plain[-1], NoInput)


def test_a_caller_at_a_usual_level_is_judged_as_they_come() -> None:
    """Once 100 ms of them is heard (at their first syllable's onset the loudest 100 ms so
    far is still partly silence, and is lifted a little)."""
    vad = LoudVad()
    pcm = words(-20.0)
    events(Endpointer(R, settings(), vad=vad), pcm)
    shown = np.concatenate(vad.seen)
    settled = round(0.65 * R)  # the first syllable starts at 0.5 s
    assert np.array_equal(shown[settled:], pcm[settled : len(shown)])
    assert not np.array_equal(shown[:settled], pcm[:settled])


def test_a_line_below_the_floor_is_not_lifted_into_speech() -> None:
    vad = LoudVad()
    pcm = words(-70.0)
    assert isinstance(events(Endpointer(R, settings(), vad=vad), pcm)[-1], NoInput)
    assert np.array_equal(np.concatenate(vad.seen), pcm[: sum(len(f) for f in vad.seen)])


def test_the_lift_is_validated() -> None:
    with pytest.raises(ConfigError):
        EndpointSettings(vad_lift_to_dbfs=5.0)
    with pytest.raises(ConfigError):
        EndpointSettings(vad_lift_max_db=-1.0)
    with pytest.raises(ConfigError):
        EndpointSettings(vad_lift_floor_dbfs=-20.0)  # above the target


# -- the acoustic model hears a quiet caller ---------------------------------------------------


def test_a_gain_on_the_samples_is_an_offset_on_every_feature() -> None:
    pcm = noise(0.5, 16000, dbfs=-40.0, seed=1)
    louder = np.round(pcm.astype(np.float64) * 10 ** (12 / 20)).astype(np.int16)
    diff = compute_fbank(louder) - compute_fbank(pcm)
    assert np.allclose(diff, 12 * FEATURE_PER_DB, atol=0.02)


@pytest.mark.parametrize(
    "kw",
    [
        {"target_dbfs": 3.0},
        {"max_gain_db": -1.0},
        {"min_gain_db": 40.0},
        {"floor_dbfs": -10.0},
        {"window_s": 0.001},
        {"target_dbfs": float("nan")},
    ],
)
def test_the_input_gain_is_validated(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        InputGain(**kw)


@pytest.mark.parametrize(
    ("peak", "gain"),
    [(-12.0, 0.0), (-30.0, 0.0), (-32.0, 6.0), (-40.0, 14.0), (-60.0, 30.0), (-80.0, 0.0)],
)
def test_only_a_quiet_utterance_is_raised(peak: float, gain: float) -> None:
    assert InputGain().gain_db(peak) == pytest.approx(gain)
