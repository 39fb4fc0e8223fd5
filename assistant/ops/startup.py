"""Where the box's start-up time goes: one log line once it is ready to answer.

The box should answer within 3 s of its start (issue 11). A start is the interpreter and the
imports, the account store, the engines (the acoustic model, the voice), the fixed prompts and
the SIP stack; when one of them is slow (a first start after the page cache was emptied took
5 s once, every other start 1.2-1.9 s), the operator's log says which.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["StartupClock", "process_age_s"]


def process_age_s(
    stat: Path = Path("/proc/self/stat"), uptime: Path = Path("/proc/uptime")
) -> float | None:
    """Seconds since this process started (Linux: its start time in clock ticks after boot
    against the system's uptime), or ``None`` where that cannot be read."""
    try:
        fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of proc_pid_stat(5)
        now = float(uptime.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, now - started)


class StartupClock:
    """Marks the end of each start-up stage; :meth:`summary` says how long each took."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        age: Callable[[], float | None] = process_age_s,
    ) -> None:
        self._clock = clock
        self._started = clock()
        #: seconds between the process's start and this clock's (the interpreter, the imports)
        self.before_s = age()
        self._stages: list[tuple[str, float]] = []
        self._last = self._started

    def mark(self, stage: str) -> None:
        """``stage`` has just finished."""
        now = self._clock()
        self._stages.append((stage, now - self._last))
        self._last = now

    def total_s(self) -> float:
        """Seconds from the process's start (or this clock's, when unknown) to the last mark."""
        return (self.before_s or 0.0) + (self._last - self._started)

    def summary(self) -> str:
        parts = [f"{name} {seconds:.2f} s" for name, seconds in self._stages]
        if self.before_s is not None:
            parts.insert(0, f"interpreter and imports {self.before_s:.2f} s")
            head = f"ready {self.total_s():.2f} s after the process started"
        else:
            head = f"ready {self.total_s():.2f} s after start-up began"
        return f"{head}: " + ", ".join(parts)
