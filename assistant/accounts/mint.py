"""Where new one-time passwords come from: made on demand, or hashed ahead of time.

A reset needs a fresh password and its slow scrypt hash (:mod:`assistant.accounts.passwords`).
Hashing on demand puts 0.3-1.5 s of scrypt between the caller's "đúng" and the first digit of
the password. Neither the password nor its hash depends on the account (a random password, a
random salt), so they can be made before anyone asks: :class:`CredentialPool` keeps a few
ready in a background thread at low CPU priority, and a reset takes one (or, when all are
taken, makes one on the spot, so a burst of resets is never refused).

Ready credentials live in this process's memory only: never written, logged or shown (their
``repr`` hides them), each handed out at most once, dropped at :meth:`CredentialPool.close`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from assistant.accounts.passwords import (
    DEFAULT_LENGTH,
    DEFAULT_PARAMS,
    ScryptParams,
    check_length,
    generate_password,
    hash_password,
)
from assistant.core.errors import ConfigError

__all__ = ["MAX_POOL", "Credential", "CredentialPool", "CredentialSource", "OnDemand"]

log = logging.getLogger("assistant.accounts")

#: Niceness of the pool's worker thread where the idle scheduling class is not available:
#: hashing ahead must not take CPU from live calls.
WORKER_NICENESS = 10
MAX_POOL = 256


@dataclass(frozen=True)
class Credential:
    """A new password and its scrypt hash (the only form that is stored)."""

    password: str = field(repr=False)
    hashed: str = field(repr=False)


class CredentialSource(Protocol):
    """Hands out fresh credentials, each at most once."""

    def take(self) -> Credential: ...

    def close(self) -> None: ...


class OnDemand:
    """Makes each credential when it is asked for (the slow hash on the caller's time)."""

    def __init__(self, length: int = DEFAULT_LENGTH, params: ScryptParams = DEFAULT_PARAMS):
        self.length = check_length(length)
        self.params = params

    def take(self) -> Credential:
        password = generate_password(self.length)
        return Credential(password, hash_password(password, self.params))

    def close(self) -> None:
        """Nothing is held."""


class CredentialPool:
    """Up to ``size`` credentials made ahead by one background thread; thread-safe.

    :meth:`take` returns a ready credential at once and wakes the worker to make another; with
    none ready it makes one in the caller's thread (counted in :attr:`misses`). The worker runs
    in Linux's idle scheduling class (``SCHED_IDLE``: it runs only on CPU time no call wants;
    elsewhere at niceness :data:`WORKER_NICENESS`) and only one hash at a time, so it costs one
    hash's memory. At niceness 10 it still took 0.16 of a core from 16 calls reading their
    codes at once (the box's own threads, measured in issue 11): a refill after every issued
    password, and the first fill after start-up, landed in the busiest seconds.
    """

    def __init__(
        self,
        size: int,
        length: int = DEFAULT_LENGTH,
        params: ScryptParams = DEFAULT_PARAMS,
        *,
        start: bool = True,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL:
            raise ConfigError(f"the ready-password pool must hold 1..{MAX_POOL}, not {size!r}")
        self.size = size
        self._make = OnDemand(length, params)
        self._ready: deque[Credential] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.misses = 0
        self.made = 0
        self._thread = threading.Thread(target=self._work, daemon=True, name="credential-pool")
        if start:
            self._thread.start()

    def __repr__(self) -> str:
        return f"<CredentialPool {len(self)}/{self.size} ready>"

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready)

    def take(self) -> Credential:
        with self._cond:
            if self._closed:
                raise ConfigError("the ready-password pool is closed")
            if self._ready:
                credential = self._ready.popleft()
                self._cond.notify_all()
                return credential
            self.misses += 1
        return self._make.take()

    def fill(self) -> None:
        """Make credentials in this thread until the pool is full (tests, and the worker)."""
        while True:
            with self._cond:
                if self._closed or len(self._ready) >= self.size:
                    return
            credential = self._make.take()
            with self._cond:
                if self._closed:
                    return
                self._ready.append(credential)
                self.made += 1
                self._cond.notify_all()

    def wait_full(self, timeout: float) -> bool:
        """Wait until the pool is full (start-up checks and tests); whether it is."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or len(self._ready) >= self.size, timeout
            )

    def close(self) -> None:
        """Drop every ready credential and stop the worker. Idempotent."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _work(self) -> None:
        _background_priority()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or len(self._ready) < self.size)
                if self._closed:
                    return
            try:
                self.fill()
            except Exception:  # a hash that fails here is made again on demand by take()
                log.exception("credential pool: hashing ahead failed; resets hash on demand")
                return


def _background_priority() -> None:
    """Put the calling thread in the idle scheduling class, or at least at lower priority."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        log.info("credential pool: no idle scheduling class (%s)", type(exc).__name__)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICENESS)
    except (AttributeError, OSError) as exc:  # not permitted: run as is
        log.info("credential pool runs at normal priority (%s)", type(exc).__name__)
