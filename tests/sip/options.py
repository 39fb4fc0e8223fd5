"""A SIP OPTIONS keep-alive as a proxy sends it (Kamailio's dispatcher), over UDP 127.0.0.1."""

from __future__ import annotations

import secrets
import socket

from .netports import HOST


def options_status(target: str, *, timeout: float = 3.0, user: str = "assistant") -> int | None:
    """Send one OPTIONS to ``target`` ("127.0.0.1:PORT"); the reply's status code, or None
    when nothing answered within ``timeout``."""
    host, port_text = target.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        call_id = secrets.token_hex(8)
        request = (
            f"OPTIONS sip:{user}@{target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            f"From: <sip:keepalive@{HOST}:{local_port}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{user}@{target}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 10 OPTIONS\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode("ascii"), (host, int(port_text)))
        try:
            reply = sock.recv(65535).decode("utf-8", "replace")
        except TimeoutError:
            return None
    status = reply.split("\r\n", 1)[0].split()
    assert len(status) >= 2 and status[0] == "SIP/2.0", reply[:200]
    return int(status[1])
