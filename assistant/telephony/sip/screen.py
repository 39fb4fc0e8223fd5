"""Screening of incoming INVITEs before the box gives them a call slot.

:func:`screen_invite` looks at the INVITE as the SIP trace saw it (:class:`SipMessage`) and
returns why the box will not answer it, or ``None``. Only what a real caller always sends is
required (RFC 3261 §8.1.1 and an SDP offer the box can answer): the mandatory headers, a
From with a tag, a CSeq for INVITE, a Contact, a sane Max-Forwards, and an SDP offer with an
IP address and an audio stream on a real port offering PCMU or PCMA. Header values come off
the network, so everything here is total (never raises). Reasons are fixed words, never
header contents (which may hold a phone number).
"""

from __future__ import annotations

import ipaddress
import re

from assistant.telephony.sip.callerid import parse_name_addr
from assistant.telephony.sip.trace import SipMessage, header_tag

__all__ = ["MAX_HEADER_CHARS", "screen_invite"]

#: Longest header value accepted (a From with a long display name is a few hundred).
MAX_HEADER_CHARS = 2048
_REQUIRED = ("via", "from", "to", "call-id", "cseq", "contact")
_CSEQ = re.compile(r"^\s*([0-9]{1,10})\s+INVITE\s*$", re.IGNORECASE)
_URI_SCHEMES = ("sip:", "sips:", "tel:")
_G711 = {"0": "PCMU", "8": "PCMA"}


def _uri_ok(uri: str) -> bool:
    return uri.lower().startswith(_URI_SCHEMES) and len(uri) > 5


def _address_ok(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not ip.is_unspecified and not ip.is_multicast


def _sdp_problem(body: str) -> str | None:
    lines = [line.strip() for line in body.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        return "sdp_invalid"
    session_conn: str | None = None
    audio_conn: str | None = None
    audio: list[str] | None = None
    rtpmap: dict[str, str] = {}
    in_audio = False
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio" and audio is None
            if in_audio:
                audio = parts
        elif line.startswith("c="):
            parts = line[2:].split()
            conn = parts[2].split("/", 1)[0] if len(parts) == 3 and parts[0] == "IN" else ""
            if in_audio:
                audio_conn = conn
            elif audio is None:
                session_conn = conn
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            rtpmap[pt] = encoding.split("/", 1)[0].upper()
    if audio is None:
        return "sdp_no_audio"
    if len(audio) < 4 or not audio[1].isdigit() or not 0 < int(audio[1]) < 65536:
        return "sdp_bad_audio_port"
    if not audio[2].upper().startswith("RTP/"):
        return "sdp_bad_transport"
    address = audio_conn if audio_conn is not None else session_conn
    if not address or not _address_ok(address):
        return "sdp_bad_address"
    offered = {rtpmap.get(pt) or _G711.get(pt, "") for pt in audio[3:]}
    if not offered & {"PCMU", "PCMA"}:
        return "sdp_no_g711"
    return None


def screen_invite(msg: SipMessage) -> str | None:
    """Why the initial INVITE ``msg`` is refused (a fixed reason word), or ``None``."""
    parts = msg.start_line.split(" ")
    if len(parts) != 3 or parts[0] != "INVITE" or parts[2] != "SIP/2.0":
        return "bad_request_line"
    if not _uri_ok(parts[1]):
        return "bad_request_uri"
    for name in _REQUIRED:
        value = msg.headers.get(name, "").strip()
        if not value:
            return f"missing_{name.replace('-', '_')}"
    if any(len(v) > MAX_HEADER_CHARS for v in msg.headers.values()):
        return "header_too_long"
    if _CSEQ.match(msg.headers["cseq"]) is None:
        return "bad_cseq"
    forwards = msg.headers.get("max-forwards")
    if forwards is not None and (not forwards.strip().isdigit() or int(forwards) < 1):
        return "bad_max_forwards"
    for name in ("from", "to", "contact"):
        addr = parse_name_addr(msg.headers[name])
        if addr is None or not _uri_ok(addr.uri):
            return f"bad_{name}"
    if not header_tag(msg.headers["from"]):
        return "from_without_tag"
    if header_tag(msg.headers["to"]):
        return "to_with_tag"  # a re-INVITE of a dialog we do not know
    content_type = msg.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not msg.body.strip():
        return "no_sdp_offer"
    if content_type != "application/sdp":
        return "not_sdp"
    return _sdp_problem(msg.body)
