"""The dialog engine's vocabulary: events in, actions out, all plain data.

A dialog is a pure transition function ``step(state, event) -> (state, actions)``: no audio,
clock, database or I/O inside. A runtime (:mod:`assistant.call.runtime`) executes the actions and
turns what happens (caller speech, keys, silence, lookups) back into events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeVar

from assistant.core.ports import ListenMode, ListenSpec, Recognition

# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStarted:
    call_id: str
    caller: str | None  # None: withheld or missing number


@dataclass(frozen=True)
class Heard:
    """Caller speech as recognised (best hypothesis first, alternatives after)."""

    recognition: Recognition

    @staticmethod
    def text(text: str, *alternatives: str) -> Heard:
        return Heard(Recognition.of(text, *alternatives))


@dataclass(frozen=True)
class Keypad:
    """Keys pressed on the phone keypad (``0-9``, ``*``, ``#``); same meaning as spoken digits."""

    keys: str


@dataclass(frozen=True)
class NoInput:
    """The caller said nothing before the listening timeout."""


@dataclass(frozen=True)
class HungUp:
    """The caller hung up (or the line dropped)."""


@dataclass(frozen=True)
class LookupResult:
    """The store's answer to a lookup; ``throttled``: a limit across calls was reached, decided
    before any lookup (so it says nothing about the code)."""

    matched: bool
    throttled: bool = False


@dataclass(frozen=True)
class PasswordIssued:
    password: str = field(repr=False)


@dataclass(frozen=True)
class EngineFailed:
    """An engine failed mid-call (recogniser, voice, store, line): ``code`` is its stable code."""

    code: str


Event = (
    CallStarted | Heard | Keypad | NoInput | HungUp | LookupResult | PasswordIssued | EngineFailed
)

# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digits:
    """A digit string to be read aloud digit by digit, in ``groups`` (sizes) when given."""

    value: str = field(repr=False)
    groups: tuple[int, ...] = ()
    secret: bool = False  # passwords: never logged

    def __repr__(self) -> str:  # keep secrets and codes out of logs and test diffs by default
        shown = "***" if self.secret else self.value
        return f"Digits({shown!r}, groups={self.groups})"


PromptParam = str | int | Digits


@dataclass(frozen=True)
class Say:
    """Speak prompt ``prompt`` (an id in data/prompts.toml) with its parameters."""

    prompt: str
    params: Mapping[str, PromptParam] = field(default_factory=dict)


@dataclass(frozen=True)
class Listen:
    """Listen for the caller's next turn, heard as ``spec.mode`` says."""

    spec: ListenSpec

    @staticmethod
    def digits(expected: int | None = None) -> Listen:
        return Listen(ListenSpec(ListenMode.DIGITS, expected))

    @staticmethod
    def yesno() -> Listen:
        return Listen(ListenSpec(ListenMode.YESNO))


@dataclass(frozen=True)
class Lookup:
    """Check that ``code`` is registered to ``caller``. Answered by :class:`LookupResult`."""

    caller: str
    code: str = field(repr=False)


@dataclass(frozen=True)
class IssuePassword:
    """Issue a new password for the account. Answered by :class:`PasswordIssued` (or a
    :class:`LookupResult` with ``matched=False`` if the account changed meanwhile)."""

    caller: str
    code: str = field(repr=False)


class Outcome(StrEnum):
    PASSWORD_ISSUED = "password_issued"  # noqa: S105 (an outcome name, not a password)
    MISMATCH = "mismatch"
    NO_CALLER_ID = "no_caller_id"
    GAVE_UP = "gave_up"
    HUNG_UP = "hung_up"
    TECHNICAL_ERROR = (
        "technical_error"  # an engine failed mid-call (recogniser, voice, store, line)
    )
    THROTTLED = "throttled"  # a limit across calls (number, code, account) was reached


@dataclass(frozen=True)
class EndCall:
    """Hang up (if the line is still up) and close the call with ``outcome``."""

    outcome: Outcome


Action = Say | Listen | Lookup | IssuePassword | EndCall

# --------------------------------------------------------------------------------------------
# The dialog protocol
# --------------------------------------------------------------------------------------------

S = TypeVar("S")


class Dialog(Protocol[S]):
    """A conversation definition (see :mod:`dialogs`)."""

    def initial(self) -> S: ...

    def step(self, state: S, event: Event) -> tuple[S, tuple[Action, ...]]: ...

    def is_final(self, state: S) -> bool: ...
