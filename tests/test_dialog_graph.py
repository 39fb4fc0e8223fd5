"""Walk the reset dialog's graph: no unreachable phase, no trap state, no unhandled event."""

from __future__ import annotations

import typing

import pytest

from assistant.core import dialog as d
from assistant.core.graph import explore, reaches_final, stalls
from assistant.language.numbers import NumberReader
from dialogs.reset import TABLE_KEYS, Phase, ResetDialog, table_key
from dialogs.reset_samples import canonical_state, sample_events


@pytest.fixture(scope="module")
def dialog() -> ResetDialog:
    return ResetDialog(NumberReader.load())


@pytest.fixture(scope="module")
def graph(dialog: ResetDialog):  # type: ignore[no-untyped-def]
    g = explore(dialog, sample_events(), canonical=canonical_state)
    assert not g.truncated
    return g


def test_every_phase_handles_every_event_type(dialog: ResetDialog) -> None:
    # Heard and Keypad reach the table as one TurnReading; every other event type as itself.
    columns = {table_key(t) for t in typing.get_args(d.Event)}
    assert columns == set(TABLE_KEYS)
    assert set(dialog.table) == set(Phase)
    for phase, handlers in dialog.table.items():
        assert set(handlers) == columns, f"{phase} does not name a handler for every event"


def test_sample_events_cover_every_event_type() -> None:
    assert {type(e) for _, e in sample_events()} == set(typing.get_args(d.Event))


def test_every_phase_is_reachable(graph) -> None:  # type: ignore[no-untyped-def]
    assert {s.phase for s in graph.states} == set(Phase)


def test_no_trap_states(dialog: ResetDialog, graph) -> None:  # type: ignore[no-untyped-def]
    # From every reachable state the call can end without the caller hanging up.
    good = reaches_final(dialog, graph, skip_labels={"hang-up"})
    traps = [s for s in graph.states if s not in good]
    assert not traps, traps[:3]


def test_no_stalls(dialog: ResetDialog, graph) -> None:  # type: ignore[no-untyped-def]
    assert stalls(dialog, graph) == []


def test_every_outcome_is_reachable(graph) -> None:  # type: ignore[no-untyped-def]
    assert {s.outcome for s in graph.states if s.phase is Phase.DONE} == set(d.Outcome)


def test_lookups_only_follow_a_confirmation(dialog: ResetDialog, graph) -> None:  # type: ignore[no-untyped-def]
    for src, label, _dst, actions in graph.edges:
        for action in actions:
            if isinstance(action, d.Lookup):
                assert src.phase is Phase.CONFIRM and label in {"yes", "key 1"}
                assert action.code == src.candidate
