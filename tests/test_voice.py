"""The prompt voice: segments, digit clips and pauses, caching, recorded packs."""

from __future__ import annotations

import itertools
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from assistant.audio.resample import resample
from assistant.audio.wav import FORMAT_FLOAT, FORMAT_PCM, pack_wav, write_wav
from assistant.call.prompt_voice import PromptVoice, VoiceTiming, trim_silence
from assistant.core.dialog import Digits, Say
from assistant.core.errors import ConfigError, DataFileError, SynthesizerError
from assistant.core.ports import Audio
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer, concat, silence, tone

WORDS = {
    "0": "không",
    "1": "một",
    "2": "hai",
    "3": "ba",
    "4": "bốn",
    "5": "năm",
    "6": "sáu",
    "7": "bảy",
    "8": "tám",
    "9": "chín",
}


def prompts() -> Prompts:
    return Prompts(
        {
            "hello": "Xin chào quý khách.",
            "pw": "Mật khẩu là {password}.",
            "code": "Mã số {code}, đúng không?",
            "name": "Chào {who}.",
        },
        WORDS,
    )


def runs(samples: np.ndarray) -> list[tuple[bool, int]]:
    """(is_sound, length) runs: sound = a non-zero sample within 4 samples (tones cross 0)."""
    loud = np.convolve((samples != 0).astype(int), np.ones(9, dtype=int), "same") > 0
    edges = np.flatnonzero(np.diff(loud.astype(int))) + 1
    bounds = [0, *edges.tolist(), len(samples)]
    return [(bool(loud[a]), b - a) for a, b in itertools.pairwise(bounds)]


def inner_gaps(samples: np.ndarray) -> list[int]:
    """Lengths of the silences between sounds (not the prompt's lead or tail silence)."""
    found = runs(samples)
    while found and not found[0][0]:
        found.pop(0)
    while found and not found[-1][0]:
        found.pop()
    return [n for is_sound, n in found if not is_sound]


def test_fixed_prompt_is_synthesised_once_and_cached() -> None:
    fake = FakeSynthesizer(16000)
    voice = PromptVoice(prompts(), fake, 8000)
    a = voice.render(Say("hello"))
    b = voice.render(Say("hello"))
    assert a is b and fake.calls == ["Xin chào quý khách."]
    assert a.rate == 8000
    t = VoiceTiming()
    expected = t.lead_s + fake.duration_for("Xin chào quý khách.") + t.tail_s
    assert a.duration == pytest.approx(expected, abs=0.002)
    with pytest.raises(ValueError, match="read-only"):
        a.samples[0] = 1


def test_digits_are_read_one_by_one_with_pauses() -> None:
    fake = FakeSynthesizer(8000)
    voice = PromptVoice(prompts(), fake, 8000)
    audio = voice.render(Say("pw", {"password": Digits("472918", (3, 3), secret=True)}))
    # the number is never given to the synthesiser as a whole ("472918" is read as a number)
    assert "472918" not in " ".join(fake.calls)
    assert fake.calls == ["Mật khẩu là ", "bốn", "bảy", "hai", "chín", "một", "tám"]
    sounds = [n for is_sound, n in runs(audio.samples) if is_sound]
    gaps = inner_gaps(audio.samples)
    assert len(sounds) == 7  # the text, then six digits (the final "." is not spoken)
    assert gaps[0] == pytest.approx(0.2 * 8000, abs=10)  # text -> digits
    assert gaps[1:] == pytest.approx([2000, 2000, 4000, 2000, 2000], abs=10)  # 250/500 ms
    for word, n in zip(["bốn", "bảy", "hai", "chín", "một", "tám"], sounds[1:], strict=True):
        assert n == pytest.approx(fake.duration_for(word) * 8000, abs=10)


