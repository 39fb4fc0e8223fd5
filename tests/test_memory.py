"""The malloc arena cap of the SIP box (assistant.ops.memory)."""

from __future__ import annotations

import sys

import pytest

from assistant.ops.memory import ARENAS, M_ARENA_MAX, limit_malloc_arenas, release_free_memory


class RecordingMallopt:
    def __init__(self, result: int = 1) -> None:
        self.result = result
        self.calls: list[tuple[int, int]] = []

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


def test_the_cap_is_set_through_mallopt() -> None:
    mallopt = RecordingMallopt()
    assert limit_malloc_arenas(environ={}, mallopt=mallopt)
    assert mallopt.calls == [(M_ARENA_MAX, ARENAS)]


def test_the_operators_own_setting_wins() -> None:
    mallopt = RecordingMallopt()
    assert not limit_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"}, mallopt=mallopt)
    assert mallopt.calls == []


def test_a_refused_cap_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    assert not limit_malloc_arenas(3, environ={}, mallopt=RecordingMallopt(result=0))
    assert "refused" in caplog.text


def test_an_absurd_cap_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0, environ={}, mallopt=RecordingMallopt())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_glibc_takes_the_cap() -> None:
    # this very process: the cap only limits arenas not yet created, so it is safe here
    assert limit_malloc_arenas(8, environ={})


def test_free_memory_is_released_through_malloc_trim() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    assert release_free_memory(trim) is True
    assert calls == [0]  # keep no padding at the top of the heap
    assert release_free_memory(lambda pad: 0) is False  # nothing to release


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_hands_freed_heap_memory_back() -> None:
    # 128 MB in blocks below glibc's mmap threshold, so they live on the heap; the last one
    # stays, so the freed memory is below the top of the heap, as a box's is after loading
    blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(2000)]
    del blocks[:-1]
    before = _rss_mb()
    assert release_free_memory() is True
    assert before - _rss_mb() >= 64, (before, _rss_mb())
