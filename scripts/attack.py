"""Attack a running box from 127.0.0.1 and print, per scenario, what got through (issue 12).

Not a test: a bounded, loopback-only tool for people checking the defences of a box they
started themselves, for example::

    python -m assistant init-db --db sqlite:///var/attack.sqlite3
    python -m assistant accounts add --db sqlite:///var/attack.sqlite3 \
        --code 4801357924 --phone 0912345678
    python -m assistant sip --db sqlite:///var/attack.sqlite3 --listen 127.0.0.1:5070 \
        --log-dir var/attack-calls &
    PYTHONPATH=. python scripts/attack.py --box 127.0.0.1:5070 \
        --db sqlite:///var/attack.sqlite3 --code 4801357924 --phone 0912345678

Scenarios (each bounded by its count; calls are made with a small SIP UAC written here on
plain UDP sockets: INVITE, ACK, G.711 silence and RFC 4733 keys over RTP, BYE):

* ``spoofed-from``: a caller with the account's number in From (no P-Asserted-Identity) keys
  the right code and confirms: did a password get issued? (``--caller-trust strict`` refuses;
  ``trunk`` issues it once, then the account's daily limit holds);
* ``brute-force``: ``--brute-calls`` calls from one number, each with a wrong code;
* ``spray``: one code from ``--spray-numbers`` different numbers;
* ``resets``: ``--resets`` calls from the account's number with the right code in a row;
* ``unacked``: INVITEs that are answered and never acknowledged, then a real call: is it
  answered, and how long were the slots held?
* ``fuzz``: ``--fuzz`` malformed SIP messages (seeded mutations of a good INVITE): how many
  were answered 200 (a slot taken), and is the box still alive?

What got through is read from the box's audit trail (``--db``): outcomes of the rows written
since the scenario started. Every address is checked to be on 127.0.0.0/8. The script is long
because it carries its own small SIP and RTP client (the attack needs no SIP library, and
sipp cannot follow the conversation with keys).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import secrets
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
FRAME = b"\xff" * 160  # 20 ms of mu-law silence
_PT_PCMU = 0
_PT_EVENT = 101
_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def loopback(host: str) -> str:
    """``host`` if it is a 127.0.0.0/8 address; exits otherwise (this tool is local only)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        sys.exit(f"attack.py: {host!r} is not an IP address (127.0.0.x only)")
    if ip not in LOOPBACK:
        sys.exit(f"attack.py: {host} is not on 127.0.0.0/8; this tool only attacks a local box")
    return host


@dataclass
class SipMessage:
    start: str
    headers: dict[str, str]
    body: str

    @property
    def status(self) -> int | None:
        parts = self.start.split(" ", 2)
        if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def method(self) -> str:
        return "" if self.status is not None else self.start.split(" ", 1)[0]

    def h(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


_COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
}


def parse(data: bytes) -> SipMessage | None:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    if not lines or not lines[0].strip():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            headers.setdefault(_COMPACT.get(key, key), value.strip())
    return SipMessage(lines[0].strip(), headers, body)


def sdp_target(body: str) -> tuple[str, int] | None:
    address = port = None
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("c=") and len(line.split()) == 3:
            address = line.split()[2]
        elif line.startswith("m=audio") and len(line.split()) > 1 and line.split()[1].isdigit():
            port = int(line.split()[1])
    return (address, port) if address and port else None


@dataclass
class CallReport:
    """What one attack call saw."""

    status: int | None = None  # final response to the INVITE (None: no answer at all)
    answered_at: float | None = None
    box_bye_at: float | None = None  # when the box sent BYE (None: it did not)
    started: float = field(default_factory=time.monotonic)

    @property
    def held_s(self) -> float | None:
        if self.answered_at is None or self.box_bye_at is None:
            return None
        return self.box_bye_at - self.answered_at


