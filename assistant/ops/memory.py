"""Keep a many-threaded box from growing: cap glibc's malloc arenas.

glibc gives threads their own malloc arenas, up to eight per core, and hands freed memory back
to the system from none of them but the main one. The box runs a thread per call, so calls that
come and go leave partly used arenas behind. Measured here (December 2026, ``bench_calls.py
--calls 8,8,8,8,8,8,8,8,8,8``: 80 calls, 8 at a time): the box's RSS grew from 386 to 416 MB and
was still growing; with two arenas it stayed at 350-360 MB over the same 80 calls, with the same
reply latency. The cap is ``mallopt(M_ARENA_MAX, n)``, glibc's own setting (the same as the
``MALLOC_ARENA_MAX`` environment variable, which the operator may set instead: it wins).

Loading leaves freed memory behind too: the model's bytes, onnxruntime's parse of the graph and
the prompts' renderings are freed once the box is ready, but glibc keeps most of the freed heap
for later. :func:`release_free_memory` (glibc's ``malloc_trim(0)``) hands it back once, before
the first call: 30-35 MB with the recogniser loaded (measured here, December 2026).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

__all__ = ["ARENAS", "M_ARENA_MAX", "limit_malloc_arenas", "release_free_memory"]

log = logging.getLogger(__name__)

#: Arenas the box keeps: one per core of a 2-core box.
ARENAS = 2
#: glibc's ``mallopt`` parameter number for the arena cap (malloc.h).
M_ARENA_MAX = -8


def _glibc(function: str) -> Any | None:
    """A function of glibc (``None`` off Linux, or on a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)  # musl and other libcs lack these
    except (OSError, AttributeError):
        return None


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return cast("Callable[[int, int], int]", mallopt)


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    trim = _glibc("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast("Callable[[int], int]", trim)


def limit_malloc_arenas(
    arenas: int = ARENAS,
    *,
    environ: Mapping[str, str] | None = None,
    mallopt: Callable[[int, int], int] | None = None,
) -> bool:
    """Cap malloc arenas at ``arenas``; call it before the box starts its threads.

    Returns whether the cap was set: not when ``MALLOC_ARENA_MAX`` is set (glibc already read
    it), not on a C library without ``mallopt``, not when ``mallopt`` refuses.
    """
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1, got {arenas!r}")
    env = os.environ if environ is None else environ
    if env.get("MALLOC_ARENA_MAX"):
        log.info("malloc arenas: MALLOC_ARENA_MAX=%s, as set", env["MALLOC_ARENA_MAX"])
        return False
    call = mallopt if mallopt is not None else _glibc_mallopt()
    if call is None:
        log.info("malloc arenas: not glibc, left as they are")
        return False
    if call(M_ARENA_MAX, arenas) != 1:  # mallopt returns 1 on success
        log.warning("malloc arenas: mallopt(M_ARENA_MAX, %d) refused", arenas)
        return False
    log.info("malloc arenas capped at %d", arenas)
    return True


def release_free_memory(trim: Callable[[int], int] | None = None) -> bool:
    """Hand the heap memory freed so far back to the system (glibc ``malloc_trim(0)``); call
    it once loading is over. Returns whether anything was handed back; off glibc, nothing."""
    call = trim if trim is not None else _glibc_malloc_trim()
    if call is None:
        log.info("free memory: not glibc, left as it is")
        return False
    return bool(call(0))  # 1: memory was released, 0: there was none to release
