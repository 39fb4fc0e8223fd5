"""The pyttsx3 + espeak-ng synthesizer: real engine, no sound device; skipped without espeak."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from assistant.call.prompt_voice import trim_silence
from assistant.core.errors import SynthesizerError
from assistant.core.ports import Audio, Synthesizer
from assistant.tts import pyttsx3 as tts_pyttsx3
from assistant.tts.pyttsx3 import Pyttsx3Synthesizer


@pytest.fixture(scope="module")
def synth() -> Iterator[Pyttsx3Synthesizer]:
    try:
        s = Pyttsx3Synthesizer()
    except SynthesizerError as exc:
        if exc.code == "tts_unavailable":
            pytest.skip(f"espeak-ng / pyttsx3 not installed: {exc}")
        raise
    yield s
    s.close()


def _speech_s(audio: Audio) -> float:
    """Duration without edge silence (espeak's final pause varies with the previous text)."""
    return len(trim_silence(audio.samples, audio.rate)) / audio.rate


def test_is_a_synthesizer_and_renders_vietnamese(synth: Pyttsx3Synthesizer) -> None:
    port: Synthesizer = synth
    audio = port.synthesize("Xin chào quý khách.")
    assert audio.rate == 22050 and audio.samples.dtype == np.int16
    assert 0.8 < audio.duration < 3.0  # the English voice takes about twice as long
    assert synth.voice_id == "aav/vi" and synth.name == "pyttsx3:aav/vi@160"


def test_output_has_3_db_headroom(synth: Pyttsx3Synthesizer) -> None:
    audio = synth.synthesize("Mật khẩu mới của quý khách là bốn, bảy, hai.")
    peak = int(np.max(np.abs(audio.samples.astype(np.int32))))
    assert 8000 < peak <= round(32767 * 10 ** (-3 / 20)) + 1


def test_nothing_is_printed(synth: Pyttsx3Synthesizer, capfd: pytest.CaptureFixture[str]) -> None:
    synth.synthesize("một")
    out, err = capfd.readouterr()
    assert "Audio saved" not in out + err


def test_long_text_is_waited_for(synth: Pyttsx3Synthesizer) -> None:
    """runAndWait() returns long before espeak finishes a long text: we must wait."""
    text = " ".join(["Xin vui lòng nghe kỹ, mật khẩu sẽ được đọc hai lần."] * 10)
    assert synth.synthesize(text).duration > 25.0


def test_output_rate_option() -> None:
    s = Pyttsx3Synthesizer(output_rate=8000, probe=False)
    try:
        audio = s.synthesize("không")
        assert audio.rate == 8000 and 0.2 < audio.duration < 1.5
    finally:
        s.close()


def test_alternating_settings_never_give_empty_audio(synth: Pyttsx3Synthesizer) -> None:
    """espeak's async property changes once cancelled the next utterance (empty WAV)."""
    slow = Pyttsx3Synthesizer(rate_wpm=120, probe=False)
    try:
        lengths: dict[tuple[str, str], list[int]] = {}
        for i in range(48):
            s = (synth, slow)[i % 2]
            text = ("a", "Mật khẩu là", "bốn")[i % 3]
            lengths.setdefault((s.name, text), []).append(len(s.synthesize(text).samples))
        for (_name, _text), values in lengths.items():
            assert min(values) > 0.9 * max(values)
        fast_a = np.median(lengths[(synth.name, "a")])
        slow_a = np.median(lengths[(slow.name, "a")])
        assert slow_a > 1.15 * fast_a  # the rate really changed each time
    finally:
        slow.close()


def test_threads_are_serialised(synth: Pyttsx3Synthesizer) -> None:
    texts = ["một", "hai mươi", "Xin chào quý khách."]
    reference = {t: _speech_s(synth.synthesize(t)) for t in texts}
    results: list[tuple[str, float]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for t in texts * 2:
                results.append((t, _speech_s(synth.synthesize(t))))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 24
    for t, d in results:
        assert d == pytest.approx(reference[t], abs=0.005)


def test_unknown_voice_name(synth: Pyttsx3Synthesizer) -> None:
    with pytest.raises(SynthesizerError) as err:
        Pyttsx3Synthesizer(voice="Vietnamese_(Northern)")  # as `espeak-ng --voices` prints it
    assert err.value.code == "tts_voice_missing"
    assert "aav/vi" in err.value.message  # lists the Vietnamese voices there are


def test_voice_names_resolve() -> None:
    for name in ("aav/vi", "Vietnamese (Northern)", "VI"):
        s = Pyttsx3Synthesizer(voice=name, probe=False)
        assert s.voice_id == "aav/vi"
        s.close()


def test_voice_listed_but_failing_is_caught_by_the_error_event(
    synth: Pyttsx3Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tts_pyttsx3._engine()
    monkeypatch.setattr(state, "voices", [*state.voices, ("zz/broken", "Broken", ("zz",))])
    with pytest.raises(SynthesizerError) as err:
        Pyttsx3Synthesizer(voice="zz/broken")
    assert err.value.code == "tts_voice_missing"
    assert synth.synthesize("một").duration > 0.2  # the engine recovers


def test_missing_espeak_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyttsx3

    def broken_init(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("This means you probably do not have eSpeak or eSpeak-ng installed!")

    monkeypatch.setattr(tts_pyttsx3, "_ENGINE", None)
    monkeypatch.setattr(pyttsx3, "init", broken_init)
    with pytest.raises(SynthesizerError) as err:
        Pyttsx3Synthesizer()
    assert err.value.code == "tts_unavailable"
    assert "apt-get install espeak-ng" in err.value.message


def test_engine_from_a_parent_process_is_refused(
    synth: Pyttsx3Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tts_pyttsx3._engine()
    monkeypatch.setattr(state, "pid", -1)
    with pytest.raises(SynthesizerError) as err:
        synth.synthesize("một")
    assert err.value.code == "tts_forked"


def test_bad_input_and_closed(synth: Pyttsx3Synthesizer) -> None:
    with pytest.raises(SynthesizerError) as err:
        synth.synthesize("   ")
    assert err.value.code == "tts_empty_text"
    with pytest.raises(SynthesizerError) as err:
        Pyttsx3Synthesizer(rate_wpm=20)
    assert err.value.code == "tts_config_invalid"
    s = Pyttsx3Synthesizer(probe=False)
    s.close()
    with pytest.raises(SynthesizerError) as err:
        s.synthesize("một")
    assert err.value.code == "tts_closed"
