"""End-to-end phone calls to the real box: ``python -m assistant sip`` as a subprocess.

One box per module (a temporary SQLite database, log directory and RTP range, free ports on
127.0.0.1 only), called by Debian's baresip (scripted over ctrl_tcp) and, for
P-Asserted-Identity, by sipp. The box runs with a test prompt pack (``tests/sip/tones.py``):
every digit it reads out is a pure tone, so the caller's recording (baresip's ``sndfile``
dump) tells exactly which code it read back and which password it issued; that password is
then checked with ``accounts check``. The caller follows the conversation
(``tests/sip/caller.py``): it waits until the box has said something and gone quiet, then
answers (keys over RFC 4733, or real recorded speech switched in with ``ausrc``).

At the end the box gets SIGTERM and must drain and exit 0.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sip import audio as sig
from sip.box import AccountsCli, AuditRow, BoxProcess, run_assistant, wait_for
from sip.caller import (
    QUIET_RMS,
    ListeningCaller,
    corpus_words_dir,
    quiet_tail_s,
    spoken_code,
    spoken_words,
    utterance_wav,
)
from sip.sipp import run_sipp_call, sipp_available
from sip.softphone import CallRefusedError, SoftphoneCaller, baresip_available
from sip.tones import digit_sequences, readouts_after_readback, write_prompt_pack

from assistant.core.paths import data_file, shared_corpus_dir
from assistant.language.phone import mask_code, mask_phone

HAVE_BARESIP_PY = importlib.util.find_spec("baresip") is not None
HAVE_ESPEAK = shutil.which("espeak-ng") is not None

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE_BARESIP_PY, reason="baresip-python missing: pip install baresip-python==0.5.2a3"
    ),
    pytest.mark.skipif(
        not baresip_available(),
        reason="/usr/bin/baresip with ctrl_tcp missing: apt-get install baresip-core",
    ),
    pytest.mark.skipif(
        not HAVE_ESPEAK, reason="espeak-ng missing (the box synthesises its prompt texts)"
    ),
]
needs_sipp = pytest.mark.skipif(
    not sipp_available(), reason="/usr/bin/sipp missing: apt-get install sip-tester"
)
WORDS = corpus_words_dir(shared_corpus_dir())
needs_corpus = pytest.mark.skipif(
    WORDS is None,
    reason="real recordings ../shared/corpus/real_vi_dev/lephuongbg_words absent",
)


@dataclass(frozen=True)
class Account:
    phone: str
    code: str


SPEAKER = Account("0912345678", "4801357924")  # reads the code aloud
KEYPAD = Account("0987654321", "7912345680")  # keys it in
HANGER = Account("0977000111", "3141592653")  # hangs up half-way
CAROL = Account("0358246813", "2950816473")  # the simultaneous calls
DAVE = Account("0901112223", "1357924680")
REGISTERED = (SPEAKER, KEYPAD, HANGER, CAROL, DAVE)
STRANGER = "0939999888"  # not registered
EVE = Account("0966555444", "8642097531")  # neither number nor code registered

PAI_NUMBER = "+84976543210"
PAI = f'"Trunk Caller" <sip:{PAI_NUMBER}@carrier.invalid;user=phone>'
FROM_NUMBER = "+84900000009"


@dataclass
class Line:
    """The box under test, its database and what the tests learnt (for the secret checks)."""

    box: BoxProcess
    cli: AccountsCli
    workdir: Path
    silence_wav: Path
    passwords: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def secrets(self) -> set[str]:
        """Strings that must never appear in a summary or a log: codes, passwords, and the
        callers' numbers (their last 9 digits, which any spelling of the number contains)."""
        phones = [a.phone for a in (*REGISTERED, EVE)] + [STRANGER, PAI_NUMBER, FROM_NUMBER]
        out = {a.code for a in (*REGISTERED, EVE)} | {p[-9:] for p in phones}
        with self.lock:
            return out | self.passwords


