"""Network facts about calls, read from the SIP stack's message trace.

baresip-python 0.5.2a3 reports a call's peer URI, Call-ID and allow-listed headers, but not
the address the INVITE came from. Its SIP trace does: with ``Config(sip_trace=True)`` every
message sent or received is logged under ``baresip.native.sip`` as::

    RX UDP 127.0.0.1:5080 -> 127.0.0.1:5070
    INVITE sip:assistant@127.0.0.1:5070 SIP/2.0
    ...

:class:`SipTraceIndex` is a logging handler for that logger. It keeps, per Call-ID, the
source address of the initial INVITE, the RTP address its SDP offers, the codec our
answer chose and, when a ``screen`` function is given
(:func:`assistant.telephony.sip.screen.screen_invite`), why the INVITE is not fit to be
answered; it forgets them when the call is over (or after ``ttl_s``). It runs on the
stack's log thread; lookups come from the asyncio thread, so it locks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: First line of a trace record: direction, transport, source and destination.
_TRACE_HEAD = re.compile(r"^(RX|TX) (\w+) (\S+) -> (\S+)$")
_STATIC_PT = {"0": "PCMU", "8": "PCMA"}


@dataclass
class PeerFacts:
    """What the trace told us about one call (by Call-ID)."""

    sources: set[str] = field(default_factory=set)  # "ip:port" of every initial INVITE
    from_tags: set[str] = field(default_factory=set)
    transport: str = ""
    rtp_remote: str | None = None
    codec: str | None = None
    problem: str | None = None  # why the first INVITE is refused (a fixed word), if it is
    seen_at: float = 0.0

    @property
    def source(self) -> str | None:
        """The single source address, or ``None`` when several INVITEs disagreed."""
        return next(iter(self.sources)) if len(self.sources) == 1 else None


def split_hostport(hostport: str) -> tuple[str, int | None]:
    """``"127.0.0.1:5080"`` → ``("127.0.0.1", 5080)``; ``"[::1]:5060"`` → ``("::1", 5060)``."""
    text = hostport.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host, int(port) if port.isdigit() else None


@dataclass(frozen=True)
class SipMessage:
    """The parts of one traced SIP message we use."""

    direction: str  # "RX" or "TX"
    transport: str
    src: str
    dst: str
    start_line: str
    headers: dict[str, str]  # lower-case names (compact forms expanded), first value wins
    body: str

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0] if self.is_request else ""

    @property
    def status(self) -> int | None:
        if self.is_request:
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def cseq_method(self) -> str:
        parts = self.headers.get("cseq", "").split()
        return parts[1].upper() if len(parts) > 1 else ""


_COMPACT = {"i": "call-id", "f": "from", "t": "to", "c": "content-type", "l": "content-length"}


def parse_trace(text: str) -> SipMessage | None:
    """Parse one trace record; ``None`` for anything that is not a whole SIP message."""
    head, sep, message = text.partition("\n")
    match = _TRACE_HEAD.match(head.strip())
    if match is None or not sep:
        return None
    message = message.replace("\r\n", "\n")
    header_block, _, body = message.partition("\n\n")
    lines = header_block.split("\n")
    if not lines or not lines[0].strip():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, value.strip())
    return SipMessage(
        direction=match.group(1),
        transport=match.group(2),
        src=match.group(3),
        dst=match.group(4),
        start_line=lines[0].strip(),
        headers=headers,
        body=body,
    )


def header_tag(value: str) -> str:
    """The ``tag`` parameter of a From/To header value (empty when absent)."""
    match = re.search(r";\s*tag\s*=\s*([^;\s>]+)", value, re.IGNORECASE)
    return match.group(1) if match else ""


def sdp_audio(body: str) -> tuple[str | None, str | None]:
    """(RTP address ``ip:port``, codec name of the first audio payload type) of an SDP."""
    conn: str | None = None
    port: str | None = None
    first_pt: str | None = None
    rtpmap: dict[str, str] = {}
    in_audio = False
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("c=") and (conn is None or in_audio):
            parts = line[2:].split()
            if len(parts) == 3:
                conn = parts[2].split("/", 1)[0]
        elif line.startswith("m="):
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio and len(parts) >= 4 and port is None:
                port, first_pt = parts[1], parts[3]
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:") :].partition(" ")
            rtpmap[pt] = enc.split("/", 1)[0].upper()
    address = f"{conn}:{port}" if conn and port else None
    codec = None
    if first_pt is not None:
        codec = rtpmap.get(first_pt) or _STATIC_PT.get(first_pt) or f"PT{first_pt}"
    return address, codec


class SipTraceIndex(logging.Handler):
    """Collects per-call network facts from ``baresip.native.sip`` trace records."""

    def __init__(
        self,
        *,
        ttl_s: float = 120.0,
        max_entries: int = 4096,
        screen: Callable[[SipMessage], str | None] | None = None,
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self._screen = screen
        self._facts: dict[str, PeerFacts] = {}
        self._guard = threading.Lock()
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self.unparsed = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.observe(record.getMessage())
        except Exception:  # a logging handler must never raise into the stack's log thread
            self.handleError(record)

    def observe(self, text: str) -> None:
        """Digest one trace record."""
        msg = parse_trace(text)
        if msg is None:
            if text.startswith(("RX ", "TX ")):
                self.unparsed += 1
            return
        call_id = msg.headers.get("call-id")
        if not call_id or msg.cseq_method != "INVITE":
            return
        now = time.monotonic()
        with self._guard:
            facts = self._facts.get(call_id)
            if (
                msg.direction == "RX"
                and msg.method == "INVITE"
                and not header_tag(msg.headers.get("to", ""))
            ):
                if facts is None:
                    self._prune(now)
                    facts = self._facts[call_id] = PeerFacts(seen_at=now)
                    if self._screen is not None:
                        facts.problem = self._screen(msg)
                facts.sources.add(msg.src)
                facts.from_tags.add(header_tag(msg.headers.get("from", "")))
                facts.transport = msg.transport
                if facts.rtp_remote is None:
                    facts.rtp_remote = sdp_audio(msg.body)[0]
            elif (
                facts is not None
                and msg.direction == "TX"
                and msg.status == 200
                and facts.codec is None
                and msg.body.strip()
            ):
                facts.codec = sdp_audio(msg.body)[1]

    def _prune(self, now: float) -> None:
        stale = [k for k, v in self._facts.items() if now - v.seen_at > self._ttl_s]
        for key in stale:
            del self._facts[key]
        while len(self._facts) >= self._max_entries:
            del self._facts[next(iter(self._facts))]

    def lookup(self, call_id: str) -> PeerFacts | None:
        """A copy of the facts for ``call_id``, or ``None`` if not (yet) seen."""
        with self._guard:
            facts = self._facts.get(call_id)
            if facts is None:
                return None
            return PeerFacts(
                sources=set(facts.sources),
                from_tags=set(facts.from_tags),
                transport=facts.transport,
                rtp_remote=facts.rtp_remote,
                codec=facts.codec,
                problem=facts.problem,
                seen_at=facts.seen_at,
            )

    def forget(self, call_id: str) -> None:
        with self._guard:
            self._facts.pop(call_id, None)
