"""replay-batch: scenarios from a CSV or a folder, one shared recogniser, Markdown/HTML report.

The caller's turns are generated tones heard by :class:`assistant.testing.media.ToneRecognizer`
(each phrase is a pitch), so the whole path runs (WAV reading, endpointing, dialog, store) with
no speech model.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.asr.factory import SpeechSettings
from assistant.audio.wav import write_wav
from assistant.batch.charts import digit_stats
from assistant.batch.runner import report_format_for, run_batch
from assistant.batch.scenarios import load_scenarios
from assistant.call.runtime import MASKED_SPEECH
from assistant.core.errors import ConfigError, RecognizerError, StoreError
from assistant.core.ports import Audio
from assistant.language.phone import mask_code
from assistant.testing.audio import concat, silence
from assistant.testing.media import ToneRecognizer, ToneSession

CODE = "0123456789"
PHONE = "0912345678"
OTHER_PHONE = "0987654321"
CODE_WORDS = "không một hai ba bốn năm sáu bảy tám chín"
WRONG_CODE_WORDS = "không một hai ba bốn năm sáu bảy tám tám"
PHRASES = [CODE_WORDS, WRONG_CODE_WORDS, "đúng", "không", "sai"]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # Reports are rendered from batches that reset one account again and again; the limits
    # across calls have their own tests (test_limits.py).
    monkeypatch.setenv(
        "VSSID_LIMITS", "phone_lookups=100,phone_issues=100,code_lookups=100,account_issues=100"
    )
    url = f"sqlite:///{tmp_path / 'accounts.sqlite3'}"
    store = SqlAccountStore(url)
    store.create_schema()
    store.add_account(CODE, PHONE)
    store.close()
    return url


@pytest.fixture
def rec() -> ToneRecognizer:
    return ToneRecognizer(PHRASES, sample_rate=16000)


def wav(path: Path, rec: ToneRecognizer, text: str, rate: int = 8000) -> str:
    """A turn: a little silence, the phrase's tone, silence (written at ``rate``)."""
    clip = rec.clip(text, 1.0, rate=rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, Audio(concat(silence(0.3, rate), clip.samples, silence(0.3, rate)), rate))
    return path.name


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header or ["name", "caller", "turns", "expect", "expect_digits"])
        w.writerows(rows)
    return path


@pytest.fixture
def csv_batch(tmp_path: Path, rec: ToneRecognizer) -> Path:
    d = tmp_path / "calls"
    wav(d / "code.wav", rec, CODE_WORDS)
    wav(d / "wrong_code.wav", rec, WRONG_CODE_WORDS, rate=16000)
    wav(d / "yes.wav", rec, "đúng")
    wav(d / "no.wav", rec, "không")
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return write_csv(
        d / "scenarios.csv",
        [
            ["happy", PHONE, "code.wav;yes.wav;no.wav", "password_issued", CODE],
            ["withheld", "", "", "no_caller_id", ""],
            ["other phone", OTHER_PHONE, "code.wav; yes.wav", "mismatch", CODE],
            ["wrong digits", PHONE, "wrong_code.wav;yes.wav", "mismatch", CODE],
            ["unreadable", PHONE, "code.wav;broken.wav", "password_issued", ""],
            ["missing file", PHONE, "nowhere.wav", "password_issued", ""],
            ["# a comment row", "", "", "", ""],
            ["bad expect", PHONE, "code.wav", "reset_ok", ""],
        ],
    )


def run(
    path: Path, db_url: str, rec: ToneRecognizer, report: Path, fmt: str | None = None
) -> dict[str, object]:
    return run_batch(
        path,
        db_url=db_url,
        speech=SpeechSettings(),
        report_path=report,
        fmt=fmt,
        progress=False,
        recognizer=rec,
    )