class Uac:
    """A minimal SIP user agent client on UDP (one call at a time), enough to attack a box."""

    def __init__(self, box: tuple[str, int], local_ip: str = "127.0.0.1") -> None:
        self.box = (loopback(box[0]), box[1])
        self.local_ip = loopback(local_ip)
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((self.local_ip, 0))
        self.sip.settimeout(0.05)
        self.port = self.sip.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((self.local_ip, 0))
        self.rtp.setblocking(False)
        self.rtp_port = self.rtp.getsockname()[1]

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def __enter__(self) -> Uac:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages ---------------------------------------------------------------------------

    def _sdp(self) -> str:
        ip = self.local_ip
        return (
            f"v=0\r\no=attack 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
            "a=sendrecv\r\n"
        )

    def send(self, text: str) -> None:
        self.sip.sendto(text.encode("utf-8"), self.box)

    def recv(self) -> SipMessage | None:
        try:
            data, _ = self.sip.recvfrom(65535)
        except (TimeoutError, BlockingIOError):
            return None
        return parse(data)

    def _reply(self, request: SipMessage, status: str, body: str = "") -> None:
        lines = [f"SIP/2.0 {status}"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines.append(f"{name.title()}: {request.h(name)}")
        lines.append(f"Contact: <sip:attack@{self.local_ip}:{self.port}>")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body)

    # -- one call ---------------------------------------------------------------------------

    def call(
        self,
        from_user: str | None,
        *,
        pai: str | None = None,
        ack: bool = True,
        keys: Sequence[tuple[float, str]] = (),
        hangup_after_s: float = 20.0,
        service: str = "assistant",
    ) -> CallReport:
        """One call: INVITE, then (``ack``) ACK, RTP silence and ``keys`` at their times
        (seconds after the answer), BYE after ``hangup_after_s`` unless the box ended it."""
        report = CallReport()
        call_id = f"{secrets.token_hex(8)}@{self.local_ip}"
        tag = secrets.token_hex(4)
        user = from_user or "anonymous"
        host = f"{self.box[0]}:{self.box[1]}"
        from_h = f'"Attack" <sip:{user}@{self.local_ip}:{self.port}>;tag={tag}'
        to_h = f"<sip:{service}@{host}>"
        branch = "z9hG4bK" + secrets.token_hex(6)
        via = f"SIP/2.0/UDP {self.local_ip}:{self.port};branch={branch};rport"
        body = self._sdp()
        invite = [
            f"INVITE sip:{service}@{host} SIP/2.0",
            f"Via: {via}",
            f"From: {from_h}",
            f"To: {to_h}",
            f"Call-ID: {call_id}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:attack@{self.local_ip}:{self.port}>",
            "Max-Forwards: 70",
        ]
        if pai:
            invite.append(f"P-Asserted-Identity: {pai}")
        invite += ["Content-Type: application/sdp", f"Content-Length: {len(body)}"]
        invite_text = "\r\n".join(invite) + "\r\n\r\n" + body
        self.send(invite_text)
        last_sent = time.monotonic()
        final: SipMessage | None = None
        deadline = time.monotonic() + 8.0
        provisional = False
        while final is None and time.monotonic() < deadline:
            msg = self.recv()
            if msg is None:
                if not provisional and time.monotonic() - last_sent > 0.5:
                    self.send(invite_text)  # retransmit until something comes back
                    last_sent = time.monotonic()
                continue
            if msg.h("call-id") != call_id:
                continue
            status = msg.status
            if status is not None and status < 200:
                provisional = True
            elif status is not None:
                final = msg
        if final is None:
            return report
        report.status = final.status
        to_tagged = final.h("to")
        if final.status != 200:
            self.send(
                "\r\n".join(
                    [
                        f"ACK sip:{service}@{host} SIP/2.0",
                        f"Via: {via}",
                        f"From: {from_h}",
                        f"To: {to_tagged}",
                        f"Call-ID: {call_id}",
                        "CSeq: 1 ACK",
                        "Max-Forwards: 70",
                        "Content-Length: 0",
                    ]
                )
                + "\r\n\r\n"
            )
            return report
        report.answered_at = time.monotonic()
        target = sdp_target(final.body)

        def request(method: str, cseq: int) -> str:
            return (
                "\r\n".join(
                    [
                        f"{method} sip:{service}@{host} SIP/2.0",
                        f"Via: SIP/2.0/UDP {self.local_ip}:{self.port};branch=z9hG4bK"
                        f"{secrets.token_hex(6)};rport",
                        f"From: {from_h}",
                        f"To: {to_tagged}",
                        f"Call-ID: {call_id}",
                        f"CSeq: {cseq} {method}",
                        "Max-Forwards: 70",
                        "Content-Length: 0",
                    ]
                )
                + "\r\n\r\n"
            )

        if ack:
            self.send(request("ACK", 1))
        media = _Media(self.rtp, target) if ack and target else None
        plan = sorted(keys)
        end_at = report.answered_at + hangup_after_s
        ended = False
        while time.monotonic() < end_at and not ended:
            now = time.monotonic() - report.answered_at
            while plan and plan[0][0] <= now and media is not None:
                media.queue_keys(plan.pop(0)[1])
            if media is not None:
                media.tick()
            msg = self.recv()
            if msg is None or msg.h("call-id") != call_id:
                continue
            if msg.method == "BYE":
                self._reply(msg, "200 OK")
                report.box_bye_at = time.monotonic()
                ended = True
            elif msg.method == "INVITE":  # the box's session refresh: same media
                self._reply(msg, "200 OK", self._sdp())
            elif msg.method in ("OPTIONS", "INFO", "UPDATE"):
                self._reply(msg, "200 OK")
            elif msg.status == 200 and not ack and "INVITE" in msg.h("cseq"):
                continue  # the box retransmits its 200: we never acknowledge it
        if not ended:
            self.send(request("BYE", 2))
            stop = time.monotonic() + 2.0
            while time.monotonic() < stop:
                msg = self.recv()
                if msg is not None and msg.h("call-id") == call_id and msg.status is not None:
                    break
        return report


