"""The malloc arena cap of the SIP box (assistant.ops.memory)."""

from __future__ import annotations

import sys

import pytest

from assistant.ops.memory import ARENAS, M_ARENA_MAX, limit_malloc_arenas


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
