"""Free local ports for one test (127.0.0.1 only)."""

from __future__ import annotations

import random
import socket

HOST = "127.0.0.1"

#: Ranges already handed out in this process: RTP ports are bound only once a call starts,
#: so "free now" alone would let the box's and a caller's ranges overlap.
_handed_out: set[int] = set()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port the kernel says is free now for ``kind`` (and, for SIP, also free on TCP)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM):
            return port
    raise RuntimeError("no free port found on 127.0.0.1")


def free_port_range(count: int = 20) -> tuple[int, int]:
    """An even-aligned range of ``count`` UDP ports (RTP/RTCP pairs) free right now.

    Picked below the kernel's ephemeral range so that other sockets do not land in it.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count) & ~1
        ports = range(base, base + count)
        if _handed_out.isdisjoint(ports) and all(_bindable(p, socket.SOCK_DGRAM) for p in ports):
            _handed_out.update(ports)
            return base, base + count - 1
    raise RuntimeError("no free RTP port range found on 127.0.0.1")


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True
