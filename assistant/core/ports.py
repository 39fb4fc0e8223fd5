"""Ports: the small interfaces between the box's logic and its engines.

Adapters (viet-asr, our ONNX decoder, Vosk, pyttsx3, sounddevice, baresip, SQLAlchemy) implement
these; fakes implementing them ship in the package (``assistant.testing.recognizer``,
``assistant.testing.audio``, ``assistant.testing.media``) and are passed in through constructors.
Nothing here imports an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

#: Mono signed 16-bit samples.
PCM = npt.NDArray[np.int16]


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono 16-bit audio at ``rate`` Hz."""

    samples: PCM
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.rate)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Audio)
            and self.rate == other.rate
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# Recognition
# --------------------------------------------------------------------------------------------


class ListenMode(StrEnum):
    """How a dialog state listens: the recogniser and the number reader both use it."""

    DIGITS = "digits"
    YESNO = "yesno"
    FREE = "free"


@dataclass(frozen=True)
class ListenSpec:
    """What the dialog expects at this turn.

    ``expected_digits`` is the number of digits still missing from the code (a prior for
    grammar-constrained decoders); ``None`` when unknown or not collecting digits.
    """

    mode: ListenMode
    expected_digits: int | None = None


@dataclass(frozen=True)
class Hypothesis:
    """One reading of an utterance.

    ``confidence`` is in [0, 1] when the engine gives one. ``word_confidences`` has one entry per
    whitespace-separated word of ``text`` when the engine gives them, else it is empty.
    """

    text: str
    confidence: float | None = None
    word_confidences: tuple[float, ...] = ()