@dataclass
class CallResult:
    summary: dict[str, Any]
    path: Path
    readouts: list[str]  # every digit read-out the caller heard, in order

    @property
    def readback(self) -> str | None:
        codes = [r for r in self.readouts if len(r) == 10]
        return codes[-1] if codes else None

    @property
    def passwords(self) -> list[str]:
        return readouts_after_readback(self.readouts)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_prompt_pack(tmp_path_factory.mktemp("pack"), data_file("prompts.toml"))


def _start_line(workdir: Path, pack: Path, accounts: tuple[Account, ...], **box_args: Any) -> Line:
    db_url = f"sqlite:///{workdir / 'accounts.sqlite3'}"
    cli = AccountsCli(db_url)
    cli.init_db()
    if accounts:
        cli.import_accounts(workdir / "accounts.csv", [(a.code, a.phone) for a in accounts])
    box = BoxProcess(workdir / "box", db_url, prompt_pack=pack, **box_args)
    try:
        box.wait_ready()
    except BaseException:
        box.kill()
        raise
    silence_wav = sig.write_wav(workdir / "silence.wav", sig.silence(120))
    return Line(box, cli, workdir, silence_wav)


def _stop_line(line: Line) -> None:
    """SIGTERM: the box drains and exits 0, having written one summary per call."""
    rc = line.box.terminate()
    log = line.box.stderr_path.read_text(encoding="utf-8", errors="replace")
    assert rc == 0, log[-3000:]
    last = line.box.stdout().strip().splitlines()[-1]
    assert json.loads(last) == {"calls": len(line.box.summary_paths())}
    assert "Traceback" not in log, log[-3000:]
    # where the start-up time went, once the box was ready (issue 11: ready within 3 s)
    assert re.search(
        r"ready \d+\.\d\d s after the process started: interpreter and imports "
        r"[\d.]+ s, accounts [\d.]+ s, engines [\d.]+ s, prompts [\d.]+ s, SIP [\d.]+ s",
        log,
    )
    leaked = [s for s in line.secrets() if s in log]
    assert not leaked, "the box log holds a code, phone number or password"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, pack: Path) -> Iterator[Line]:
    """The box under test; it trusts P-Asserted-Identity from 127.0.0.1."""
    item = _start_line(
        tmp_path_factory.mktemp("box"), pack, REGISTERED, trusted_peers=("127.0.0.1",)
    )
    try:
        yield item
    finally:
        _stop_line(item)


@pytest.fixture(scope="module")
def untrusting_line(tmp_path_factory: pytest.TempPathFactory, pack: Path) -> Iterator[Line]:
    """A second box without --trusted-peer."""
    item = _start_line(tmp_path_factory.mktemp("box_untrusting"), pack, ())
    try:
        yield item
    finally:
        _stop_line(item)


# ---------------------------------------------------------------------------------- helpers


def box_is_listening(samples: np.ndarray[Any, Any]) -> bool:
    """The box has spoken (greeting, question) and is now quiet: it waits for the caller."""
    heard_s = len(samples) / sig.RATE
    tail = quiet_tail_s(samples)
    return heard_s >= 1.5 and tail >= 0.6 and tail < heard_s - 0.2


def spoke_since(samples: np.ndarray[Any, Any], start: int) -> bool:
    """The box has said something since sample ``start`` and is quiet again."""
    said = sig.loud_part(samples[start:], threshold=QUIET_RMS)
    return len(said) >= 0.3 * sig.RATE and quiet_tail_s(samples) >= 0.6


def wait_summary(
    line: Line, caller: str | None, before: set[str], timeout: float = 30.0
) -> tuple[dict[str, Any], Path]:
    """The new summary whose masked caller is ``mask_phone(caller)``."""
    masked = mask_phone(caller)

    def find() -> tuple[dict[str, Any], Path] | None:
        for name, data in line.box.summaries().items():
            if name not in before and data.get("caller") == masked:
                return data, line.box.log_dir / name
        return None

    try:
        found: tuple[dict[str, Any], Path] = wait_for(find, timeout, f"the summary of {masked}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{line.box.stderr_tail()}") from None
    return found