class _Media:
    """RTP toward the box: 20 ms PCMU silence frames, RFC 4733 events for queued keys."""

    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        self.sock = sock
        self.target = (loopback(target[0]), target[1])
        self.seq = random.randrange(1 << 16)
        self.ts = random.randrange(1 << 32)
        self.ssrc = random.randrange(1 << 32)
        self.next_at = time.monotonic()
        self.keys: list[str] = []
        self.event: tuple[int, int] | None = None  # (event code, frames sent)
        self.gap = 0

    def queue_keys(self, keys: str) -> None:
        self.keys.extend(k for k in keys if k in _EVENTS)

    def _packet(self, pt: int, payload: bytes, marker: bool = False) -> None:
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | pt,
            self.seq & 0xFFFF,
            self.ts & 0xFFFFFFFF,
            self.ssrc,
        )
        self.sock.sendto(header + payload, self.target)
        self.seq += 1

    def tick(self) -> None:
        now = time.monotonic()
        while self.next_at <= now:
            self.next_at += 0.02
            self._frame()
        try:
            while self.sock.recv(2048):  # drain what the box sends
                pass
        except (BlockingIOError, OSError):
            pass

    def _frame(self) -> None:
        if self.event is None and self.keys and self.gap <= 0:
            self.event = (_EVENTS[self.keys.pop(0)], 0)
        if self.event is not None:
            code, sent = self.event
            frames = 9  # 180 ms key press
            duration = min(sent + 1, frames) * 160
            end = sent + 1 >= frames
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            repeats = 3 if end else 1
            for _ in range(repeats):
                self._packet(_PT_EVENT, payload, marker=sent == 0)
            if end:
                self.event = None
                self.ts += frames * 160
                self.gap = 4  # 80 ms between keys
            else:
                self.event = (code, sent + 1)
            return
        self.gap -= 1
        self._packet(_PT_PCMU, FRAME)
        self.ts += 160


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

MAX_CALLS = 500  # hard bound on any scenario's size
MAX_FUZZ = 5000


@dataclass
class Target:
    box: tuple[str, int]
    db_url: str
    code: str
    phone: str
    parallel: int

    def audit_since(self, since: str) -> Counter[str]:
        """Outcomes of the audit rows written since ``since`` (ISO time)."""
        from assistant.accounts.store import SqlAccountStore

        with SqlAccountStore(self.db_url) as store:
            rows = store.audit_rows(10_000)
        return Counter(r.outcome for r in rows if r.at >= since)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def conversation_keys(code: str) -> list[tuple[float, str]]:
    """Keys for one call: the code and # during the greeting, then 1 at the read-back."""
    after_code = 1.0 + 0.26 * (len(code) + 1)
    return [(1.0, code + "#"), (after_code + 2.5, "1")]


#: Seconds after the answer when an attack call hangs up: the lookup (and any reset) is done
#: by then; the box audits the call whichever prompt it was saying.
CALL_S = 1.0 + 0.26 * 11 + 2.5 + 5.0


def run_calls(
    target: Target, callers: Sequence[tuple[str, str]], *, pai: str | None = None
) -> list[CallReport]:
    """``(from number, code)`` calls, ``target.parallel`` at once from distinct 127.0.0.x."""

    def one(index: int, caller: tuple[str, str]) -> CallReport:
        number, code = caller
        local = f"127.0.0.{10 + index % max(1, target.parallel)}"
        with Uac(target.box, local) as uac:
            return uac.call(number, pai=pai, keys=conversation_keys(code), hangup_after_s=CALL_S)

    with ThreadPoolExecutor(max(1, target.parallel)) as pool:
        return list(pool.map(one, range(len(callers)), callers))


