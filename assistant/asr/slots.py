"""Model runs at once across calls, the ones a caller is waiting for first.

The box runs one model for every call, at most as many runs at once as it has cores (more only
slow each other down and grow onnxruntime's arena). Most runs are streaming steps of callers who
are still speaking: their reading is not due until the caller stops, so such a step can wait a
few tens of milliseconds without anyone noticing. Two kinds of run are what a caller who has
stopped is waiting for: the flushed step whose reading may end the turn, and the final steps of
``end``. When 16 callers finish their codes in the same second, a first-come queue puts each of
those behind the streaming steps of everyone else; :class:`RunSlots` lets an urgent run take the
next free slot before any streaming one, and streaming runs keep their order among themselves.
Urgent runs are few (one or two per pause), so streaming runs are never held back for long. A
flushed step that is a long shot (a code two digits short, see
:meth:`~assistant.call.channels.live.GrammarJudge.flush_is_urgent`) is not urgent: put first, such
steps held up the streaming steps that the other callers' turns could end on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RunSlots"]


class RunSlots:
    """A counting semaphore of ``size`` slots with two classes of waiter: urgent ones first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size!r}")
        self.size = size
        self._lock = threading.Lock()
        self._urgent = threading.Condition(self._lock)
        self._normal = threading.Condition(self._lock)
        self._free = size
        self._urgent_waiting = 0
        self._normal_waiting = 0

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        """One slot for the duration of the block."""
        self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    def waiting(self) -> tuple[int, int]:
        """Runs waiting for a slot now: (urgent, streaming)."""
        with self._lock:
            return self._urgent_waiting, self._normal_waiting

    def _acquire(self, urgent: bool) -> None:
        with self._lock:
            try:
                if urgent:
                    self._urgent_waiting += 1
                    try:
                        while self._free == 0:
                            self._urgent.wait()
                    finally:
                        self._urgent_waiting -= 1
                else:
                    self._normal_waiting += 1
                    try:
                        while self._free == 0 or self._urgent_waiting:
                            self._normal.wait()
                    finally:
                        self._normal_waiting -= 1
                self._free -= 1
            finally:
                self._wake()  # a slot may still be free for the next in line

    def _release(self) -> None:
        with self._lock:
            if self._free >= self.size:
                raise RuntimeError("RunSlots released more often than held")
            self._free += 1
            self._wake()

    def _wake(self) -> None:
        if self._free == 0:
            return
        if self._urgent_waiting:
            self._urgent.notify()
        elif self._normal_waiting:
            self._normal.notify()