def keypad_call(
    line: Line,
    workdir: Path,
    number: str,
    code: str,
    *,
    issued: bool,
    all_up: threading.Barrier | None = None,
) -> CallResult:
    """Key the code in, confirm with 1 at the read-back; when ``issued``, wait for the
    password read twice and decline the repetition (2); then wait for the box to hang up."""
    before = line.box.summary_names()
    with SoftphoneCaller(workdir, number, line.silence_wav, time_limit_s=120) as phone:
        phone.dial(line.box.uri)
        if all_up is not None:
            all_up.wait(timeout=30)
        caller = ListeningCaller(phone)
        caller.wait(box_is_listening, 30, "the greeting and the question")
        phone.send_digits(code + "#")
        caller.wait_readouts(lambda r: any(len(x) == 10 for x in r), 60, "the code read back")
        phone.send_digits("1")
        if issued:
            caller.wait_readouts(
                lambda r: len(readouts_after_readback(r)) >= 2, 60, "the password read twice"
            )
            phone.send_digits("2")  # no third repetition
        phone.wait_closed(60)
        heard = caller.heard()
    summary, path = wait_summary(line, number, before)
    result = CallResult(summary, path, [s.digits for s in digit_sequences(heard)])
    with line.lock:
        line.passwords.update(result.passwords)
    return result


def spoken_call(line: Line, workdir: Path, words: Path, account: Account) -> CallResult:
    """Read the code aloud, say "đúng rồi" at the read-back, "không" to the repeat offer."""
    code_wav = utterance_wav(workdir / "say_code.wav", spoken_code(words, account.code))
    yes_wav = utterance_wav(workdir / "say_yes.wav", spoken_words(words, ["dung", "roi"]))
    no_wav = utterance_wav(workdir / "say_no.wav", spoken_words(words, ["khong"]))
    before = line.box.summary_names()
    with SoftphoneCaller(
        workdir / "phone", account.phone, line.silence_wav, time_limit_s=150
    ) as phone:
        phone.dial(line.box.uri)
        caller = ListeningCaller(phone)
        caller.wait(box_is_listening, 30, "the greeting and the question")
        caller.say(code_wav)
        caller.wait_readouts(lambda r: any(len(x) == 10 for x in r), 60, "the code read back")
        caller.say(yes_wav)
        caller.wait_readouts(
            lambda r: len(readouts_after_readback(r)) >= 2, 60, "the password read twice"
        )
        caller.say(no_wav)
        phone.wait_closed(60)
        heard = caller.heard()
    summary, path = wait_summary(line, account.phone, before)
    result = CallResult(summary, path, [s.digits for s in digit_sequences(heard)])
    with line.lock:
        line.passwords.update(result.passwords)
    return result


def audit_rows(line: Line, *call_ids: str) -> list[AuditRow]:
    """The audit row of each call (one ``accounts audit`` run for all of them)."""
    rows = line.cli.audit()
    out = []
    for call_id in call_ids:
        mine = [r for r in rows if r.call_id == call_id]
        assert len(mine) == 1, f"audit rows for {call_id}: {mine}"
        out.append(mine[0])
    return out


def check_passwords(line: Line, checks: list[tuple[str, str]]) -> list[int]:
    """``accounts check`` exit codes for ``(code, password)`` pairs, run side by side."""
    with ThreadPoolExecutor(len(checks)) as pool:
        return list(pool.map(lambda c: line.cli.check(*c), checks))


def issued_password(result: CallResult, account: Account) -> str:
    """The call issued a password and the caller heard it read twice, after the read-back."""
    assert result.summary["outcome"] == "password_issued", result.summary
    assert result.readback == account.code, result.readouts
    assert len(result.passwords) == 2, result.readouts
    first, second = result.passwords
    assert first == second  # "Mật khẩu mới ..." then "Xin nhắc lại ..."
    return first


def assert_issued_row(row: AuditRow, account: Account) -> None:
    assert (row.outcome, row.caller, row.code, row.caller_source) == (
        "password_issued",
        mask_phone(account.phone),
        mask_code(account.code),
        "from-header",
    )