def scenario(name: str, target: Target, body: Callable[[], str]) -> None:
    since = now_iso()
    started = time.monotonic()
    detail = body()
    outcomes = target.audit_since(since)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "no audit rows"
    through = outcomes.get("password_issued", 0)
    print(
        f"{name:<13} {time.monotonic() - started:6.1f} s  passwords issued: {through:<3} "
        f"outcomes: {shown}{'; ' + detail if detail else ''}",
        flush=True,
    )


def stranger_numbers(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"03{rng.randrange(10**8):08d}" for _ in range(n)]


def wrong_codes(n: int, seed: int, right: str) -> list[str]:
    rng = random.Random(seed)
    codes: list[str] = []
    while len(codes) < n:
        code = f"{rng.randrange(10**10):010d}"
        if code != right:
            codes.append(code)
    return codes


def fuzzed_messages(
    n: int, seed: int, box: tuple[str, int], local_ip: str, port: int
) -> list[bytes]:
    """``n`` seeded mutations of a good INVITE (headers dropped, doubled, garbled, cut short,
    bodies broken, bytes flipped, oversize values, other methods)."""
    rng = random.Random(seed)
    host = f"{box[0]}:{box[1]}"
    out = []
    for k in range(n):
        call_id = f"fuzz{seed}-{k}@{local_ip}"
        headers = [
            f"Via: SIP/2.0/UDP {local_ip}:{port};branch=z9hG4bKfz{k}",
            f'From: "Fuzz" <sip:0300000{k % 1000:03d}@{local_ip}>;tag=f{k}',
            f"To: <sip:assistant@{host}>",
            f"Call-ID: {call_id}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:fuzz@{local_ip}:{port}>",
            "Max-Forwards: 70",
            "Content-Type: application/sdp",
        ]
        body = (
            f"v=0\r\no=f 1 1 IN IP4 {local_ip}\r\ns=-\r\nc=IN IP4 {local_ip}\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0\r\n"
        )
        start = f"INVITE sip:assistant@{host} SIP/2.0"
        kind = rng.randrange(10)
        if kind == 0 and len(headers) > 1:
            headers.pop(rng.randrange(len(headers)))
        elif kind == 1:
            i = rng.randrange(len(headers))
            name = headers[i].partition(": ")[0]
            junk = "".join(rng.choice('<>;"@:%x ') for _ in range(rng.randrange(1, 40)))
            headers[i] = f"{name}: {junk}"
        elif kind == 2:
            headers.append(f"Subject: {'A' * rng.randrange(3000, 9000)}")
        elif kind == 3:
            body = body.replace(
                "m=audio 4000", rng.choice(["m=audio 0", "m=video 4000", "m=audio x"])
            )
        elif kind == 4:
            body = rng.choice(["", "garbage\r\n", body.replace("c=IN IP4", "c=IN IP9")])
        elif kind == 5:
            start = rng.choice(
                [
                    "INVITE sip:assistant@" + host,
                    "INVITE  SIP/2.0",
                    "INVITE tel: SIP/2.0",
                    f"INVITE sip:assistant@{host} SIP/1.0",
                    "\x00\x01\x02",
                ]
            )
        elif kind == 6:
            headers[4] = rng.choice(["CSeq: x INVITE", "CSeq: 1 BYE", "CSeq: 99999999999 INVITE"])
        elif kind == 7:
            headers = [h for h in headers if not h.startswith("From")] + [
                rng.choice(["From: <sip:x@y>", 'From: "unterminated <sip:1@h>;tag=1', "From: "])
            ]
        text = (
            start
            + "\r\n"
            + "\r\n".join(headers)
            + f"\r\nContent-Length: {len(body)}\r\n\r\n"
            + body
        )
        data = bytearray(text.encode("utf-8", "replace"))
        if kind == 8:  # flip bytes
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 9:  # cut short
            data = data[: rng.randrange(1, len(data))]
        out.append(bytes(data))
    return out


def run_unacked(target: Target) -> str:
    """Four INVITEs never acknowledged (from 127.0.0.3), then a real caller from 127.0.0.1."""
    reports: list[CallReport] = []

    def hold(index: int) -> None:
        with Uac(target.box, "127.0.0.3") as uac:
            reports.append(uac.call(f"0300000{index:03d}", ack=False, hangup_after_s=12))

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    with Uac(target.box, "127.0.0.1") as uac:
        real = uac.call("0300000999", hangup_after_s=2)
    for thread in threads:
        thread.join()
    statuses = sorted(str(r.status) for r in reports)
    held = [r.held_s for r in reports if r.held_s is not None]
    longest = f"{max(held):.1f} s" if held else "n/a (no BYE seen)"
    return (
        f"unacknowledged INVITEs answered {statuses}, slots held at most {longest}; "
        f"a real caller right after: {real.status}"
    )


