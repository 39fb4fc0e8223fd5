"""Model runs at once across calls: never more than the slots, urgent runs first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from assistant.asr.slots import RunSlots


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for another thread to reach a state (bounded; the test fails if it never does)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the other thread never got there"
        time.sleep(0.001)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RunSlots(0)


def test_never_more_runs_at_once_than_slots() -> None:
    slots = RunSlots(2)
    inside = 0
    most = 0
    lock = threading.Lock()
    start = threading.Barrier(8)

    def run(urgent: bool) -> None:
        nonlocal inside, most
        start.wait()
        for _ in range(50):
            with slots.hold(urgent=urgent):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=run, args=(i % 3 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 2
    assert slots.waiting() == (0, 0)


def test_an_urgent_run_takes_the_next_slot_before_queued_streaming_ones() -> None:
    slots = RunSlots(1)
    order: list[str] = []
    held = slots.hold()
    held.__enter__()  # the one slot is busy

    def run(name: str, urgent: bool) -> None:
        with slots.hold(urgent=urgent):
            order.append(name)

    first = threading.Thread(target=run, args=("streaming 1", False))
    first.start()
    until(lambda: slots.waiting() == (0, 1))
    second = threading.Thread(target=run, args=("streaming 2", False))
    second.start()
    until(lambda: slots.waiting() == (0, 2))
    urgent = threading.Thread(target=run, args=("urgent", True))
    urgent.start()
    until(lambda: slots.waiting() == (1, 2))
    held.__exit__(None, None, None)
    for t in (first, second, urgent):
        t.join(10)
    assert order[0] == "urgent"
    assert sorted(order[1:]) == ["streaming 1", "streaming 2"]
    assert slots.waiting() == (0, 0)


def test_a_free_slot_is_taken_at_once_whatever_the_class() -> None:
    slots = RunSlots(2)
    with slots.hold(), slots.hold(urgent=True):
        assert slots.waiting() == (0, 0)


def test_releasing_more_than_held_is_an_error() -> None:
    slots = RunSlots(1)
    with pytest.raises(RuntimeError, match="more often"):
        slots._release()