def assert_summary_shape(line: Line, result: CallResult) -> None:
    """Call id, masked caller, outcome, durations, per-stage latency; nothing secret."""
    s = result.summary
    assert s["call_id"].startswith("sip-") and result.path.name == f"{s['call_id']}.json"
    assert s["caller"].startswith("*******") and len(s["caller"]) == 10
    assert s["outcome"] in {"password_issued", "mismatch", "no_caller_id", "gave_up", "hung_up"}
    assert s["duration_s"] > 0
    assert s["sip"]["answered_mono"] <= s["sip"]["ended_mono"]
    latency = s["stages"]["reply_latency"]
    assert latency and all(v >= 0 for v in latency)
    assert s["latency"]["reply_latency"]["n"] == len(latency)
    assert "turns" not in s  # what was heard may hold the code
    assert "sip_call_id" not in s["sip"]  # a trunk may embed the number: a keyed hash only
    assert len(s["sip"]["sip_call_id_hash"]) == 32
    text = result.path.read_text(encoding="utf-8")
    leaked = [x for x in line.secrets() if x in text]
    assert not leaked, f"{result.path.name} holds a code, phone number or password"


# ---------------------------------------------------------------------------------- tests


def recogniser_diagnosis(workdir: Path, words: Path) -> str:
    """What the box's recogniser makes of the caller's speech after G.711 (``hear``): run
    only when the spoken call fails, to tell a recognition problem from a phone one."""
    code = sig.write_ulaw_wav(workdir / "code_ulaw.wav", spoken_code(words, SPEAKER.code))
    yes = sig.write_ulaw_wav(workdir / "yes_ulaw.wav", spoken_words(words, ["dung", "roi"]))
    digits = run_assistant("hear", "--mode", "digits", str(code))
    yesno = run_assistant("hear", "--mode", "yesno", str(yes))
    return (
        f"hear --mode digits (expected {SPEAKER.code}): {digits.stdout}{digits.stderr[-500:]}"
        f"hear --mode yesno (expected yes): {yesno.stdout}{yesno.stderr[-500:]}"
    )


@needs_corpus
def test_spoken_code_gets_the_password_read_twice(line: Line, tmp_path: Path) -> None:
    assert WORDS is not None
    try:
        result = spoken_call(line, tmp_path, WORDS, SPEAKER)
        password = issued_password(result, SPEAKER)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{recogniser_diagnosis(tmp_path, WORDS)}") from None
    assert check_passwords(line, [(SPEAKER.code, password)]) == [3]  # valid, a change is due
    assert_issued_row(audit_rows(line, result.summary["call_id"])[0], SPEAKER)
    assert_summary_shape(line, result)
    assert len(result.summary["stages"]["asr_final"]) >= 2  # the code, then the yes
    assert result.summary["sip"]["ended_by"] == "box"


@pytest.fixture(scope="module")
def keypad_result(line: Line, tmp_path_factory: pytest.TempPathFactory) -> CallResult:
    return keypad_call(
        line, tmp_path_factory.mktemp("keypad"), KEYPAD.phone, KEYPAD.code, issued=True
    )


def test_keypad_code_gets_the_password(line: Line, keypad_result: CallResult) -> None:
    password = issued_password(keypad_result, KEYPAD)
    wrong = password[:-1] + str((int(password[-1]) + 1) % 10)
    # the password heard is the valid one (and the check can fail)
    assert check_passwords(line, [(KEYPAD.code, password), (KEYPAD.code, wrong)]) == [3, 1]
    assert_issued_row(audit_rows(line, keypad_result.summary["call_id"])[0], KEYPAD)
    assert keypad_result.summary["sip"]["ended_by"] == "box"


