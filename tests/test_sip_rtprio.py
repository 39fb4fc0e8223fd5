"""The SIP stack's pacing threads moved to the real-time class (``sip.rtprio``).

The thread list and the policy change are fakes passed in: no privileges, no native threads."""

from __future__ import annotations

import errno
import logging
import os
import threading

import pytest

from assistant.core.errors import ConfigError
from assistant.telephony.sip.rtprio import MEDIA_THREAD_NAMES, MediaThreads, own_threads


class FakeKernel:
    def __init__(self, threads: list[tuple[int, str]], error: int = 0) -> None:
        self.threads = threads
        self.error = error  # the errno the kernel refuses with (0: it does not)
        self.gone: set[int] = set()
        self.calls: list[tuple[int, int]] = []

    def list(self) -> list[tuple[int, str]]:
        return list(self.threads)

    def promote(self, tid: int, priority: int) -> None:
        self.calls.append((tid, priority))
        if self.error:  # OSError(EPERM, ...) is a PermissionError
            raise OSError(self.error, os.strerror(self.error))
        if tid in self.gone:
            raise ProcessLookupError(3, "No such process")


CALL_THREADS = [(10, "python"), (11, "aumem_src"), (12, "Audio TX"), (13, "aumem_play")]


def test_only_the_pacing_threads_are_moved_and_each_once() -> None:
    kernel = FakeKernel(list(CALL_THREADS))
    media = MediaThreads(10, threads=kernel.list, promote=kernel.promote)
    assert media.promote() == 1
    assert kernel.calls == [(11, 10)]
    assert media.promote() == 0  # idempotent: the next call's scan leaves them alone
    kernel.threads += [(21, "aumem_src"), (22, "Audio TX"), (23, "call-sip-1")]
    assert media.promote() == 1
    assert sorted(tid for tid, _ in kernel.calls) == [11, 21]
    assert media.promoted == 2 and media.active


def test_a_reused_thread_id_is_moved_again() -> None:
    kernel = FakeKernel([(11, "aumem_src")])
    media = MediaThreads(5, threads=kernel.list, promote=kernel.promote)
    media.promote()
    kernel.threads = []  # the call ended
    media.promote()
    kernel.threads = [(11, "aumem_src")]  # the kernel gave its id to a new call's thread
    assert media.promote() == 1
    assert kernel.calls == [(11, 5), (11, 5)]


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (errno.EPERM, "LimitRTPRIO=10"),  # no CAP_SYS_NICE, no RLIMIT_RTPRIO
        (errno.EINVAL, "Invalid argument"),  # e.g. an RT cgroup without budget
    ],
)
def test_a_refusal_is_said_once_and_the_box_runs_on(
    caplog: pytest.LogCaptureFixture, error: int, said: str
) -> None:
    kernel = FakeKernel(list(CALL_THREADS), error=error)
    media = MediaThreads(10, threads=kernel.list, promote=kernel.promote)
    with caplog.at_level(logging.WARNING, logger="assistant.telephony.sip.rtprio"):
        assert media.promote() == 0
        assert media.promote() == 0
    assert not media.active
    assert media.refused is not None and said in media.refused
    assert len(kernel.calls) == 1  # not tried again for every call
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_thread_that_ended_while_looked_at_is_skipped() -> None:
    kernel = FakeKernel([*CALL_THREADS, (21, "aumem_src")])
    kernel.gone = {11}
    media = MediaThreads(10, threads=kernel.list, promote=kernel.promote)
    assert media.promote() == 1  # 21, and 11's end is no error
    assert media.active


def test_priority_zero_leaves_every_thread_alone() -> None:
    kernel = FakeKernel(list(CALL_THREADS))
    media = MediaThreads(0, threads=kernel.list, promote=kernel.promote)
    assert media.promote() == 0
    assert kernel.calls == [] and not media.active


@pytest.mark.parametrize("priority", [-1, 100])
def test_a_priority_outside_the_real_time_range_stops_the_box(priority: int) -> None:
    with pytest.raises(ConfigError) as err:
        MediaThreads(priority)
    assert err.value.code == "sip_config_invalid"


def test_the_name_is_the_stacks_own() -> None:
    # baresip-python's pacing thread; baresip's own "Audio TX" stays at normal priority (its
    # 250 wakes a second per call, in real time, cost the recogniser ~300 ms at 16 calls)
    assert {"aumem_src"} == MEDIA_THREAD_NAMES


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_own_threads_lists_this_process_by_name() -> None:
    started = threading.Event()
    stop = threading.Event()

    def idle() -> None:
        started.set()
        stop.wait(5)

    worker = threading.Thread(target=idle)
    worker.start()
    started.wait(5)
    try:
        tids = dict(own_threads())
        assert worker.native_id in tids
        assert threading.get_native_id() in tids
    finally:
        stop.set()
        worker.join()