def test_csv_batch_pass_fail_and_markdown_report(
    csv_batch: Path, db_url: str, rec: ToneRecognizer, tmp_path: Path
) -> None:
    report_path = tmp_path / "out" / "report.md"
    summary = run(csv_batch, db_url, rec, report_path)

    assert summary["scenarios"] == 7
    assert summary["passed"] == 3
    assert summary["failed"] == 4
    assert summary["report"] == str(report_path)
    assert summary["format"] == "md"
    assert summary["engine"] == "tone"
    assert summary["failures"] == ["wrong digits", "unreadable", "missing file", "bad expect"]
    assert isinstance(summary["rtf"], float) and summary["rtf"] > 0
    # one model for the whole batch, one session per call that ran, not closed by the batch
    assert len(rec.sessions) == 4
    assert all(s.closed for s in rec.sessions)
    assert not rec.closed

    md = report_path.read_text(encoding="utf-8")
    assert md.startswith("# Replay batch report")
    assert "| Pass rate | 42.9% |" in md
    assert "| Recogniser | tone |" in md
    assert "Real-time factor" in md
    assert re.search(r"\| listen \| \d+ \| [0-9.]+ \| [0-9.]+ \|", md)
    assert re.search(r"\| asr \| 7 \|", md)  # 3 + 2 + 2 recognised turns
    assert "asr_rtf" not in md
    # scenario table: masked caller, expected (code masked), outcome, result, reason
    assert (
        "| happy | *******678 | password_issued (code *******789) | password_issued | pass |"
    ) in md
    assert "| withheld | - | no_caller_id | no_caller_id | pass |" in md
    assert "| other phone | *******321 | mismatch (code *******789) | mismatch | pass |" in md
    assert "code read back differs from expect_digits at digit(s) 10" in md
    assert "[audio_unreadable] broken.wav:" in md
    assert "[audio_unreadable] nowhere.wav:" in md
    assert "[scenario_invalid] expect 'reset_ok' is not one of" in md
    # per-turn detail of the happy call
    assert "| 1 | Xin chào quý khách." in md
    assert f"| {MASKED_SPEECH} | digits {mask_code(CODE)} | Heard |" in md
    assert "| đúng | answer yes | Heard |" in md
    assert "| không | answer no | Heard |" in md
    assert "Mật khẩu mới của quý khách là: ***." in md
    # the box's long sentences are truncated in the turn table
    assert "…" in md
    # without --reveal-codes the code is nowhere: not heard, not as digits, not read back
    assert CODE not in md and CODE_WORDS not in md
    assert "| Codes | masked |" in md and "Codes revealed" not in md


def test_reveal_codes_shows_them_and_says_so(
    csv_batch: Path, db_url: str, rec: ToneRecognizer, tmp_path: Path
) -> None:
    report_path = tmp_path / "revealed.md"
    summary = run_batch(
        csv_batch,
        db_url=db_url,
        speech=SpeechSettings(),
        report_path=report_path,
        fmt=None,
        progress=False,
        recognizer=rec,
        reveal_codes=True,
    )
    assert summary["codes_revealed"] is True
    md = report_path.read_text(encoding="utf-8")
    assert md.startswith("# Replay batch report\n\n**Codes revealed (--reveal-codes)")
    assert f"| {CODE_WORDS} | digits {CODE} | Heard |" in md


def test_no_password_in_reports(
    csv_batch: Path, db_url: str, rec: ToneRecognizer, tmp_path: Path
) -> None:
    md_path, html_path = tmp_path / "r.md", tmp_path / "r.html"
    run(csv_batch, db_url, rec, md_path)
    store = SqlAccountStore(db_url)
    try:
        audit = store.audit_rows()
        assert any(a.outcome == "password_issued" for a in audit)
    finally:
        store.close()
    # The issued password was read twice: reports show the masked prompt instead.
    for path in (md_path,):
        text = path.read_text(encoding="utf-8")
        assert text.count("mật khẩu mới là: ***") == 1
        assert not re.search(r"mật khẩu mới[^.]*: (?!\*\*\*)", text, re.IGNORECASE)
    run(csv_batch, db_url, rec, html_path)
    text = html_path.read_text(encoding="utf-8")
    assert "mật khẩu mới là: ***" in text
    assert not re.search(r"mật khẩu mới[^.]*: (?!\*\*\*)", text, re.IGNORECASE)