@dataclass(frozen=True)
class Recognition:
    """What a recogniser heard in one utterance: hypotheses best first (empty: nothing)."""

    hypotheses: tuple[Hypothesis, ...] = ()

    @property
    def text(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""

    @staticmethod
    def of(text: str, *alternatives: str) -> Recognition:
        """Convenience for tests and typed input: a recognition with no scores."""
        return Recognition(tuple(Hypothesis(t) for t in (text, *alternatives)))


class RecognizerSession(Protocol):
    """One per call, over a model shared by all calls. One utterance at a time.

    ``begin`` starts an utterance heard the way ``spec`` says; ``feed`` takes audio at the
    recogniser's ``sample_rate`` and returns the current partial text; ``end`` finishes the
    utterance and returns everything heard since ``begin`` (nothing dropped at internal segment
    boundaries). Engine failures raise :class:`assistant.core.errors.RecognizerError`.
    """

    def begin(self, spec: ListenSpec) -> None: ...

    def feed(self, pcm: PCM) -> str: ...

    def end(self) -> Recognition: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PartialReading:
    """A cheap running reading of the utterance so far (best path, no search), for deciding
    when the caller's turn is over.

    ``text`` and ``word_confidences`` are as in :class:`Hypothesis` (here a word's peak
    posterior); ``heard_s`` is how many seconds of audio since ``begin`` the reading covers;
    ``trailing_blank_s`` is how much of the end of that the acoustic model heard as silence
    after the last word (CTC blank), 0 when a word is still going on or nothing was heard.
    """

    text: str = ""
    word_confidences: tuple[float, ...] = ()
    heard_s: float = 0.0
    trailing_blank_s: float = 0.0


@runtime_checkable
class ReadsPartially(Protocol):
    """A :class:`RecognizerSession` that can say what it has heard so far, cheaply.

    ``reading()`` uses only what the engine has already computed; ``reading(flush=True)`` also
    runs the audio it holds back for its next step (one extra model step at most), ahead of
    other calls' streaming steps unless ``urgent=False`` (a long shot that can wait its turn).
    """

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading: ...


def partial_reading(
    session: object, *, flush: bool = False, urgent: bool = True
) -> PartialReading | None:
    """The session's running reading, or ``None`` when its engine gives none (the default for
    engines without one: the endpointer then waits for the full silence)."""
    if isinstance(session, ReadsPartially):
        return session.reading(flush=flush, urgent=urgent)
    return None


@runtime_checkable
class HearsContext(Protocol):
    """A :class:`RecognizerSession` that can first hear the line's audio from before the turn
    as context only (the model's state; never words of the turn), right after ``begin``.
    Returns the seconds it used."""

    def context(self, pcm: PCM) -> float: ...


def hear_context(session: object, pcm: PCM) -> float:
    """Give the session the line's audio from before the turn as context, if its engine takes
    any (0.0 for the others: they hear the turn as before)."""
    if isinstance(session, HearsContext) and len(pcm):
        return session.context(pcm)
    return 0.0


class Recognizer(Protocol):
    """A loaded model. Thread-safe ``open_session``; sessions are used by one thread each."""

    name: str
    sample_rate: int

    def open_session(self) -> RecognizerSession: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------


class Synthesizer(Protocol):
    """Text to audio, in memory, no sound device. Raises SynthesizerError on failure."""

    name: str

    def synthesize(self, text: str) -> Audio: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Call media (phone line, sound card, files)
# --------------------------------------------------------------------------------------------


class CallerSource(StrEnum):
    """Where the caller number came from (recorded in the audit trail)."""

    PAI = "p-asserted-identity"  # from a trusted peer
    FROM = "from-header"  # a claim only
    CLI = "command-line"  # typed by a developer or tester
    NONE = "none"


class PeerClass(StrEnum):
    """Where the call came from, as far as trust goes (recorded in the audit trail)."""

    TRUSTED = "trusted"  # a trusted peer's address (a trunk)
    UNTRUSTED = "untrusted"  # any other network address, or one that could not be told
    LOCAL = "local"  # not a network call: the command line, a replay, the microphone


@dataclass(frozen=True)
class CallerId:
    number: str | None
    source: CallerSource = CallerSource.CLI
    peer: PeerClass = PeerClass.LOCAL


@dataclass(frozen=True, eq=False)
class AudioFrame:
    """Caller audio at the media's ``sample_rate``."""

    samples: PCM


@dataclass(frozen=True)
class DtmfDigit:
    """A keypad press: one of ``0123456789*#``."""

    digit: str


@dataclass(frozen=True)
class RemoteHangup:
    reason: str = ""


MediaEvent = AudioFrame | DtmfDigit | RemoteHangup


class CallMedia(Protocol):
    """The media side of one live call, used from one thread.

    ``receive`` blocks for at most ``timeout`` seconds and returns the next event, or ``None``
    when nothing arrived. Real-time transports deliver audio frames continuously (silence
    included), so time can be counted in samples. ``play`` queues audio for the caller;
    ``queued_seconds`` says how much of it is not yet sent; ``flush`` drops it (barge-in).
    """

    call_id: str
    caller: CallerId
    sample_rate: int

    def receive(self, timeout: float) -> MediaEvent | None: ...

    def play(self, pcm: PCM) -> None: ...

    def queued_seconds(self) -> float: ...

    def flush(self) -> None: ...

    def hangup(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """What an audit row holds: masked values only."""

    call_id: str
    caller_masked: str
    code_masked: str
    outcome: str
    caller_source: str = CallerSource.NONE.value
    at: str = ""  # ISO-8601 UTC, filled in by the store
    peer_class: str = PeerClass.LOCAL.value


class LookupVerdict(StrEnum):
    """What a lookup with limits answers (the dialog hears the same words for an unknown code
    and for a known code from another number; THROTTLED is decided before any lookup)."""

    MATCH = "match"
    MISMATCH = "mismatch"
    THROTTLED = "throttled"


class AccountStore(Protocol):
    """Accounts and audit trail. Raises :class:`assistant.core.errors.StoreError`.

    ``matches`` answers whether ``code`` is registered to ``phone`` (any accepted phone spelling),
    doing the same work whether the code exists or not; it writes nothing. ``lookup`` is the
    call's lookup: it first counts the attempt against the limits that span calls (per number,
    per code, per account) and answers THROTTLED, without looking, when one is reached.
    ``reset_password`` generates a new password, stores only its slow salted hash as a
    one-time credential (the old password keeps working until the new one is first used or
    expires), writes the ``password_issued`` audit row in the same transaction and returns the
    clear password; it returns ``None`` and changes nothing if the pair does not match (any
    more), and raises :class:`~assistant.core.errors.ThrottledError` when the account or
    number has had its passwords for the window. ``record`` writes the audit row of a call
    that ends without a reset (never losing it: a row it cannot write now is written later).
    ``health`` checks the database answers (and says what it is, nothing secret).
    """

    def matches(self, phone: str, code: str) -> bool: ...

    def lookup(self, phone: str, code: str) -> LookupVerdict: ...

    def reset_password(
        self,
        phone: str,
        code: str,
        *,
        call_id: str,
        caller_source: str,
        peer_class: str = PeerClass.LOCAL.value,
    ) -> str | None: ...

    def record(
        self,
        *,
        call_id: str,
        phone: str | None,
        code: str | None,
        outcome: str,
        caller_source: str,
        peer_class: str = PeerClass.LOCAL.value,
    ) -> None: ...

    def health(self) -> dict[str, object]: ...
