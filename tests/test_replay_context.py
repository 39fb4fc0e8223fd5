"""A recorded turn is heard as a live call hears its line: from the lead-in before the caller
starts to speak, after the recording's noisy line before that as context only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from assistant.call.channels.live import LiveSettings
from assistant.call.channels.replay import ReplayChannel, recognize_turn
from assistant.core.dialog import Heard, Listen, NoInput
from assistant.core.ports import PCM, Audio, ListenMode, ListenSpec
from assistant.testing.media import ContextSession, ToneRecognizer

RATE = 8000


@pytest.fixture()
def asr() -> ToneRecognizer:
    return ToneRecognizer(["đúng", "không"], sample_rate=RATE)


def turn(asr: ToneRecognizer, before_s: float, noise_dbfs: float | None) -> PCM:
    """``before_s`` of line (noise at ``noise_dbfs``, or digital silence), "đúng", 1 s more."""
    rng = np.random.default_rng(3)
    clip = asr.clip("đúng", 0.6).samples.astype(np.float64)
    n_before, n_after = round(before_s * RATE), RATE
    x = np.concatenate([np.zeros(n_before), clip, np.zeros(n_after)])
    if noise_dbfs is not None:
        x += rng.normal(0.0, 32768.0 * 10 ** (noise_dbfs / 20), len(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def contiguous(audio: PCM, context: PCM, heard: PCM) -> int:
    """Where the heard audio starts in the recording, the context being just before it."""
    both = np.concatenate([context, heard])
    start = len(audio) - len(both)  # the turn is heard to the recording's end
    assert np.array_equal(audio[start:], both), "context and turn are not the recording's end"
    return start + len(context)


def test_a_noisy_recording_is_heard_from_its_lead_in_after_its_line_as_context(
    asr: ToneRecognizer,
) -> None:
    pcm = turn(asr, 3.0, -50.0)
    session = ContextSession(asr.open_session())
    event = recognize_turn(session, Audio(pcm, RATE), ListenSpec(ListenMode.YESNO))
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    assert session.calls[:3] == ["begin", "context", "feed"]
    context = session.contexts[0]
    assert len(context) == round(LiveSettings().context_s * RATE)
    start = contiguous(pcm, context, session.turns[0])
    # speech is confirmed within 0.2 s of its start (3.0 s), the turn heard from 0.5 s before
    assert 2.5 * RATE <= start <= 2.7 * RATE


def test_a_quiet_recording_gives_no_context_and_is_still_heard_from_its_lead_in(
    asr: ToneRecognizer,
) -> None:
    pcm = turn(asr, 3.0, None)
    session = ContextSession(asr.open_session())
    event = recognize_turn(session, Audio(pcm, RATE), ListenSpec(ListenMode.YESNO))
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    assert "context" not in session.calls
    start = len(pcm) - len(session.turns[0])
    assert 2.5 * RATE <= start <= 2.7 * RATE


def test_without_a_lead_in_the_whole_recording_is_heard_and_no_context(
    asr: ToneRecognizer,
) -> None:
    pcm = turn(asr, 3.0, -50.0)
    session = ContextSession(asr.open_session())
    settings = LiveSettings(lead_in_s=None)
    event = recognize_turn(
        session, Audio(pcm, RATE), ListenSpec(ListenMode.YESNO), settings=settings
    )
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    assert "context" not in session.calls
    assert np.array_equal(session.turns[0], pcm)


def test_speech_starting_at_once_is_heard_whole(asr: ToneRecognizer) -> None:
    pcm = turn(asr, 0.0, -50.0)
    session = ContextSession(asr.open_session())
    event = recognize_turn(session, Audio(pcm, RATE), ListenSpec(ListenMode.YESNO))
    assert isinstance(event, Heard) and event.recognition.text == "đúng"
    assert "context" not in session.calls  # nothing came before the heard audio
    assert np.array_equal(session.turns[0], pcm)


def test_a_recording_without_speech_is_heard_whole_and_is_silence(asr: ToneRecognizer) -> None:
    pcm = turn(asr, 0.0, None)[-RATE:]  # the last second: digital silence
    session = ContextSession(asr.open_session())
    event = recognize_turn(session, Audio(pcm, RATE), ListenSpec(ListenMode.YESNO))
    assert isinstance(event, NoInput)
    assert session.calls[0] == "begin" and "context" not in session.calls
    assert np.array_equal(session.turns[0], pcm)


def test_the_replay_channel_hears_with_the_settings_it_was_given(asr: ToneRecognizer) -> None:
    pcm = turn(asr, 3.0, -50.0)
    for context_s, contexts in ((1.2, 1), (0.0, 0)):
        session = ContextSession(asr.open_session())
        channel = ReplayChannel(
            [Audio(pcm, RATE)], session, None, settings=LiveSettings(context_s=context_s)
        )
        event = channel.listen(Listen.yesno())
        assert isinstance(event, Heard) and event.recognition.text == "đúng"
        assert len(session.contexts) == contexts


@dataclass
class DeafVad:
    """A detector that never hears speech; counts the streams made, by rate."""

    rate: int = RATE
    frame_samples: int = RATE // 50
    made: list[int] = field(default_factory=list)

    def __call__(self, rate: int) -> DeafVad:
        self.made.append(rate)
        return DeafVad(rate, rate // 50)

    def probability(self, frame: PCM) -> float:
        return 0.0

    def reset(self) -> None:
        return None


def test_each_replayed_turn_is_heard_with_a_fresh_detector_of_the_given_kind(
    asr: ToneRecognizer,
) -> None:
    pcm = turn(asr, 3.0, -50.0)
    vad = DeafVad()
    session = ContextSession(asr.open_session())
    channel = ReplayChannel([Audio(pcm, RATE), Audio(pcm, RATE)], session, None, vad=vad)
    for _ in range(2):
        assert isinstance(channel.listen(Listen.yesno()), Heard)  # the recogniser heard it
    assert vad.made == [RATE, RATE]
    # the detector heard no speech start, so no lead-in: both turns heard whole, no context
    assert all(np.array_equal(t, pcm) for t in session.turns)
    assert "context" not in session.calls


def test_a_quiet_recording_of_digits_still_gets_its_line_as_context(asr: ToneRecognizer) -> None:
    pcm = turn(asr, 3.0, None)  # digital silence before the speech
    session = ContextSession(asr.open_session())
    event = recognize_turn(session, Audio(pcm, RATE), ListenSpec(ListenMode.DIGITS, 10))
    assert isinstance(event, Heard)
    assert session.calls[:3] == ["begin", "context", "feed"]
    assert len(session.contexts[0]) == round(LiveSettings().context_s * RATE)
    contiguous(pcm, session.contexts[0], session.turns[0])