def test_html_report_is_self_contained_and_escaped(
    tmp_path: Path, db_url: str, rec: ToneRecognizer
) -> None:
    d = tmp_path / "calls"
    wav(d / "code.wav", rec, CODE_WORDS)
    wav(d / "yes.wav", rec, "đúng")
    batch = write_csv(
        d / "s.csv",
        [
            ["<script>alert(1)</script> & co", PHONE, "code.wav;yes.wav", "password_issued", ""],
            ["gave up <b>", PHONE, "", "gave_up", ""],
            ["expect wrong", PHONE, "code.wav;yes.wav", "hung_up", ""],
        ],
    )
    out = tmp_path / "report.HTML"
    summary = run(batch, db_url, rec, out)
    assert summary["format"] == "html"
    assert (summary["passed"], summary["failed"]) == (2, 1)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page and "<style>" in page
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "gave up &lt;b&gt;" in page
    assert '<tr class="fail">' in page and '<tr class="pass">' in page
    assert "expected hung_up, got password_issued" in page
    assert "Pass rate</th><td>66.7%" in page
    assert "<h3>Latency per stage</h3>" in page
    assert page.rstrip().endswith("</html>")


def test_format_option_overrides_suffix(tmp_path: Path, db_url: str, rec: ToneRecognizer) -> None:
    d = tmp_path / "c"
    d.mkdir()
    batch = write_csv(d / "s.csv", [["withheld", "", "", "no_caller_id", ""]])
    out = tmp_path / "report.txt"
    run(batch, db_url, rec, out, fmt="html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert report_format_for(Path("x.htm"), None) == "html"
    assert report_format_for(Path("x.md"), None) == "md"
    with pytest.raises(ConfigError):
        report_format_for(Path("x.md"), "pdf")


def test_folder_batch(tmp_path: Path, db_url: str, rec: ToneRecognizer) -> None:
    root = tmp_path / "scenarios"
    # turns in natural name order: turn2 before turn10
    wav(root / "01 happy" / "turn2.wav", rec, "đúng")
    wav(root / "01 happy" / "turn1.wav", rec, CODE_WORDS)
    wav(root / "01 happy" / "turn10.wav", rec, "không")
    (root / "01 happy" / "scenario.json").write_text(
        json.dumps({"caller": PHONE, "expect": "password_issued", "expect_digits": "0123 456 789"})
    )
    (root / "02 withheld").mkdir()
    (root / "02 withheld" / "scenario.json").write_text(
        json.dumps({"caller": None, "expect": "no_caller_id"})
    )
    wav(root / "03 no json" / "t.wav", rec, "đúng")
    (root / "04 says no").mkdir()
    wav(root / "04 says no" / "a.wav", rec, CODE_WORDS)
    for name in ("b", "c", "d", "e", "f"):  # no, code, no, code, no: three failed attempts
        text = "sai" if name in {"b", "d", "f"} else CODE_WORDS
        wav(root / "04 says no" / f"{name}.wav", rec, text)
    (root / "04 says no" / "scenario.json").write_text(
        json.dumps({"caller": PHONE, "expect": "gave_up", "expect_digits": CODE})
    )
    (root / "_ignored").mkdir()
    (root / "notes.txt").write_text("not a scenario")

    scenarios = load_scenarios(root)
    assert [s.name for s in scenarios] == ["01 happy", "02 withheld", "03 no json", "04 says no"]
    assert [p.name for p in scenarios[0].turns] == ["turn1.wav", "turn2.wav", "turn10.wav"]
    assert scenarios[0].expect_digits == CODE

    summary = run(root, db_url, rec, tmp_path / "r.md")
    assert summary["failures"] == ["03 no json"]
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "[scenario_invalid] 03 no json/scenario.json:" in md
    assert "| 04 says no | *******678 | gave_up (code *******789) | gave_up | pass |" in md


def test_expect_digits_checks_what_was_read_back_when_nothing_was_looked_up(
    tmp_path: Path, db_url: str, rec: ToneRecognizer
) -> None:
    d = tmp_path / "c"
    wav(d / "wrong.wav", rec, WRONG_CODE_WORDS)
    wav(d / "no.wav", rec, "sai")
    batch = write_csv(
        d / "s.csv",
        [
            ["heard wrong, said no", PHONE, "wrong.wav;no.wav", "gave_up", CODE],
            ["nothing read back", PHONE, "", "gave_up", CODE],
        ],
    )
    summary = run(batch, db_url, rec, tmp_path / "r.md")
    assert summary["passed"] == 0
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "code read back differs from expect_digits at digit(s) 10" in md
    assert "no code was read back" in md


def test_csv_errors(tmp_path: Path, db_url: str, rec: ToneRecognizer) -> None:
    bad = write_csv(
        tmp_path / "bad.csv",
        [["x", "", "", "gave_up"]],
        header=["name", "caller", "expect", "turns_missing"],
    )
    with pytest.raises(ConfigError) as err:
        load_scenarios(bad)
    assert err.value.code == "scenarios_invalid"
    assert "turns" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_scenarios(tmp_path / "nope.csv")
    assert err.value.code == "scenarios_missing"
    empty = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(ConfigError) as err:
        load_scenarios(empty)
    assert err.value.code == "scenarios_empty"
    dup = write_csv(
        tmp_path / "dup.csv",
        [
            ["a", "", "", "no_caller_id", ""],
            ["a", "", "", "no_caller_id", ""],
            ["b", "", "", "no_caller_id", "12x"],
        ],
    )
    problems = [s.problem and s.problem.message for s in load_scenarios(dup)]
    assert problems == [None, "duplicate scenario name", "expect_digits must hold digits only"]


def test_unusable_database_stops_before_any_call(tmp_path: Path, rec: ToneRecognizer) -> None:
    d = tmp_path / "c"
    d.mkdir()
    batch = write_csv(d / "s.csv", [["withheld", "", "", "no_caller_id", ""]])
    empty_db = f"sqlite:///{tmp_path / 'no_schema.sqlite3'}"
    with pytest.raises(StoreError):
        run(batch, empty_db, rec, tmp_path / "r.md")
    assert rec.sessions == []
    assert not (tmp_path / "r.md").exists()


def test_all_scenarios_invalid_loads_no_recogniser(tmp_path: Path, db_url: str) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "broken.wav").write_bytes(b"not a wav")
    batch = write_csv(d / "s.csv", [["x", PHONE, "broken.wav", "password_issued", ""]])
    # no recogniser injected: the onnx model would be loaded only if some call could run
    summary = run_batch(
        batch,
        db_url=db_url,
        speech=SpeechSettings(),
        report_path=tmp_path / "r.md",
        fmt=None,
        progress=False,
    )
    assert summary["failed"] == 1
    assert summary["engine"] == "onnx (not loaded)"
    assert "[audio_unreadable] broken.wav" in (tmp_path / "r.md").read_text(encoding="utf-8")