def test_digit_clips_and_template_text_are_cached() -> None:
    fake = FakeSynthesizer(16000)
    voice = PromptVoice(prompts(), fake, 8000)
    voice.render(Say("pw", {"password": Digits("1122")}))
    voice.render(Say("pw", {"password": Digits("2211")}))
    assert sorted(fake.calls) == sorted(["Mật khẩu là ", "một", "hai"])
    voice.render(Say("name", {"who": "Lan"}))
    voice.render(Say("name", {"who": "Lan"}))
    # text with a parameter in it is not cached (it varies); template-only text is
    assert fake.calls.count("Chào Lan.") == 2


def test_groups_default_to_one_run_and_bad_digits_are_refused() -> None:
    fake = FakeSynthesizer(8000)
    voice = PromptVoice(prompts(), fake, 8000)
    audio = voice.render(Say("code", {"code": Digits("0123")}))
    gaps = inner_gaps(audio.samples)
    assert gaps == pytest.approx([1600, 2000, 2000, 2000, 1600], abs=10)
    with pytest.raises(SynthesizerError) as err:
        voice.render(Say("pw", {"password": Digits("12a4", secret=True)}))
    assert err.value.code == "prompt_digits_invalid" and "12a4" not in str(err.value)


def test_output_follows_the_call_rate() -> None:
    fake = FakeSynthesizer(22050)
    for rate in (8000, 16000):
        audio = PromptVoice(prompts(), fake, rate).render(Say("pw", {"password": Digits("5")}))
        assert audio.rate == rate
        assert audio.duration > fake.duration_for("năm")


def test_unknown_prompt_and_missing_parameter() -> None:
    voice = PromptVoice(prompts(), FakeSynthesizer(), 8000)
    with pytest.raises(DataFileError) as err:
        voice.render(Say("nope"))
    assert err.value.code == "prompt_unknown"
    with pytest.raises(DataFileError) as err:
        voice.render(Say("pw"))
    assert err.value.code == "prompt_param_missing"


def test_synthesizer_errors_propagate() -> None:
    fake = FakeSynthesizer()
    fake.fail = SynthesizerError("engine gone", code="tts_failed")
    with pytest.raises(SynthesizerError) as err:
        PromptVoice(prompts(), fake, 8000).render(Say("hello"))
    assert err.value.code == "tts_failed"


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    pack.mkdir()
    hello = (tone(300.0, 0.5, 44100, dbfs=-6.0) / 32768.0).astype("<f4")
    (pack / "hello.wav").write_bytes(
        pack_wav(hello.tobytes(), rate=44100, channels=1, bits=32, format_tag=FORMAT_FLOAT)
    )
    four = np.repeat(
        concat(silence(0.1, 16000), tone(500.0, 0.3, 16000), silence(0.2, 16000)), 2
    )  # stereo, padded with silence that the voice trims
    (pack / "digit_4.wav").write_bytes(
        pack_wav(
            four.astype("<i2").tobytes(), rate=16000, channels=2, bits=16, format_tag=FORMAT_PCM
        )
    )
    write_wav(pack / "pw.wav", Audio(tone(700.0, 1.0, 8000), 8000))  # has parameters: ignored
    write_wav(pack / "stray.wav", Audio(tone(700.0, 0.1, 8000), 8000))
    return pack


