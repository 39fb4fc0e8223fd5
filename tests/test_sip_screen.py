"""Caller trust policy and INVITE screening: pure functions, no SIP stack."""

from __future__ import annotations

import pytest

from assistant.core.ports import CallerSource, PeerClass
from assistant.telephony.sip.callerid import CallerTrust, TrustedPeers, decide_caller
from assistant.telephony.sip.screen import screen_invite
from assistant.telephony.sip.trace import parse_trace

TRUNK_IP = "10.0.0.5"
STRANGER_IP = "192.0.2.77"
PEERS = TrustedPeers([TRUNK_IP])
PAI = '"Bob" <sip:+84976543210@carrier.invalid;user=phone>'
FROM = '"Eve" <sip:0912345678@192.0.2.77>;tag=abc'


def decide(source_ip: str, policy: CallerTrust, *, pai: str | None = PAI) -> tuple[object, ...]:
    headers = {"From": FROM}
    if pai is not None:
        headers["P-Asserted-Identity"] = pai
    decision = decide_caller(
        headers, peer_uri=None, source_ip=source_ip, trusted=PEERS, policy=policy
    )
    c = decision.caller
    assert not any(d in decision.reason for d in ("0912345678", "976543210"))
    return c.number, c.source, c.peer


@pytest.mark.parametrize(
    ("source_ip", "policy", "pai", "expected"),
    [
        # strict: only PAI from a trusted peer; everything else is a withheld number
        (TRUNK_IP, CallerTrust.STRICT, PAI, ("+84976543210", CallerSource.PAI, PeerClass.TRUSTED)),
        (TRUNK_IP, CallerTrust.STRICT, None, (None, CallerSource.NONE, PeerClass.TRUSTED)),
        (
            TRUNK_IP,
            CallerTrust.STRICT,
            "<sip:anonymous@anonymous.invalid>",
            (None, CallerSource.NONE, PeerClass.TRUSTED),
        ),
        (STRANGER_IP, CallerTrust.STRICT, PAI, (None, CallerSource.NONE, PeerClass.UNTRUSTED)),
        (STRANGER_IP, CallerTrust.STRICT, None, (None, CallerSource.NONE, PeerClass.UNTRUSTED)),
        # trunk: PAI from a trusted peer, else the From claim
        (TRUNK_IP, CallerTrust.TRUNK, PAI, ("+84976543210", CallerSource.PAI, PeerClass.TRUSTED)),
        (TRUNK_IP, CallerTrust.TRUNK, None, ("0912345678", CallerSource.FROM, PeerClass.TRUSTED)),
        (
            STRANGER_IP,
            CallerTrust.TRUNK,
            PAI,
            ("0912345678", CallerSource.FROM, PeerClass.UNTRUSTED),
        ),
        # open (lab): PAI from anyone
        (
            STRANGER_IP,
            CallerTrust.OPEN,
            PAI,
            ("+84976543210", CallerSource.PAI, PeerClass.UNTRUSTED),
        ),
        (
            STRANGER_IP,
            CallerTrust.OPEN,
            None,
            ("0912345678", CallerSource.FROM, PeerClass.UNTRUSTED),
        ),
    ],
)
def test_caller_trust_policy(
    source_ip: str, policy: CallerTrust, pai: str | None, expected: tuple[object, ...]
) -> None:
    assert decide(source_ip, policy, pai=pai) == expected


def test_unknown_source_is_untrusted() -> None:
    decision = decide_caller(
        {"P-Asserted-Identity": PAI}, peer_uri=None, source_ip=None, trusted=PEERS
    )
    assert decision.caller.number is None and decision.caller.peer is PeerClass.UNTRUSTED


# ------------------------------------------------------------------------------ screening

SDP = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
HEADERS = {
    "Via": "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1",
    "From": '"Caller" <sip:0912345678@192.0.2.7>;tag=1928301774',
    "To": "<sip:assistant@127.0.0.1:5070>",
    "Call-ID": "a84b4c76e66710@192.0.2.7",
    "CSeq": "314159 INVITE",
    "Contact": "<sip:caller@192.0.2.7:5060>",
    "Max-Forwards": "70",
    "Content-Type": "application/sdp",
}


def invite(
    *,
    start: str = "INVITE sip:assistant@127.0.0.1:5070 SIP/2.0",
    drop: tuple[str, ...] = (),
    change: dict[str, str] | None = None,
    body: str = SDP,
) -> str:
    headers = {k: v for k, v in HEADERS.items() if k not in drop} | (change or {})
    lines = [start, *(f"{k}: {v}" for k, v in headers.items())]
    return "RX UDP 192.0.2.7:5060 -> 127.0.0.1:5070\n" + "\r\n".join(lines) + "\r\n\r\n" + body


def screened(text: str) -> str | None:
    msg = parse_trace(text)
    assert msg is not None
    return screen_invite(msg)


def test_a_well_formed_invite_passes() -> None:
    assert screened(invite()) is None
    assert screened(invite(change={"Content-Type": "application/SDP"})) is None
    pcma_only = SDP.replace("RTP/AVP 0 8 101", "RTP/AVP 96\r\na=rtpmap:96 PCMA/8000")
    assert screened(invite(body=pcma_only)) is None


MALFORMED = {
    "bad_request_line": invite(start="INVITE sip:assistant@127.0.0.1:5070"),
    "bad_version": invite(start="INVITE sip:assistant@127.0.0.1:5070 SIP/3.0"),
    "bad_request_uri": invite(start="INVITE http://example.com/ SIP/2.0"),
    "no_via": invite(drop=("Via",)),
    "no_from": invite(drop=("From",)),
    "no_to": invite(drop=("To",)),
    "no_call_id": invite(drop=("Call-ID",)),
    "no_cseq": invite(drop=("CSeq",)),
    "no_contact": invite(drop=("Contact",)),
    "cseq_not_invite": invite(change={"CSeq": "1 BYE"}),
    "cseq_not_number": invite(change={"CSeq": "one INVITE"}),
    "max_forwards_zero": invite(change={"Max-Forwards": "0"}),
    "from_without_tag": invite(change={"From": "<sip:0912345678@192.0.2.7>"}),
    "from_not_a_uri": invite(change={"From": '"x" <nonsense>;tag=1'}),
    "from_unterminated_quote": invite(change={"From": '"Eve <sip:1@h>;tag=1'}),
    "to_with_tag": invite(change={"To": "<sip:assistant@127.0.0.1:5070>;tag=zz"}),
    "huge_header": invite(change={"Subject": "x" * 5000}),
    "no_sdp": invite(body=""),
    "not_sdp": invite(change={"Content-Type": "text/plain"}),
    "sdp_garbage": invite(body="hello\r\n"),
    "sdp_no_audio": invite(body=SDP.replace("m=audio", "m=video")),
    "sdp_port_zero": invite(body=SDP.replace("m=audio 30000", "m=audio 0")),
    "sdp_no_address": invite(body=SDP.replace("c=IN IP4 192.0.2.7\r\n", "")),
    "sdp_address_zero": invite(body=SDP.replace("c=IN IP4 192.0.2.7", "c=IN IP4 0.0.0.0")),
    "sdp_no_g711": invite(body=SDP.replace("RTP/AVP 0 8 101", "RTP/AVP 18 101")),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_invites_are_refused(name: str) -> None:
    reason = screened(MALFORMED[name])
    assert reason is not None
    assert reason.isidentifier()  # a fixed word, never header contents
