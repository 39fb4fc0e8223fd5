"""The syllable voice: normaliser, spoken forms, the shipped pack, clip preparation, joins,
fallback, rates, and the commands that use it (say, demo)."""

from __future__ import annotations

import json
import logging
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.audio.wav import read_wav
from assistant.call.prompt_voice import PromptVoice, VoiceTiming
from assistant.core.dialog import Digits, Say
from assistant.core.errors import ConfigError, DataFileError, SynthesizerError
from assistant.core.paths import data_file
from assistant.core.ports import PCM
from assistant.core.settings import SpeechSettings
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer, concat, noise, silence, tone
from assistant.tts.clips import (
    ClipError,
    drop_onset,
    prepare,
    speech_level_db,
    stretch,
)
from assistant.tts.pack import PackClip, VoicePack, write_pack
from assistant.tts.spoken import Normaliser, Pause, PauseKind, Role, SpokenForms, Syllable
from assistant.tts.syllables import (
    JoinTiming,
    SyllableSynthesizer,
    default_pack_dir,
    needed_syllables,
)

RATE = 16000


@pytest.fixture(scope="module")
def forms() -> SpokenForms:
    return SpokenForms.load()


@pytest.fixture(scope="module")
def norm(forms: SpokenForms) -> Normaliser:
    return Normaliser(forms)


@pytest.fixture(scope="module")
def pack() -> VoicePack:
    return VoicePack(default_pack_dir())


@pytest.fixture(scope="module")
def synth(pack: VoicePack, norm: Normaliser) -> SyllableSynthesizer:
    return SyllableSynthesizer(pack, norm)


def said(norm: Normaliser, text: str) -> str:
    return " ".join(norm.syllables(text))


def shape(norm: Normaliser, text: str) -> list[str]:
    """Items as short strings: syllables (with * when phrase-final, # for a digit), pauses."""
    out = []
    for item in norm.items(text):
        if isinstance(item, Syllable):
            mark = {Role.INNER: "", Role.FINAL: "*", Role.DIGIT: "#"}[item.role]
            out.append(item.text + mark)
        else:
            out.append(f"<{item.kind.value}>")
    return out


# -- the normaliser ---------------------------------------------------------------------------


def test_nfc_and_lower_case(norm: Normaliser) -> None:
    nfd = unicodedata.normalize("NFD", "XIN CHÀO Quý Khách")
    assert said(norm, nfd) == "xin chào quý khách"


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("0", "không"),
        ("4", "bốn"),
        ("10", "mười"),
        ("11", "mười một"),
        ("14", "mười bốn"),
        ("15", "mười lăm"),
        ("20", "hai mươi"),
        ("21", "hai mươi mốt"),
        ("24", "hai mươi tư"),
        ("25", "hai mươi lăm"),
        ("100", "một trăm"),
        ("105", "một trăm linh năm"),
        ("110", "một trăm mười"),
        ("999", "chín trăm chín mươi chín"),
        ("1005", "một nghìn không trăm linh năm"),
        ("2026", "hai nghìn không trăm hai mươi sáu"),
    ],
)
def test_counts_are_said_as_quantities(norm: Normaliser, number: str, words: str) -> None:
    assert said(norm, number) == words


def test_codes_are_read_digit_by_digit_with_the_dialogs_pauses(norm: Normaliser) -> None:
    # a leading zero, or more digits than a quantity has: a code
    assert shape(norm, "0912") == [
        "không#",
        "<digit>",
        "chín#",
        "<digit>",
        "một#",
        "<digit>",
        "hai#",
    ]
    assert said(norm, "12345") == "một hai ba bốn năm"
    # groups joined by - or . get the group pause
    assert shape(norm, "12-3") == ["một#", "<digit>", "hai#", "<group>", "ba#"]
    timing = JoinTiming()
    assert timing.digit_gap_s == VoiceTiming().digit_gap_s == 0.25
    assert timing.group_gap_s == VoiceTiming().group_gap_s == 0.5


def test_punctuation_pauses_and_phrase_final_syllables(norm: Normaliser) -> None:
    assert shape(norm, "Xin lỗi, tôi chưa nghe rõ. Vâng: có?") == [
        "xin",
        "lỗi*",
        "<comma>",
        "tôi",
        "<word>",
        "chưa",
        "<word>",
        "nghe",
        "rõ*",
        "<stop>",
        "vâng*",
        "<colon>",
        "có*",
    ]


