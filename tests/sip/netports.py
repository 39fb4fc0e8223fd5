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
    """A port free now on both UDP and TCP, with the port after it, neither handed out before
    in this process: baresip's SIP/TLS transport listens on the SIP port + 1 (two bench runs
    failed at a softphone's start with "SIP/TLS transport failed: Address already in use").

    Picked below the kernel's ephemeral range (and below the RTP ranges): a port the kernel
    handed out as ephemeral can be handed out again to any other socket before the test binds
    it ("Address already in use" on a port that was free a moment ago).
    """
    rng = random.SystemRandom()
    with _lock:
        for _ in range(200):
            port = rng.randrange(10000, 20000)
            pair = (port, port + 1)
            if not _handed_out.isdisjoint(pair):
                continue
            if all(
                _bindable(p, socket.SOCK_STREAM) and _bindable(p, socket.SOCK_DGRAM) for p in pair
            ):
                _handed_out.update(pair)
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
