"""The phone line under attack (issue 12), end to end against the real box.

* the four-INVITE attack, replayed with sipp: INVITEs answered and never acknowledged hold
  every slot only until the box tears them down (3 s) and a real caller (Debian's baresip)
  still gets through;
* calls from one untrusted source address are limited (2 at once): the others hear busy at
  once and the real caller from another address gets through at once;
* an acknowledged call that never sends RTP is torn down and leaves its audit row;
* malformed INVITEs are never answered (no slot taken) and the box keeps serving.

The attackers use 127.0.0.2 and 127.0.0.3 (the loopback net is 127/8), the real caller
127.0.0.1; the box trusts nobody (so every address is limited).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sip import audio as sig
from sip.box import AccountsCli, BoxProcess, wait_for
from sip.netports import HOST, free_port, free_port_range
from sip.sipp import SIPP, sipp_available
from sip.softphone import CallRefusedError, SoftphoneCaller, baresip_available
from sip.tones import write_prompt_pack

from assistant.core.paths import data_file

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("baresip") is None, reason="baresip-python missing"
    ),
    pytest.mark.skipif(not baresip_available(), reason="baresip-core missing"),
    pytest.mark.skipif(not sipp_available(), reason="sipp missing: apt-get install sip-tester"),
]
SCENARIOS = Path(__file__).parent / "sip"
REAL_CALLER = "0987654321"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("abuse")
    pack = write_prompt_pack(workdir / "pack", data_file("prompts.toml"))
    db_url = f"sqlite:///{workdir / 'accounts.sqlite3'}"
    AccountsCli(db_url).init_db()
    item = BoxProcess(workdir / "box", db_url, prompt_pack=pack, max_calls=4)
    try:
        item.wait_ready()
        yield item
    finally:
        rc = item.terminate()
        assert rc == 0, item.stderr_tail()


def sipp(
    workdir: Path, box: BoxProcess, scenario: str, *, calls: int, local_ip: str, user: str
) -> subprocess.Popen[bytes]:
    """Start ``calls`` simultaneous calls of tests/sip/<scenario>.xml from ``local_ip``."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (SCENARIOS / f"{scenario}.xml").read_text().replace("@FROM_USER@", user)
    path = workdir / f"{scenario}.xml"
    path.write_text(text)
    media_lo, _ = free_port_range(4 * calls)
    cmd = [
        SIPP, box.target, "-sf", str(path), "-s", "assistant", "-m", str(calls),
        "-l", str(calls), "-r", str(calls), "-i", local_ip, "-p", str(free_port()),
        "-mi", local_ip, "-mp", str(media_lo), "-nostdin", "-timeout", "30s",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def new_summaries(box: BoxProcess, before: set[str], count: int, what: str) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        fresh = [d for n, d in box.summaries().items() if n not in before]
        return fresh if len(fresh) >= count else None

    result: list[dict[str, Any]] = wait_for(found, 30, what)
    return result


def attack_answered(box: BoxProcess, count: int) -> None:
    """Wait until the box has answered ``count`` more calls (they hold their slots now)."""
    start = box.stderr_path.read_text(errors="replace").count(": answered from ")

    def answered() -> bool:
        text = box.stderr_path.read_text(errors="replace")
        return text.count(": caller id ") - start >= count or "not acknowledged" in text

    wait_for(answered, 15, "the attack INVITEs to be answered")


def real_call(box: BoxProcess, workdir: Path, *, attempts: int) -> int:
    """Dial until answered (a refused dial is retried a second later); returns the attempt
    that got through."""
    silence = sig.write_wav(workdir / "silence.wav", sig.silence(30))
    with SoftphoneCaller(workdir / "real", REAL_CALLER, silence) as phone:
        for attempt in range(1, attempts + 1):
            try:
                phone.dial(box.uri, timeout=10)
            except CallRefusedError:
                time.sleep(1.0)
                continue
            phone.hangup()
            phone.wait_closed(10)
            return attempt
    raise AssertionError(f"the real caller was refused {attempts} times")


def test_four_unacknowledged_invites_do_not_lock_out_a_real_caller(
    box: BoxProcess, tmp_path: Path
) -> None:
    before = box.summary_names()
    attackers = [
        sipp(tmp_path / f"a{i}", box, "uac_noack", calls=2, local_ip=ip, user=f"09110000{i}1")
        for i, ip in enumerate(("127.0.0.2", "127.0.0.3"))
    ]
    try:
        attack_answered(box, 4)
        # every slot is held by nobody now; the box frees them within 3 s
        attempt = real_call(box, tmp_path, attempts=10)
    finally:
        for proc in attackers:
            proc.wait(timeout=40)
    summaries = new_summaries(box, before, 5, "the five calls' summaries")
    held = [s["sip"] for s in summaries if s["sip"].get("end_reason") == "not_acknowledged"]
    assert len(held) == 4, [s["sip"].get("end_reason") for s in summaries]
    for sip in held:
        assert sip["ended_by"] == "box"
        assert sip["ended_mono"] - sip["started_mono"] < 6.0  # the 3 s timeout, not 10 s+
    assert attempt <= 8


def test_one_source_gets_two_calls_at_once(box: BoxProcess, tmp_path: Path) -> None:
    before = box.summary_names()
    attacker = sipp(
        tmp_path / "a", box, "uac_noack", calls=4, local_ip="127.0.0.2", user="0911000009"
    )
    try:
        attack_answered(box, 2)
        # two slots are still free for everyone else: the real caller gets in at once
        assert real_call(box, tmp_path, attempts=1) == 1
    finally:
        attacker.wait(timeout=40)
    summaries = new_summaries(box, before, 5, "the five calls' summaries")
    reasons = sorted(str(s["sip"].get("end_reason")) for s in summaries)
    assert reasons.count("source_busy") == 2, reasons
    assert reasons.count("not_acknowledged") == 2, reasons
    for s in summaries:
        if s["sip"].get("end_reason") == "source_busy":
            assert "answered_mono" not in s["sip"]  # refused before it was answered


def test_call_without_rtp_is_torn_down_and_audited(box: BoxProcess, tmp_path: Path) -> None:
    before = box.summary_names()
    proc = sipp(tmp_path / "n", box, "uac_nortp", calls=1, local_ip="127.0.0.2", user="0911000077")
    proc.wait(timeout=40)
    (summary,) = new_summaries(box, before, 1, "the RTP-less call's summary")
    assert summary["sip"]["end_reason"] == "no_rtp"
    assert summary["outcome"] == "hung_up"
    assert summary["sip"]["ended_mono"] - summary["sip"]["answered_mono"] < 6.0
    rows = [r for r in AccountsCli(box.db_url).audit() if r.call_id == summary["call_id"]]
    assert [(r.outcome, r.caller_source, r.peer_class) for r in rows] == [
        ("hung_up", "from-header", "untrusted")
    ]


def _invite(call_id: str, port: int, box: BoxProcess, *, body: str, from_tag: bool) -> bytes:
    tag = ";tag=x1" if from_tag else ""
    lines = [
        f"INVITE {box.uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.3:{port};branch=z9hG4bK{call_id}",
        f"From: <sip:0911000055@127.0.0.3>{tag}",
        f"To: <{box.uri}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:x@127.0.0.3:{port}>",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def test_malformed_invites_are_never_answered(box: BoxProcess, tmp_path: Path) -> None:
    """(Not sent: a From without a tag. baresip-python 0.5.2a3 answers it 500 itself and leaks
    the call, slot included, before the box ever sees it; see the screen's unit tests.)"""
    sdp = (
        "v=0\r\no=x 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    )
    shapes = {
        "port_zero": dict(body=sdp.replace("audio 4000", "audio 0"), from_tag=True),
        "no_g711": dict(body=sdp.replace("RTP/AVP 0", "RTP/AVP 18"), from_tag=True),
        "address_zero": dict(body=sdp.replace("IN IP4 127.0.0.3\r\nt", "IN IP4 0.0.0.0\r\nt"),
                             from_tag=True),
        "no_sdp": dict(body="", from_tag=True),
    }  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.3", 0))
        sock.settimeout(0.2)
        port = sock.getsockname()[1]
        for name, shape in shapes.items():
            body, from_tag = str(shape["body"]), bool(shape["from_tag"])
            sock.sendto(
                _invite(f"bad-{name}", port, box, body=body, from_tag=from_tag),
                (HOST, int(box.target.split(":")[1])),
            )
        finals: dict[str, int] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(finals) < len(shapes):
            try:
                data = sock.recv(65535).decode("utf-8", "replace")
            except TimeoutError:
                continue
            status = int(data.split(" ", 2)[1])
            call_id = next(
                line.split(":", 1)[1].strip()
                for line in data.split("\r\n")
                if line.lower().startswith(("call-id:", "i:"))
            )
            if status >= 200:
                finals.setdefault(call_id, status)
    assert len(finals) == len(shapes), finals  # each got a final answer, quickly
    assert 200 not in finals.values(), finals  # and none was answered
    assert real_call(box, tmp_path, attempts=1) == 1  # the box serves as before


def test_strict_caller_trust_treats_a_from_claim_as_withheld(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """With --caller-trust strict and no trusted peer, the number a caller puts in From is
    not believed: the call takes the withheld-number path (no lookup, no password), and the
    audit row says where the call came from without the number."""
    workdir = tmp_path_factory.mktemp("strict")
    pack = write_prompt_pack(workdir / "pack", data_file("prompts.toml"))
    db_url = f"sqlite:///{workdir / 'accounts.sqlite3'}"
    cli = AccountsCli(db_url)
    cli.init_db()
    cli.import_accounts(workdir / "a.csv", [("7912345680", REAL_CALLER)])
    strict = BoxProcess(
        workdir / "box", db_url, prompt_pack=pack, extra=("--caller-trust", "strict")
    )
    try:
        strict.wait_ready()
        assert "every caller is treated as a withheld number" in strict.stderr_path.read_text()
        before = strict.summary_names()
        silence = sig.write_wav(tmp_path / "silence.wav", sig.silence(30))
        with SoftphoneCaller(tmp_path / "spoof", REAL_CALLER, silence) as phone:
            phone.dial(strict.uri, timeout=10)
            phone.wait_closed(40)  # the box explains and hangs up
        (summary,) = new_summaries(strict, before, 1, "the spoofed call's summary")
        assert (summary["outcome"], summary["caller_source"]) == ("no_caller_id", "none")
        rows = [r for r in cli.audit() if r.call_id == summary["call_id"]]
        assert [(r.outcome, r.caller, r.caller_source, r.peer_class) for r in rows] == [
            ("no_caller_id", "-", "none", "untrusted")
        ]
    finally:
        assert strict.terminate() == 0, strict.stderr_tail()