def test_word_groups_have_no_word_pause_inside(norm: Normaliser) -> None:
    items = norm.items("quý khách vui lòng")
    syllables = [it for it in items if isinstance(it, Syllable)]
    assert [s.group_end for s in syllables] == [False, True, False, True]
    assert [it.kind for it in items if isinstance(it, Pause)] == [PauseKind.WORD]


# -- spoken forms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("VssID", "vê ét ét ai đi"),
        ("email", "i meo"),
        ("mẫu 02/SĐ-GD", "mẫu không hai ét đê gờ dê"),
        ("Đúng không ạ?", "đúng không ạ"),
    ],
)
def test_spoken_forms(norm: Normaliser, written: str, spoken: str) -> None:
    assert said(norm, written) == spoken


def test_every_spoken_form_and_derived_clip_is_in_the_pack(
    forms: SpokenForms, pack: VoicePack
) -> None:
    for written, spoken in forms.words.items():
        missing = [s for s in spoken.split() if s not in pack]
        assert not missing, f"spoken form of {written!r} needs {missing}"
    for derived in forms.derived:
        assert derived in pack
        assert any(f.startswith("derived_from_") for f in pack.clips[derived].flags)


def test_number_variants_must_be_spellings_from_the_number_tables() -> None:
    with data_file("spoken_forms.toml").open("rb") as fh:
        forms = tomllib.load(fh)
    with data_file("numbers.toml").open("rb") as fh:
        numbers = tomllib.load(fh)
    SpokenForms.from_tables(forms, numbers)  # the shipped files agree
    forms["numbers"]["after_tens"]["1"] = "mốc"
    with pytest.raises(DataFileError, match="not a spelling"):
        SpokenForms.from_tables(forms, numbers)


# -- the shipped pack -------------------------------------------------------------------------


def test_pack_covers_every_prompt_digit_ordinal_and_count(
    pack: VoicePack, norm: Normaliser
) -> None:
    prompts = Prompts.load()
    needed = needed_syllables(prompts.templates, prompts.digit_words, prompts.ordinals, norm)
    assert len(needed) > 100
    missing = {s: where for s, where in needed.items() if s not in pack}
    assert not missing, f"run scripts/build_voice.py: missing {missing}"
    for n in range(0, 100):
        assert not SyllableSynthesizer(pack, norm).unknown_words(f"{n} chữ số")


def test_pack_is_levelled_faded_licensed_and_in_budget(pack: VoicePack) -> None:
    levels = [speech_level_db(c.samples, pack.rate) for c in pack.clips.values()]
    assert max(levels) - min(levels) < 4.0
    assert min(levels) > -23.0 and max(levels) < -17.0
    # ...while the sources differ by much more (the reason for levelling)
    sources = [c.level_db for c in pack.clips.values()]
    assert max(sources) - min(sources) > 8.0
    for clip in pack.clips.values():
        assert clip.samples[0] == 0 and clip.samples[-1] == 0, clip.word
    folder = pack.folder
    assert "GNU GENERAL PUBLIC LICENSE" in (folder / "LICENSE").read_text(encoding="utf-8")
    attribution = (folder / "ATTRIBUTION").read_text(encoding="utf-8")
    assert "github.com/lephuongbg/words" in attribution and "commit 5543690a" in attribution
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 3_000_000


def test_pack_index_is_checked(tmp_path: Path) -> None:
    clip = PackClip("ba", tone(300.0, 0.2, RATE), -20.0, 0.0, ("onset_clipped",), "test")
    write_pack(tmp_path, [clip], RATE)
    loaded = VoicePack(tmp_path)
    assert loaded.words == {"ba"} and loaded.clips["ba"].flags == ("onset_clipped",)
    index = tmp_path / "index.tsv"
    index.write_text(index.read_text(encoding="utf-8").replace("\t3200\t", "\t99999\t"))
    with pytest.raises(SynthesizerError) as err:
        VoicePack(tmp_path)
    assert err.value.code == "voice_pack_invalid"
    with pytest.raises(SynthesizerError) as err:
        VoicePack(tmp_path / "nowhere")
    assert err.value.code == "voice_pack_missing"


