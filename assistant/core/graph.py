"""Explore a dialog's state graph by feeding it a set of sample events.

Used by the graph test (unreachable phases, trap states, unhandled events) and by
``scripts/render_dialog_graph.py`` (a Mermaid diagram for the docs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.core.dialog import Action, Dialog, EndCall, Event, IssuePassword, Listen, Lookup


@dataclass
class Graph:
    initial: Hashable
    states: set[Hashable] = field(default_factory=set)
    edges: list[tuple[Hashable, str, Hashable, tuple[Action, ...]]] = field(default_factory=list)
    truncated: bool = False


def explore(
    dialog: Dialog[Any],
    events: Sequence[tuple[str, Event]],
    *,
    canonical: Callable[[Any], Any] | None = None,
    max_states: int = 50_000,
) -> Graph:
    """Breadth-first over every state reachable from ``dialog.initial()`` with ``events``.

    ``canonical`` maps a state to a representative of the states that behave the same (e.g.
    the same number of digits collected, whatever the digits), keeping the graph finite."""
    canon = canonical or (lambda s: s)
    start = canon(dialog.initial())
    graph = Graph(initial=start, states={start})
    queue: deque[Any] = deque([start])
    while queue:
        state = queue.popleft()
        if dialog.is_final(state):
            continue
        for label, event in events:
            new, actions = dialog.step(state, event)
            new = canon(new)
            graph.edges.append((state, label, new, actions))
            if new not in graph.states:
                if len(graph.states) >= max_states:
                    graph.truncated = True
                    continue
                graph.states.add(new)
                queue.append(new)
    return graph


def reaches_final(dialog: Dialog[Any], graph: Graph, *, skip_labels: set[str]) -> set[Hashable]:
    """States from which a final state is reachable without the ``skip_labels`` events."""
    reverse: dict[Hashable, set[Hashable]] = {}
    for src, label, dst, _ in graph.edges:
        if label not in skip_labels:
            reverse.setdefault(dst, set()).add(src)
    good = {s for s in graph.states if dialog.is_final(s)}
    queue = deque(good)
    while queue:
        s = queue.popleft()
        for prev in reverse.get(s, ()):
            if prev not in good:
                good.add(prev)
                queue.append(prev)
    return good


def stalls(dialog: Dialog[Any], graph: Graph) -> list[tuple[Hashable, str]]:
    """Transitions into a changed, non-final state whose actions give the runtime nothing to
    wait for (no Listen, Lookup or IssuePassword last): the call would hang there."""
    bad = []
    waits = (Listen, Lookup, IssuePassword)
    for src, label, dst, actions in graph.edges:
        if dst == src or dialog.is_final(dst):
            if (
                dialog.is_final(dst)
                and src != dst
                and not any(isinstance(a, EndCall) for a in actions)
            ):
                bad.append((src, label))
            continue
        if not actions or not isinstance(actions[-1], waits):
            bad.append((src, label))
    return bad


def mermaid(graph: Graph, phase_of: Any) -> str:
    """A Mermaid state diagram over phases, edges labelled with the events that move."""
    labels: dict[tuple[str, str], set[str]] = {}
    for src, label, dst, _ in graph.edges:
        a, b = phase_of(src), phase_of(dst)
        if a == b and src == dst:
            continue
        labels.setdefault((a, b), set()).add(label)
    lines = ["stateDiagram-v2", f"    [*] --> {phase_of(graph.initial)}"]
    for (a, b), names in sorted(labels.items()):
        lines.append(f"    {a} --> {b}: {', '.join(sorted(names))}")
    lines.append("    done --> [*]")
    return "\n".join(lines) + "\n"