def test_other_number_gets_mismatch(line: Line, tmp_path: Path) -> None:
    result = keypad_call(line, tmp_path, STRANGER, KEYPAD.code, issued=False)
    assert result.summary["outcome"] == "mismatch"
    assert result.readback == KEYPAD.code
    assert result.passwords == []  # nothing after the read-back is a password
    (row,) = audit_rows(line, result.summary["call_id"])
    assert (row.outcome, row.caller, row.code, row.caller_source) == (
        "mismatch",
        mask_phone(STRANGER),
        mask_code(KEYPAD.code),
        "from-header",
    )
    assert_summary_shape(line, result)


def test_caller_hangs_up_mid_flow_and_the_box_keeps_serving(line: Line, tmp_path: Path) -> None:
    before = line.box.summary_names()
    with SoftphoneCaller(tmp_path / "hanger", HANGER.phone, line.silence_wav) as phone:
        phone.dial(line.box.uri)
        caller = ListeningCaller(phone)
        caller.wait(box_is_listening, 30, "the greeting and the question")
        phone.send_digits(HANGER.code + "#")
        # hang up while the box is reading the code back
        caller.wait(
            lambda x: any(len(s.digits) >= 3 for s in digit_sequences(x)),
            60,
            "the read-back to start",
        )
        phone.hangup()
        phone.wait_closed(10)
    summary, _ = wait_summary(line, HANGER.phone, before)
    assert summary["outcome"] == "hung_up"
    assert summary["sip"]["ended_by"] == "caller"
    (row,) = audit_rows(line, summary["call_id"])
    assert (row.outcome, row.caller) == ("hung_up", mask_phone(HANGER.phone))
    assert line.box.alive()

    # the next call is served as usual: a withheld number hears why it cannot be helped
    before = line.box.summary_names()
    with SoftphoneCaller(tmp_path / "anonymous", None, line.silence_wav) as phone:
        phone.dial(line.box.uri)
        phone.wait_closed(30)  # the box explains and hangs up
    summary, _ = wait_summary(line, None, before)
    assert (summary["outcome"], summary["caller_source"]) == ("no_caller_id", "none")
    assert summary["sip"]["ended_by"] == "box"


def test_three_simultaneous_calls(line: Line, tmp_path: Path) -> None:
    callers = [
        (CAROL.phone, CAROL.code, True),
        (DAVE.phone, DAVE.code, True),
        (EVE.phone, EVE.code, False),
    ]
    all_up = threading.Barrier(len(callers))
    with ThreadPoolExecutor(len(callers)) as pool:
        futures = [
            pool.submit(
                keypad_call, line, tmp_path / f"c{i}", phone, code, issued=issued, all_up=all_up
            )
            for i, (phone, code, issued) in enumerate(callers)
        ]
        carol, dave, eve = (f.result(timeout=150) for f in futures)
    # the three calls were up at the same time
    spans = [
        (r.summary["sip"]["answered_mono"], r.summary["sip"]["ended_mono"])
        for r in (carol, dave, eve)
    ]
    assert max(a for a, _ in spans) < min(e for _, e in spans)
    assert len({r.summary["call_id"] for r in (carol, dave, eve)}) == 3
    carol_pw, dave_pw = issued_password(carol, CAROL), issued_password(dave, DAVE)
    assert carol_pw != dave_pw
    assert check_passwords(line, [(CAROL.code, carol_pw), (DAVE.code, dave_pw)]) == [3, 3]
    assert eve.summary["outcome"] == "mismatch" and eve.passwords == []
    rows = audit_rows(line, *(r.summary["call_id"] for r in (carol, dave, eve)))
    assert_issued_row(rows[0], CAROL)
    assert_issued_row(rows[1], DAVE)
    assert (rows[2].outcome, rows[2].caller) == ("mismatch", mask_phone(EVE.phone))
    for r in (carol, dave, eve):
        assert_summary_shape(line, r)


