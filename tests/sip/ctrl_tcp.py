"""A client for baresip's ctrl_tcp module: netstring-framed JSON over TCP.

Framing: ``<length>:<json>,``. Commands are ``{"command": ..., "params": ..., "token": ...}``;
baresip answers ``{"response": true, "ok": ..., "data": ..., "token": ...}`` and pushes
events ``{"event": true, "type": "CALL_ESTABLISHED", ...}`` at any time. A reader thread
sorts the two into queues.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
import time
from typing import Any


class CtrlTcpError(RuntimeError):
    pass


def encode_netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringReader:
    """Incremental netstring decoder."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                break
            head = self._buf[:colon]
            if not head.isdigit():
                raise CtrlTcpError(f"bad netstring length {head[:20]!r}")
            length = int(head)
            end = colon + 1 + length
            if len(self._buf) < end + 1:
                break
            if self._buf[end : end + 1] != b",":
                raise CtrlTcpError("netstring not terminated by ','")
            out.append(self._buf[colon + 1 : end])
            self._buf = self._buf[end + 1 :]
        return out


class CtrlTcp:
    """One connection to baresip's ctrl_tcp listener."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.settimeout(None)
        self._responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.event_log: list[dict[str, Any]] = []
        self._tokens = itertools.count(1)
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"ctrl_tcp-{port}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        decoder = NetstringReader()
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.events.put({"event": True, "type": "CTRL_DISCONNECTED"})
                return
            for item in decoder.feed(data):
                msg = json.loads(item.decode("utf-8", "replace"))
                if msg.get("event"):
                    self.event_log.append(msg)
                    self.events.put(msg)
                elif msg.get("response"):
                    self._responses.put(msg)

    def command(self, command: str, params: str = "", *, timeout: float = 5.0) -> dict[str, Any]:
        """Send one command and wait for its response (matched by token)."""
        token = f"t{next(self._tokens)}"
        payload = json.dumps({"command": command, "params": params, "token": token}).encode()
        with self._send_lock:
            self._sock.sendall(encode_netstring(payload))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CtrlTcpError(f"no response to {command!r} within {timeout} s")
            try:
                msg = self._responses.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg.get("token") == token:
                return msg

    def wait_event(self, *types: str, timeout: float) -> dict[str, Any]:
        """The next event whose type is one of ``types`` (others are skipped, kept in log)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CtrlTcpError(f"no {'/'.join(types)} event within {timeout} s")
            try:
                msg = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg.get("type") in types:
                return msg
            if msg.get("type") == "CTRL_DISCONNECTED":
                raise CtrlTcpError(f"baresip went away while waiting for {'/'.join(types)}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