def test_builder_fails_naming_the_missing_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = _load_script("build_voice").main

    inventory = tmp_path / "inventory"
    inventory.mkdir()
    assert main(["--from", str(inventory), "--out", str(tmp_path / "pack")]) == 1
    err = capsys.readouterr().err
    assert "'khách': needed by prompt greeting" in err
    assert "'mười': needed by prompt ask_code" in err
    assert not (tmp_path / "pack").exists()


# -- clip preparation -------------------------------------------------------------------------


def _syllable(at_s: float, *, level_dbfs: float = -20.0) -> PCM:
    """A fake recording: a noise floor with a 0.3 s harmonic burst at ``at_s``."""
    burst = tone(500.0, 0.3, RATE, dbfs=level_dbfs + 3.01)  # peak: RMS + 3 dB
    floor = noise(0.6, RATE, dbfs=-55.0)
    out = floor.astype(np.int32)
    start = round(at_s * RATE)
    out[start : start + len(burst)] += burst
    return np.clip(out, -32768, 32767).astype(np.int16)


def test_prepare_trims_levels_fades_and_flags() -> None:
    quiet = prepare(_syllable(0.2, level_dbfs=-30.0), RATE)
    loud = prepare(_syllable(0.2, level_dbfs=-12.0), RATE)
    for p in (quiet, loud):
        assert abs(speech_level_db(p.samples, RATE) - (-20.0)) < 1.0
        assert 0.3 <= len(p.samples) / RATE <= 0.36  # the burst and a little padding
        assert 0.17 <= p.start_s <= 0.2
        assert p.samples[0] == 0 and p.samples[-1] == 0
        assert p.flags == ()
    assert abs(quiet.gain_db - 10.0) < 1.0 and abs(loud.gain_db + 8.0) < 1.0
    assert "onset_clipped" in prepare(_syllable(0.0), RATE).flags
    assert "tail_clipped" in prepare(_syllable(0.3), RATE).flags
    assert "bad_level" in prepare(_syllable(0.2, level_dbfs=-45.0), RATE).flags
    with pytest.raises(ClipError):
        prepare(silence(0.5, RATE), RATE)


def test_drop_onset_keeps_the_voiced_part() -> None:
    hiss = noise(0.1, RATE, dbfs=-25.0, seed=3)
    voiced = tone(200.0, 0.3, RATE, dbfs=-10.0)
    out = drop_onset(concat(hiss, voiced), RATE)
    assert 0.28 <= len(out) / RATE <= 0.31


def test_stretch_changes_duration_not_pitch() -> None:
    x = tone(250.0, 0.4, RATE, dbfs=-6.0)
    y = stretch(x, RATE, 1.25)
    assert len(y) == round(len(x) * 1.25)
    spectrum = np.abs(np.fft.rfft(y[800:-800] * np.hanning(len(y) - 1600)))
    peak_hz = np.argmax(spectrum) * RATE / (len(y) - 1600)
    assert abs(peak_hz - 250.0) < 5.0


# -- joining ------------------------------------------------------------------------------------


def join_jumps(samples: PCM, joins: tuple[int, ...], reach: int = 2) -> int:
    """The largest sample value next to any join: a click is a step there."""
    x = np.abs(samples.astype(np.int32))
    return max(
        (int(x[max(0, j - reach) : j + reach].max()) for j in joins if j < len(x)), default=0
    )


def test_no_click_at_joins(synth: SyllableSynthesizer) -> None:
    text = "Xin chào quý khách. Mật khẩu mới của quý khách là: 4721-0958, đúng không ạ?"
    for rate in (16000, 8000):
        s = SyllableSynthesizer(synth.pack, synth.normaliser, output_rate=rate)
        rendered = s.render(text)
        assert rendered.audio.rate == rate
        assert len(rendered.joins) > 40
        assert join_jumps(rendered.audio.samples, rendered.joins) < 200
    # the check finds a click: clips cut without fades
    raw = [synth.pack.clip(w)[400:-400] for w in ("xin", "chào")]
    joined = concat(*raw)
    assert join_jumps(joined, (len(raw[0]),)) > 1000