def test_progress_bar_goes_to_stderr(
    tmp_path: Path, db_url: str, rec: ToneRecognizer, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "c"
    d.mkdir()
    batch = write_csv(d / "s.csv", [["withheld", "", "", "no_caller_id", ""]])
    run_batch(
        batch,
        db_url=db_url,
        speech=SpeechSettings(),
        report_path=tmp_path / "r.md",
        fmt=None,
        progress=True,
        recognizer=rec,
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "replay" in captured.err
    run(batch, db_url, rec, tmp_path / "r2.md")
    assert capsys.readouterr().err == ""


class FailingRecognizer(ToneRecognizer):
    """A recogniser whose engine fails on every utterance."""

    def open_session(self) -> ToneSession:
        session = super().open_session()

        def broken(_pcm: object) -> str:
            raise RecognizerError("decoder crashed", code="asr_decode_failed")

        session.feed = broken  # type: ignore[method-assign,assignment]
        return session


def test_engine_failure_fails_the_scenario_not_the_batch(tmp_path: Path, db_url: str) -> None:
    rec = FailingRecognizer(PHRASES)
    d = tmp_path / "c"
    wav(d / "code.wav", rec, CODE_WORDS)
    batch = write_csv(
        d / "s.csv",
        [
            ["speaks", PHONE, "code.wav", "password_issued", ""],
            ["withheld", "", "", "no_caller_id", ""],
        ],
    )
    summary = run(batch, db_url, rec, tmp_path / "r.md")
    assert summary["failures"] == ["speaks"]
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "[asr_decode_failed] decoder crashed" in md
    assert all(s.closed for s in rec.sessions)


# ------------------------------------------------------------------------------ pictures


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chart_report(tmp_path: Path, db_url: str, rec: ToneRecognizer) -> Path:
    d = tmp_path / "calls"
    wav(d / "code.wav", rec, CODE_WORDS)
    wav(d / "wrong_code.wav", rec, WRONG_CODE_WORDS)
    wav(d / "yes.wav", rec, "đúng")
    batch = write_csv(
        d / "s.csv",
        [
            ["right", PHONE, "code.wav;yes.wav", "password_issued", CODE],
            ["wrong digits", PHONE, "wrong_code.wav;yes.wav", "mismatch", CODE],
            ["no code", PHONE, "", "gave_up", CODE],
        ],
    )
    out = tmp_path / "report.html"
    run(batch, db_url, rec, out)
    return out


def test_html_report_has_the_four_pictures(
    tmp_path: Path, db_url: str, rec: ToneRecognizer
) -> None:
    page = chart_report(tmp_path, db_url, rec).read_text(encoding="utf-8")
    titles = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [t for t, _ in titles] == [
        "Digit confusion matrix",
        "Error rate by digit position",
        "Reply latency",
        "Outcomes",
    ]
    for _, data in titles:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert "30 expected digits in 3 scenario(s)" in page
    assert "3 calls by outcome" in page
    pictures = page[page.index("<h2>Pictures</h2>") : page.index("<h2>Scenarios</h2>")]
    assert CODE not in pictures  # the pictures hold counts, never a code


def test_digit_stats_counts_pairs_and_positions() -> None:
    stats = digit_stats("0123456789", "0123456780")
    assert stats.wrong == [False] * 9 + [True]
    assert stats.pairs[("9", "0")] == 1 and stats.pairs[("0", "0")] == 1
    short = digit_stats("0123", "01")
    assert short.wrong == [False, False, True, True]
    assert short.pairs[("2", "–")] == 1
    assert digit_stats("12", None).wrong == [True, True]


def _blue_pixels(png: Path) -> int:
    from matplotlib.image import imread

    image = imread(png)[..., :3]  # floats in 0..1
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    return int(((blue > 0.45) & (red < 0.25) & (green < 0.45)).sum())


def _screenshot(page: Path, shot: Path, profile: Path) -> None:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--window-size=1400,2600",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: apt-get install chromium")
def test_html_report_renders_in_a_real_browser(
    tmp_path: Path, db_url: str, rec: ToneRecognizer
) -> None:
    """Headless Chromium opens the page from disk (no network) and draws the pictures: its
    screenshot has the confusion matrix's dark blue, which the same page without its
    pictures does not."""
    report = chart_report(tmp_path, db_url, rec)
    bare = tmp_path / "bare.html"
    bare.write_text(
        re.sub(r'src="data:[^"]+"', 'src=""', report.read_text(encoding="utf-8")),
        encoding="utf-8",
    )
    _screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    _screenshot(bare, tmp_path / "bare.png", tmp_path / "profile")
    with_pictures = _blue_pixels(tmp_path / "report.png")
    without = _blue_pixels(tmp_path / "bare.png")
    assert with_pictures > 1000, with_pictures  # the matrix cells (about 2400 px here)
    assert without < with_pictures / 20, (without, with_pictures)
