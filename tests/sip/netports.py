"""Free local ports for one test (127.0.0.1 only)."""

from __future__ import annotations

import random
import socket
import threading

HOST = "127.0.0.1"

#: Ranges already handed out in this process: RTP ports are bound only once a call starts,
#: so "free now" alone would let the box's and a caller's ranges overlap.
_handed_out: set[int] = set()
#: Callers are started from many threads at once (scripts/bench_calls.py): without this, two
#: of them could both find a port free and both take it, and one baresip then fails to start.
_lock = threading.Lock()


def free_port() -> int:
    """A port free now on both UDP and TCP, not handed out before in this process.

    Picked below the kernel's ephemeral range (and below the RTP ranges): a port the kernel
    handed out as ephemeral can be handed out again to any other socket before the test binds
    it ("Address already in use" on a port that was free a moment ago).
    """
    rng = random.SystemRandom()
    with _lock:
        for _ in range(200):
            port = rng.randrange(10000, 20000)
            if port in _handed_out:
                continue
            if _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM):
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port found on 127.0.0.1")


def free_port_range(count: int = 20) -> tuple[int, int]:
    """An even-aligned range of ``count`` UDP ports (RTP/RTCP pairs) free right now.

    Picked below the kernel's ephemeral range so that other sockets do not land in it.
    """
    rng = random.SystemRandom()
    with _lock:
        for _ in range(200):
            base = rng.randrange(20000, 32000 - count) & ~1
            ports = range(base, base + count)
            if _handed_out.isdisjoint(ports) and all(
                _bindable(p, socket.SOCK_DGRAM) for p in ports
            ):
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
