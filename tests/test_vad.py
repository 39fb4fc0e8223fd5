"""The voice-activity detectors on real speech: Silero VAD's ONNX model (from the silero-vad
wheel, on onnxruntime, no torch) at 8 and 16 kHz, and WebRTC VAD. Skipped when not installed."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from assistant.audio.endpoint import Endpointer, EndpointSettings, SpeechEnded, SpeechStarted
from assistant.audio.g711 import phone_line
from assistant.audio.vad import SileroModel, VoiceActivity, WebRtcVad, silero_model_path
from assistant.audio.wav import read_wav
from assistant.core.errors import AssistantError, AudioError, ConfigError
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import PCM
from assistant.testing.audio import concat, noise, silence


def _silero() -> SileroModel:
    try:
        return SileroModel.load()
    except AssistantError as exc:
        pytest.skip(f"Silero VAD unavailable: {exc}")


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return _silero()


def word(rate: int) -> PCM:
    corpus = shared_corpus_dir()
    path = None if corpus is None else corpus / "lephuongbg_words" / "lephuong" / "mot.wav"
    if path is None or not path.is_file():
        pytest.skip("the shared corpus is absent")
    audio = read_wav(path, 16000)
    return phone_line(audio).samples if rate == 8000 else audio.samples


def probabilities(vad: VoiceActivity, pcm: PCM) -> list[float]:
    n = vad.frame_samples
    return [vad.probability(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_silero_hears_a_real_word_and_not_the_silence_around_it(
    silero: SileroModel, rate: int
) -> None:
    stream = silero.stream(rate)
    assert stream.frame_samples == rate * 32 // 1000
    lead = probabilities(stream, concat(noise(0.5, rate, dbfs=-60.0), silence(0.3, rate)))
    speech = probabilities(stream, word(rate))
    assert max(lead) < 0.2
    assert max(speech) > 0.8


def test_silero_runs_without_torch(silero: SileroModel) -> None:
    assert silero_model_path().name == "silero_vad.onnx"
    assert "torch" not in sys.modules


def test_silero_inside_the_endpointer(silero: SileroModel) -> None:
    pcm = concat(silence(1.0, 8000), word(8000), silence(1.0, 8000))
    ep = Endpointer(8000, EndpointSettings(end_silence_s=0.5), vad=silero.stream(8000))
    events = [e for i in range(0, len(pcm), 160) for e in ep.feed(pcm[i : i + 160])]
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert isinstance(events[0], SpeechStarted)
    assert 1.0 <= events[0].onset_s <= 1.0 + len(word(8000)) / 8000


def test_detectors_refuse_wrong_frames_and_rates(silero: SileroModel) -> None:
    with pytest.raises(AudioError):
        silero.stream(8000).probability(np.zeros(160, np.int16))
    with pytest.raises(ConfigError):
        silero.stream(22050)


@pytest.mark.skipif(importlib.util.find_spec("webrtcvad") is None, reason="webrtcvad missing")
def test_webrtc_vad_says_yes_or_no() -> None:
    vad = WebRtcVad(8000, mode=3)
    assert vad.frame_samples == 160
    assert set(probabilities(vad, silence(0.5, 8000))) == {0.0}
    assert max(probabilities(vad, word(8000))) == 1.0
    with pytest.raises(ConfigError):
        WebRtcVad(8000, mode=4)
    with pytest.raises(AudioError):
        vad.probability(np.zeros(100, np.int16))
