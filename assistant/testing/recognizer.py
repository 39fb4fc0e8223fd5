"""A scripted recogniser for tests: the runtime without a speech model.

``FakeRecognizer(script)`` answers each utterance (``begin`` ... ``end``) with the next item of
``script``, shared by all its sessions in the order the utterances end:

* a ``str``: one hypothesis with that text (``""``: nothing heard);
* a :class:`Recognition`: returned as it is (N-best lists, confidences);
* an :class:`~assistant.core.errors.RecognizerError`: raised by ``end`` (engine failures);

or ``script`` is a callable taking the utterance's audio (an :class:`Audio` at the recogniser's
rate) and returning a ``str`` or a :class:`Recognition`.

Everything the fake is given is kept for assertions: :attr:`FakeRecognizer.specs` (every
:class:`ListenSpec` passed to ``begin``, in order) and :attr:`FakeRecognizer.utterances` (the
audio of every finished utterance). Misuse (``feed`` before ``begin``, a closed session,
non-int16 audio) raises :class:`RecognizerError` as the real adapters do; running out of script
raises :class:`FakeScriptExhausted`, an ``AssertionError`` so a runtime catching recogniser
errors cannot hide a test's mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from assistant.asr.session import SessionGuard
from assistant.core.errors import RecognizerError
from assistant.core.ports import PCM, Audio, ListenSpec, PartialReading, Recognition

ScriptItem = str | Recognition | RecognizerError
Script = Iterable[ScriptItem] | Callable[[Audio], str | Recognition]
#: |sample| at or below this is silence for the fake's running reading.
QUIET_SAMPLE = 64


def trailing_quiet_s(audio: Audio) -> float | None:
    """Seconds of silence after the last sound in ``audio``; ``None`` when all is silent."""
    loud = np.flatnonzero(np.abs(audio.samples.astype(np.int32)) > QUIET_SAMPLE)
    if not len(loud):
        return None
    return (len(audio.samples) - int(loud[-1]) - 1) / audio.rate


class FakeScriptExhausted(AssertionError):
    """More utterances ended than the script has answers for."""


def _recognition(item: str | Recognition) -> Recognition:
    if isinstance(item, Recognition):
        return item
    return Recognition.of(item) if item.strip() else Recognition()


@dataclass(frozen=True)
class Utterance:
    """One finished utterance as the fake saw it."""

    spec: ListenSpec
    audio: Audio
    feeds: int


class FakeRecognizer:
    """A :class:`~assistant.core.ports.Recognizer` that answers from a script."""

    def __init__(
        self,
        script: Script = (),
        *,
        sample_rate: int = 16000,
        name: str = "fake",
        partials: bool = False,
        reading: Callable[[Audio], PartialReading] | None = None,
    ) -> None:
        """``partials``: ``feed`` returns the text of the answer about to be given (once some
        audio came in) instead of ``""``; only for scripted lists of answers. ``reading``:
        what a session's running reading makes of the utterance's audio so far (default: the
        next scripted answer once some sound came in, see :meth:`FakeSession.reading`)."""
        self.name = name
        self.reading = reading
        self.readings = 0  # running readings asked for
        self.flushed_readings = 0
        self.sample_rate = sample_rate
        self.partials = partials
        self._answer: Callable[[Audio], str | Recognition] | None
        self._queue: list[ScriptItem]
        if callable(script):
            self._answer, self._queue = script, []
        else:
            self._answer, self._queue = None, list(script)
        self.specs: list[ListenSpec] = []
        self.utterances: list[Utterance] = []
        self.sessions: list[FakeSession] = []
        self.closed = False

    @property
    def remaining(self) -> int:
        """Scripted answers not used yet (0 for a callable script)."""
        return len(self._queue)

    def open_session(self) -> FakeSession:
        if self.closed:
            raise RecognizerError("the fake recogniser is closed", code="asr_decode_failed")
        session = FakeSession(self)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        self.closed = True

    def peek(self) -> str:
        """The text of the next scripted answer ("" when none or not text)."""
        if self._answer is not None or not self._queue:
            return ""
        item = self._queue[0]
        return "" if isinstance(item, RecognizerError) else _recognition(item).text

    def peek_recognition(self) -> Recognition:
        """The next scripted answer as a recognition (empty when none or not a recognition)."""
        if self._answer is not None or not self._queue:
            return Recognition()
        item = self._queue[0]
        return Recognition() if isinstance(item, RecognizerError) else _recognition(item)

    def answer(self, audio: Audio) -> Recognition:
        if self._answer is not None:
            return _recognition(self._answer(audio))
        if not self._queue:
            raise FakeScriptExhausted(
                f"FakeRecognizer script exhausted after {len(self.utterances)} utterance(s)"
            )
        item = self._queue.pop(0)
        if isinstance(item, RecognizerError):
            raise item
        return _recognition(item)

    def __repr__(self) -> str:
        return f"<FakeRecognizer {self.name} {self.sample_rate} Hz, {self.remaining} left>"


class FakeSession(SessionGuard):
    """One call's session over a :class:`FakeRecognizer`."""

    engine_label = "fake"

    def __init__(self, recognizer: FakeRecognizer) -> None:
        super().__init__()
        self._rec = recognizer
        self.sample_rate = recognizer.sample_rate
        self.specs: list[ListenSpec] = []
        self._chunks: list[PCM] = []
        self._feeds = 0

    def begin(self, spec: ListenSpec) -> None:
        self._check_open()
        self._spec = spec
        self.specs.append(spec)
        self._rec.specs.append(spec)
        self._chunks = []
        self._feeds = 0

    def feed(self, pcm: PCM) -> str:
        self._require_spec()
        self._chunks.append(self._samples(pcm, self.sample_rate).copy())
        self._feeds += 1
        if self._rec.partials and any(len(c) for c in self._chunks):
            return self._rec.peek()
        return ""

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        """The running reading. With the recogniser's ``reading`` callable: what it makes of
        the audio so far. By default: once some sound (a sample above :data:`QUIET_SAMPLE`)
        came in, the next scripted answer's text and word confidences, with the silence after
        the last sound as the trailing blank; the fake hears everything at once, so ``flush``
        changes nothing (it is counted)."""
        self._require_spec()
        self._rec.readings += 1
        self._rec.flushed_readings += flush
        audio = self._audio()
        if self._rec.reading is not None:
            return self._rec.reading(audio)
        quiet = trailing_quiet_s(audio)
        if quiet is None:
            return PartialReading(heard_s=audio.duration)
        upcoming = self._rec.peek_recognition()
        confidences = upcoming.hypotheses[0].word_confidences if upcoming.hypotheses else ()
        return PartialReading(upcoming.text, confidences, audio.duration, quiet)

    def _audio(self) -> Audio:
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Audio(samples.astype(np.int16, copy=False), self.sample_rate)

    def end(self) -> Recognition:
        spec = self._require_spec()
        audio = self._audio()
        self._spec = None
        self._chunks = []
        self._rec.utterances.append(Utterance(spec, audio, self._feeds))
        return self._rec.answer(audio)

    def close(self) -> None:
        self._mark_closed()