def test_phrase_final_syllables_are_longer_and_pauses_follow_punctuation(
    synth: SyllableSynthesizer,
) -> None:
    inner = synth.render("có ai").audio.duration
    final = synth.render("có, ai").audio.duration
    comma = JoinTiming().comma_s
    stretched = (JoinTiming().final_stretch - 1.0) * len(synth.pack.clip("có")) / RATE
    assert final - inner == pytest.approx(comma - JoinTiming().word_gap_s + stretched, abs=0.01)


def test_synthesiser_at_8k_through_the_prompt_voice(pack: VoicePack, norm: Normaliser) -> None:
    prompts = Prompts.load()
    synth = SyllableSynthesizer(pack, norm, output_rate=8000)
    voice = PromptVoice(prompts, synth, 8000)
    fixed = voice.render(Say("goodbye"))
    assert fixed.rate == 8000 and 2.0 < fixed.duration < 8.0
    assert voice.render(Say("goodbye")) is fixed  # cached as before
    say = Say("password", {"password": Digits("47210958", (4, 4), secret=True)})
    audio = voice.render(say).samples
    # the digits are read with the dialog's pauses: 6 gaps of >= 0.25 s and 1 of >= 0.5 s
    silent = np.abs(audio.astype(np.int32)) < 30
    runs, run = [], 0
    for quiet in silent:
        run = run + 1 if quiet else 0
        if run == 1:
            runs.append(0)
        if quiet:
            runs[-1] = run
    long_runs = sorted(r / 8000 for r in runs if r / 8000 >= 0.24)
    assert len(long_runs) == 7  # 6 digit gaps and the group gap
    assert long_runs[-1] >= 0.5


# -- fallback, errors, settings ----------------------------------------------------------------


def test_unknown_word_goes_to_the_fallback_once(
    pack: VoicePack, norm: Normaliser, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeSynthesizer(22050)
    made: list[int] = []

    def factory() -> FakeSynthesizer:
        made.append(1)
        return fake

    synth = SyllableSynthesizer(pack, norm, fallback=factory)
    assert synth.unknown_words("xin chào zalo") == ["zalo"]
    with caplog.at_level(logging.WARNING, logger="assistant.tts.syllables"):
        first = synth.render("xin chào zalo, zalo")
        synth.render("zalo")
    assert first.fallback_words == ("zalo", "zalo")
    assert fake.calls == ["zalo"] and made == [1]
    assert [r.getMessage() for r in caplog.records].count(
        "syllable voice lephuong cannot say 'zalo': said by fake"
    ) == 1
    # nothing to fall back on: an error naming the word
    with pytest.raises(SynthesizerError, match="zalo") as err:
        SyllableSynthesizer(pack, norm).synthesize("xin chào zalo")
    assert err.value.code == "voice_word_missing"
    with pytest.raises(SynthesizerError) as err:
        synth.synthesize("... !")
    assert err.value.code == "tts_empty_text"


def test_voice_is_chosen_by_settings(tmp_path: Path) -> None:
    from assistant.tts.factory import make_synthesizer

    assert SpeechSettings().voice == "syllables"
    synth = make_synthesizer(SpeechSettings(), output_rate=8000)
    assert synth.name == "syllables:lephuong"
    assert synth.synthesize("xin chào").rate == 8000
    with pytest.raises(ConfigError):
        SpeechSettings(voice="robot")
    with pytest.raises(ConfigError):
        SpeechSettings(voice="espeak", voice_pack=tmp_path)
    with pytest.raises(ConfigError):
        SpeechSettings(voice_pack=tmp_path / "nowhere")


# -- commands ---------------------------------------------------------------------------------


def test_say_command_writes_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli.main import main

    out = tmp_path / "x.wav"
    assert main(["say", "Mã số có 10 chữ số: 0123.", "--out", str(out), "--rate", "8000"]) == 0
    result = json.loads(capsys.readouterr().out)
    audio = read_wav(out, 8000)
    assert result["out"] == str(out) and result["voice"] == "syllables:lephuong"
    assert audio.duration == pytest.approx(result["seconds"], abs=0.01) and audio.duration > 2


def test_demo_writes_the_calls_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli.main import main

    out = tmp_path / "demo.wav"
    db = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    assert main(["demo", "--db", db, "--out-audio", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.absolute()) in printed
    audio = read_wav(out, 16000)
    assert audio.duration > 30.0


def _load_script(name: str) -> Any:
    """A script of ``scripts/`` as a module (scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