def run_fuzz(target: Target, count: int, seed: int) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.4", 0))
    sock.settimeout(0.02)
    port = sock.getsockname()[1]
    statuses: Counter[str] = Counter()
    answered: list[SipMessage] = []
    seen: set[str] = set()
    for data in fuzzed_messages(count, seed, target.box, "127.0.0.4", port):
        sock.sendto(data, target.box)
        try:
            while True:
                reply = parse(sock.recvfrom(65535)[0])
                if reply is None or reply.status is None or reply.status < 200:
                    continue
                call_id = reply.h("call-id")
                if call_id in seen:
                    continue  # a retransmission
                seen.add(call_id)
                statuses[str(reply.status)] += 1
                if reply.status == 200:
                    answered.append(reply)
        except (TimeoutError, OSError):
            pass
    for reply in answered:  # end what was answered: ACK, BYE
        for method, cseq in (("ACK", 1), ("BYE", 2)):
            sock.sendto(
                (
                    f"{method} sip:assistant@{target.box[0]}:{target.box[1]} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.4:{port};branch=z9hG4bK{secrets.token_hex(5)}\r\n"
                    f"From: {reply.h('from')}\r\nTo: {reply.h('to')}\r\n"
                    f"Call-ID: {reply.h('call-id')}\r\nCSeq: {cseq} {method}\r\n"
                    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                target.box,
            )
    sock.close()
    time.sleep(1.0)
    with Uac(target.box, "127.0.0.1") as uac:
        alive = uac.call("0300000998", hangup_after_s=1).status
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none"
    return (
        f"{count} fuzzed messages; final answers {shown}; answered (slot taken): "
        f"{statuses.get('200', 0)}; a real call afterwards: {alive}"
    )


SCENARIOS = ("spoofed-from", "brute-force", "spray", "resets", "unacked", "fuzz")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Attack a local box (127.0.0.1 only).")
    parser.add_argument("--box", default="127.0.0.1:5070", help="the box's SIP IP:PORT")
    parser.add_argument("--db", required=True, help="the box's database URL (read-only here)")
    parser.add_argument("--code", required=True, help="a registered code (a test account)")
    parser.add_argument("--phone", required=True, help="the phone registered to --code")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run these only")
    parser.add_argument("--brute-calls", type=int, default=100)
    parser.add_argument("--spray-numbers", type=int, default=50)
    parser.add_argument("--resets", type=int, default=20)
    parser.add_argument("--fuzz", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=4, help="calls at once (max 8)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    host, _, port = args.box.rpartition(":")
    target = Target(
        (loopback(host), int(port)), args.db, args.code, args.phone, min(8, max(1, args.parallel))
    )
    for name in ("brute_calls", "spray_numbers", "resets"):
        setattr(args, name, min(MAX_CALLS, max(0, getattr(args, name))))
    args.fuzz = min(MAX_FUZZ, max(0, args.fuzz))
    chosen = args.only or list(SCENARIOS)
    print(f"attacking {args.box}: {', '.join(chosen)}", flush=True)

    def calls(callers: list[tuple[str, str]], what: str) -> Callable[[], str]:
        def body() -> str:
            reports = run_calls(target, callers)
            answered = sum(r.status == 200 for r in reports)
            return f"{what}; {answered}/{len(reports)} calls answered"

        return body

    numbers = stranger_numbers(args.spray_numbers + 1, args.seed)
    plans: dict[str, Callable[[], str]] = {
        "spoofed-from": calls([(target.phone, target.code)], "From = the account's number"),
        "brute-force": calls(
            [(numbers[0], c) for c in wrong_codes(args.brute_calls, args.seed, target.code)],
            f"{args.brute_calls} wrong codes from one number",
        ),
        "spray": calls(
            [(n, target.code) for n in numbers[1:]], f"one code from {args.spray_numbers} numbers"
        ),
        "resets": calls(
            [(target.phone, target.code)] * args.resets, f"{args.resets} resets of one account"
        ),
        "unacked": lambda: run_unacked(target),
        "fuzz": lambda: run_fuzz(target, args.fuzz, args.seed),
    }
    for name in SCENARIOS:
        if name in chosen:
            scenario(name, target, plans[name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