def test_recorded_pack_is_preferred(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeSynthesizer(16000)
    with caplog.at_level(logging.WARNING, logger="assistant.call.prompt_voice"):
        voice = PromptVoice(prompts(), fake, 8000, pack_dir=_pack(tmp_path))
    assert "pw.wav ignored" in caplog.text and "stray.wav ignored" in caplog.text
    hello = voice.render(Say("hello"))
    assert hello.rate == 8000 and hello.duration == pytest.approx(0.5, abs=0.001)
    expected = resample(tone(300.0, 0.5, 44100, dbfs=-6.0), 44100, 8000)
    assert np.max(np.abs(hello.samples.astype(int) - expected)) <= 1
    audio = voice.render(Say("pw", {"password": Digits("44")}))
    assert fake.calls == ["Mật khẩu là "]  # digit 4 from the pack, "pw.wav" not used
    sounds = [n for s, n in runs(audio.samples) if s]
    gaps = inner_gaps(audio.samples)
    assert sounds[1:] == pytest.approx([0.3 * 8000, 0.3 * 8000], abs=16)
    # the clip's own 0.1 s / 0.2 s of silence was trimmed to 10 ms: gap = 250 ms + 2 x 10 ms
    assert gaps[1] == pytest.approx(2000 + 2 * 80, abs=16)


def test_pack_without_synthesizer(tmp_path: Path) -> None:
    voice = PromptVoice(prompts(), None, 16000, pack_dir=_pack(tmp_path))
    assert voice.render(Say("hello")).rate == 16000
    with pytest.raises(SynthesizerError) as err:
        voice.render(Say("pw", {"password": Digits("4")}))
    assert err.value.code == "prompt_audio_missing"
    with pytest.raises(ConfigError):
        PromptVoice(prompts(), None, 16000, pack_dir=tmp_path / "missing")


def test_concurrent_renders_share_one_synthesis() -> None:
    fake = FakeSynthesizer(16000)
    voice = PromptVoice(prompts(), fake, 8000)
    results: list[Audio] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(voice.render(Say("hello")))
        results.append(voice.render(Say("pw", {"password": Digits("0123456789", (3, 3, 4))})))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 16
    assert fake.calls.count("Xin chào quý khách.") == 1
    assert all(fake.calls.count(w) == 1 for w in WORDS.values())
    passwords = [r for r in results if r.duration > results[0].duration + 1]
    assert len(passwords) == 8 and all(p == passwords[0] for p in passwords)


def test_preload_renders_fixed_prompts_digits_and_the_text_around_parameters() -> None:
    fake = FakeSynthesizer()
    voice = PromptVoice(prompts(), fake, 8000)
    # 1 fixed prompt, 10 digits, 4 speakable literals ("Mật khẩu là ", "Mã số ",
    # ", đúng không?", "Chào "; a lone "." is not spoken)
    assert voice.preload() == 15
    assert len(fake.calls) == 15
    voice.render(Say("code", {"code": Digits("0123")}))
    voice.render(Say("pw", {"password": Digits("9876", secret=True)}))
    assert len(fake.calls) == 15  # a read-back or a password synthesises nothing any more


def test_timing_is_validated() -> None:
    with pytest.raises(ConfigError):
        VoiceTiming(digit_gap_s=-0.1)
    with pytest.raises(ConfigError):
        VoiceTiming(trim_db=0)
    with pytest.raises(ConfigError):
        PromptVoice(prompts(), None, 0)


def test_trim_silence() -> None:
    x = concat(silence(0.5, 8000), tone(440.0, 0.2, 8000), silence(0.5, 8000))
    trimmed = trim_silence(x, 8000, keep_s=0.01)
    assert len(trimmed) == pytest.approx(1600 + 160, abs=10)
    assert len(trim_silence(silence(1.0, 8000), 8000)) == 0
    assert len(trim_silence(np.zeros(0, dtype=np.int16), 8000)) == 0


def test_fake_synthesizer_is_deterministic() -> None:
    a, b = FakeSynthesizer(), FakeSynthesizer()
    assert a.synthesize("một") == b.synthesize("một")
    assert a.synthesize("một") != a.synthesize("hai")
    with pytest.raises(SynthesizerError):
        a.synthesize(" ")


def test_real_voice_renders_a_password_prompt() -> None:
    from assistant.tts.pyttsx3 import Pyttsx3Synthesizer

    try:
        synth = Pyttsx3Synthesizer()
    except SynthesizerError as exc:
        if exc.code == "tts_unavailable":
            pytest.skip(f"espeak-ng / pyttsx3 not installed: {exc}")
        raise
    try:
        voice = PromptVoice(prompts(), synth, 8000)
        audio = voice.render(Say("pw", {"password": Digits("472918", (3, 3), secret=True)}))
        assert audio.rate == 8000
        assert 4.0 < audio.duration < 9.0
        assert int(np.max(np.abs(audio.samples.astype(int)))) < 32767
    finally:
        synth.close()