def _sipp_call(line: Line, tmp_path: Path) -> tuple[dict[str, Any], AuditRow]:
    """sipp sends From +84900000009 and a P-Asserted-Identity, 1 s of silence, then no
    more RTP: the box's RTP timeout ends the call (hung_up)."""
    before = line.box.summary_names()
    wav = sig.write_ulaw_wav(tmp_path / "sipp.wav", sig.silence(1.0))
    result = run_sipp_call(
        tmp_path / "sipp", line.box.target, from_user=FROM_NUMBER, pai=PAI, wav=wav, timeout_s=30
    )
    assert result.returncode == 0, result.output[-2000:] + result.error_log()[-2000:]

    def any_new() -> tuple[dict[str, Any], Path] | None:
        for name, data in line.box.summaries().items():
            if name not in before:
                return data, line.box.log_dir / name
        return None

    summary, _ = wait_for(any_new, 30, "the sipp call's summary")
    return summary, audit_rows(line, summary["call_id"])[0]


@needs_sipp
def test_pai_honoured_from_trusted_peer(line: Line, tmp_path: Path) -> None:
    summary, row = _sipp_call(line, tmp_path)
    assert summary["caller"] == mask_phone(PAI_NUMBER) == "*******210"
    assert summary["caller_source"] == "p-asserted-identity"
    assert summary["sip"]["trusted_peer"] is True
    assert (row.caller, row.caller_source) == ("*******210", "p-asserted-identity")


@needs_sipp
def test_box_without_trusted_peer_ignores_pai_then_drains(
    untrusting_line: Line, tmp_path: Path
) -> None:
    """The second box (no --trusted-peer) takes the caller from From; then SIGTERM while a
    call is up: new calls hear busy, the current one goes on, the box exits 0 after it."""
    line = untrusting_line
    summary, row = _sipp_call(line, tmp_path)
    assert summary["caller"] == mask_phone(FROM_NUMBER) == "*******009"
    assert summary["caller_source"] == "from-header"
    assert summary["sip"]["trusted_peer"] is False
    assert (row.caller, row.caller_source) == ("*******009", "from-header")

    box = line.box
    before = box.summary_names()
    with (
        SoftphoneCaller(tmp_path / "current", STRANGER, line.silence_wav) as current,
        SoftphoneCaller(tmp_path / "late", EVE.phone, line.silence_wav) as late,
    ):
        current.dial(box.uri)
        caller = ListeningCaller(current)
        caller.wait(box_is_listening, 30, "the greeting and the question")
        box.proc.send_signal(signal.SIGTERM)
        wait_for(
            lambda: "draining" in box.stderr_path.read_text(errors="replace"),
            10,
            "the box to start draining",
        )
        with pytest.raises(CallRefusedError) as refused:
            late.dial(box.uri)
        assert "486" in refused.value.reason
        # the current call is still served: two digits keyed, the box asks for the rest
        keyed_at = len(caller.heard())
        current.send_digits("12#")
        caller.wait(lambda x: spoke_since(x, keyed_at), 30, "the box's answer after SIGTERM")
        assert box.alive()
        current.hangup()
        current.wait_closed(10)
    wait_for(lambda: not box.alive(), 30, "the drained box to exit")
    assert box.proc.returncode == 0, box.stderr_tail()
    summary, _ = wait_summary(line, STRANGER, before)
    assert summary["outcome"] == "hung_up" and summary["sip"]["ended_by"] == "caller"


def test_call_summary_has_latency_and_no_secrets(line: Line, keypad_result: CallResult) -> None:
    assert_summary_shape(line, keypad_result)
    # keys "#" -> read-back, and "1" -> password: both replies are timed
    assert len(keypad_result.summary["stages"]["reply_latency"]) >= 2
    # every summary written so far, against every secret known so far
    for path in line.box.summary_paths():
        text = path.read_text(encoding="utf-8")
        assert not [x for x in line.secrets() if x in text], path.name
    figures = {
        data["caller"]: data["stages"].get("reply_latency")
        for data in line.box.summaries().values()
    }
    print("reply_latency by caller:", json.dumps(figures))
    # the receive side has no jitter buffer (baresip's default held the audio 100 ms): the
    # stack reports no buffer delay, while the call was heard (the keys and speech above)
    assert keypad_result.summary["sip"]["jbuf_delay_ms"] is None
