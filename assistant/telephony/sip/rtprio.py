"""The SIP stack's pacing thread in Linux's real-time class, so fewer RTP packets slip.

Two native threads per call carry the box's outgoing audio, and they hand it over on two
clocks of their own (baresip 4 inside baresip-python 0.5.2a3, pinned):

* ``aumem_src`` (baresip-python) reads 20 ms from the call's ring on absolute deadlines and
  writes it into the stack's transmit buffer;
* ``Audio TX`` (baresip) wakes every 4 ms and, at each 20 ms tick of its own, sends one packet
  if a whole frame is in that buffer and **sends nothing** if not.

Which of the two comes first at a tick is fixed when the call's audio starts, 0-4 ms apart.
When ``aumem_src`` writes later than that once, ``Audio TX`` finds the buffer short and skips its
tick: from then on every packet leaves one packet time (20 ms) later, with unbroken sequence
numbers (a *slip*; ``scripts/bench_calls.py`` counts them). The far end hears a 20 ms gap,
inside a prompt if one is playing.

:class:`MediaThreads` finds the ``aumem_src`` threads by name in ``/proc/self/task`` and moves
them to ``SCHED_FIFO`` at a low real-time priority (each runs for microseconds every 20 ms), so
a write waits for no ordinary thread. Measured (December 2026, a 2-core VM, ``bench_calls.py
--calls 16,16,16`` alternating with ``--media-priority 0``, nine levels of 16 calls each): 5
slips against 22, the replies and the box's CPU the same within the spread. ``Audio TX`` stays
at normal priority: in ``SCHED_FIFO`` too, its 250 wakes a second per call preempted the
recogniser so often that replies after a code came about 300 ms later at 16 calls (and a late
``Audio TX`` only sends late, it does not slip). The slips left come from stalls no priority
bounds on that machine's kernel (``CONFIG_PREEMPT_NONE``) and VM; see the README.

Real-time priority needs ``CAP_SYS_NICE`` or an ``RLIMIT_RTPRIO`` of at least the priority
(systemd: ``LimitRTPRIO=``, as in ``deploy/systemd/vssid-box.service``); without either the box
says so once and runs on at normal priority. Threads inherit the policy of their creator, and
these are created by the stack's own thread, so nothing else of the box becomes real-time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from assistant.core.errors import ConfigError

__all__ = ["DEFAULT_PRIORITY", "MEDIA_THREAD_NAMES", "MediaThreads", "own_threads"]

log = logging.getLogger(__name__)

#: The native threads moved (their names as the kernel shows them): baresip-python's pacing
#: thread only, not baresip's ``Audio TX`` (see above).
MEDIA_THREAD_NAMES = frozenset({"aumem_src"})
#: Low in the real-time range (1-99): above every normal thread, below the kernel's own.
DEFAULT_PRIORITY = 10
_TASKS = Path("/proc/self/task")

ThreadList = Callable[[], Iterable[tuple[int, str]]]
Promote = Callable[[int, int], None]


def own_threads() -> list[tuple[int, str]]:
    """``(tid, name)`` of this process's threads (Linux; none elsewhere)."""
    out: list[tuple[int, str]] = []
    try:
        entries = list(_TASKS.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            name = (entry / "comm").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:  # the thread ended while we looked
            continue
        if entry.name.isdigit():
            out.append((int(entry.name), name))
    return out


def _set_fifo(tid: int, priority: int) -> None:
    os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))


class MediaThreads:
    """Moves the stack's pacing threads (``aumem_src``) to ``SCHED_FIFO`` at ``priority``.

    Priority 0 leaves them alone.

    :meth:`promote` is cheap and idempotent: call it whenever a call's audio may have started
    new threads. The thread list and the call that changes a thread's policy are passed in, so
    tests run without privileges or native threads."""

    def __init__(
        self,
        priority: int = DEFAULT_PRIORITY,
        *,
        threads: ThreadList = own_threads,
        promote: Promote | None = None,
    ) -> None:
        if not 0 <= priority <= 99:
            raise ConfigError(
                f"media thread priority must be within 0-99 (0: off), got {priority}",
                code="sip_config_invalid",
            )
        self.priority = priority
        self._threads = threads
        if promote is None:
            promote = _set_fifo if hasattr(os, "sched_setscheduler") else None
        self._promote = promote
        self._done: set[int] = set()
        self._lock = threading.Lock()
        self.refused: str | None = None  # why the threads stay at normal priority, if they do
        if priority and self._promote is None:
            self.refused = "this system has no real-time scheduling class"
        self.promoted = 0  # threads moved so far

    @property
    def active(self) -> bool:
        return bool(self.priority) and self.refused is None

    def promote(self) -> int:
        """Move the pacing threads not moved yet; returns how many were moved now."""
        if not self.active:
            return 0
        assert self._promote is not None
        moved = 0
        with self._lock:
            present: set[int] = set()
            for tid, name in self._threads():
                present.add(tid)
                if name not in MEDIA_THREAD_NAMES or tid in self._done:
                    continue
                try:
                    self._promote(tid, self.priority)
                except ProcessLookupError:  # the thread ended (its call did)
                    continue
                except OSError as exc:  # never a reason to fail a call: say so, stop trying
                    if isinstance(exc, PermissionError):
                        self.refused = (
                            "not permitted (grant CAP_SYS_NICE or an RLIMIT_RTPRIO of at least "
                            f"{self.priority}: systemd LimitRTPRIO={self.priority})"
                        )
                    else:
                        self.refused = f"refused by the system ({exc.strerror or exc})"
                    log.warning(
                        "the stack's pacing threads stay at normal priority: %s; under load "
                        "their packets may slip by 20 ms",
                        self.refused,
                    )
                    return moved
                self._done.add(tid)
                moved += 1
            self._done &= present  # thread ids are reused: forget the ended ones
            if moved and not self.promoted:
                log.info(
                    "the stack's pacing threads run in SCHED_FIFO at priority %d", self.priority
                )
            self.promoted += moved
        return moved
