"""Scripted stand-ins for a live call: a :class:`~assistant.core.ports.CallMedia` and a recogniser.

It is long because a scripted caller on a simulated line needs its own clock, script steps and
recording, all of which must agree sample by sample.

:class:`ScriptedMedia` is a caller that follows a script, on a simulated line:

* time is the media clock: every :meth:`ScriptedMedia.receive` delivers the next 20 ms
  :class:`~assistant.core.ports.AudioFrame` at once (silence, or low noise, between the caller's
  clips), exactly as a real-time transport delivers audio continuously, so nothing ever sleeps
  and runs are deterministic;
* the box's audio (:meth:`~ScriptedMedia.play`) drains at the same pace, one frame's worth per
  frame received, so :meth:`~ScriptedMedia.queued_seconds` counts real playback time;
  everything the box played is kept on a timeline aligned with the caller's
  (:meth:`~ScriptedMedia.box_audio`, :meth:`~ScriptedMedia.caller_audio`);
* the script is a list of steps run in order: caller audio (:class:`Speak`), keys
  (:class:`Press`), a hang-up (:class:`Hangup`), waits on the media clock (:class:`Silence`,
  :class:`Until`) or on the box (:class:`BoxSpeaks`: until the box starts talking,
  :class:`BoxDone`: until it has finished), a stretch with no media at all (:class:`NoMedia`,
  ``receive`` returns ``None``), and a test hook (:class:`Do`);
* :attr:`ScriptedMedia.clock` is a :class:`ManualClock` advanced with the media (20 ms per frame,
  ``timeout`` per empty ``receive``): give it to the code under test as its clock and measured
  latencies are deterministic too.

:class:`ToneRecognizer` hears such scripts: each phrase of its vocabulary is a pure tone of its
own pitch (:meth:`ToneRecognizer.clip`), and an utterance is heard as the phrase whose pitch
dominates it, so an end-to-end test can run the endpointer, the resampler and the dialog on
audio without a speech model.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from assistant.audio.resample import resample_audio
from assistant.audio.txbuffer import TransmitBuffer, checked_play_samples
from assistant.core.errors import RecognizerError
from assistant.core.ports import (
    PCM,
    Audio,
    AudioFrame,
    CallerId,
    CallerSource,
    DtmfDigit,
    ListenSpec,
    MediaEvent,
    PartialReading,
    Recognition,
    RemoteHangup,
)
from assistant.testing.audio import tone

FRAME_S = 0.02
_MIN_WAIT_S = 0.001  # an empty receive(0) still takes a little time: busy loops reach the limit
_KEYS = frozenset("0123456789*#")


class ManualClock:
    """A clock that moves only when told: ``clock()`` reads it, :meth:`advance` moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds


class ScriptExhausted(RuntimeError):
    """The script's time limit passed: the code under test is waiting for something that the
    script will never do (a test failure, not a hang)."""


# -- script steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silence:
    """The caller says nothing for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Until:
    """The caller says nothing until the media clock reads ``at_s``."""

    at_s: float


@dataclass(frozen=True, eq=False)
class Speak:
    """The caller says ``audio`` (an :class:`Audio` is converted to the line's rate; bare
    samples must already be at it). ``label`` names it in :attr:`ScriptedMedia.log`."""

    audio: Audio | PCM
    label: str = ""


@dataclass(frozen=True)
class Press:
    """The caller presses ``keys`` (``0-9 * #``), ``gap_s`` of silence after each key."""

    keys: str
    gap_s: float = 0.15

    def __post_init__(self) -> None:
        if not self.keys or set(self.keys) - _KEYS:
            raise ValueError(f"Press keys must be among 0-9 * #, got {self.keys!r}")


@dataclass(frozen=True)
class Hangup:
    """The caller hangs up: from now on ``receive`` returns this :class:`RemoteHangup`."""

    reason: str = "caller hung up"


@dataclass(frozen=True)
class NoMedia:
    """The line delivers nothing for ``seconds`` of clock time (``receive`` returns ``None``)."""

    seconds: float


@dataclass(frozen=True)
class BoxSpeaks:
    """Wait until the box plays audio (started after this step began, or still queued), then
    ``after_s`` more: for speaking or pressing keys in the middle of a prompt."""

    after_s: float = 0.0


@dataclass(frozen=True)
class BoxDone:
    """Wait until the box has played something and then been quiet (nothing queued) for
    ``gap_s``: the polite caller, who answers once the prompts are over."""

    gap_s: float = 0.3


@dataclass(frozen=True)
class Do:
    """Call ``action()`` at this point of the script (a test hook; takes no time)."""

    action: Callable[[], None]


Step = Silence | Until | Speak | Press | Hangup | NoMedia | BoxSpeaks | BoxDone | Do


@dataclass(frozen=True)
class _Key:
    """One key of a :class:`Press` (internal)."""

    key: str


_AnyStep = Step | _Key


_EMPTY: PCM = np.zeros(0, dtype=np.int16)


@dataclass
class _Active:
    """The running step and its progress."""

    step: Step
    started: int  # media sample index
    pos: int = 0  # Speak: samples sent
    samples: PCM = field(default_factory=lambda: _EMPTY)
    remaining_s: float = 0.0  # NoMedia
    box_plays: int = 0  # BoxSpeaks/BoxDone: the box's play() count when the step began...
    box_seen_at: int | None = None  # ...and the sample index it was first heard playing


@dataclass(frozen=True)
class LogEntry:
    """What happened on the line, at media time ``at_s``: ``kind`` is ``speak_start``,
    ``speak_end``, ``key``, ``hangup`` (the caller's), ``box_hangup``, ``flush`` or ``do``."""

    at_s: float
    kind: str
    detail: str = ""


class ScriptedMedia:
    """A :class:`~assistant.core.ports.CallMedia` that plays a caller script on a simulated line.

    ``then`` says what the caller does once the script is over: ``"silence"`` (stay on the line,
    quiet) or ``"hangup"``. Whatever happens, the call may not last longer than ``limit_s``
    (media time plus the time spent in empty receives): :class:`ScriptExhausted` is raised from
    ``receive`` instead, so a test whose box waits for something the script never does fails
    rather than runs forever. ``noise_dbfs`` adds seeded white noise to the line (silence is
    otherwise digital zero).
    """

    def __init__(
        self,
        script: Sequence[Step] = (),
        *,
        rate: int = 8000,
        caller: CallerId | str | None = "0912345678",
        call_id: str | None = None,
        then: str = "silence",
        limit_s: float = 300.0,
        noise_dbfs: float | None = None,
        seed: int = 0,
        clock: ManualClock | None = None,
        frame_s: float = FRAME_S,
    ) -> None:
        if not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"rate must be a positive integer, got {rate!r}")
        if then not in ("silence", "hangup"):
            raise ValueError("then must be 'silence' or 'hangup'")
        if isinstance(caller, CallerId):
            self.caller = caller
        else:
            self.caller = CallerId(caller, CallerSource.CLI if caller else CallerSource.NONE)
        self.call_id = call_id or "scripted-" + uuid.uuid4().hex[:8]
        self.sample_rate = rate
        self.clock = clock or ManualClock()
        self.frame_samples = max(1, round(frame_s * rate))
        self.then = then
        self.limit_s = limit_s
        self.noise_dbfs = noise_dbfs
        self._rng = np.random.default_rng(seed)
        self._steps: deque[_AnyStep] = deque(script)
        self._active: _Active | None = None
        self._pending: deque[MediaEvent] = deque()
        self._now = 0  # media clock, in samples
        self._idle_s = 0.0  # clock time spent in receives that returned nothing
        self._playback = TransmitBuffer()
        self._box_plays = 0
        self._box_last_end = -1  # sample index after the last box sample played
        self._box_track: list[PCM] = []
        self._caller_track: list[PCM] = []
        self._remote_end: RemoteHangup | None = None
        self.box_hung_up_at: float | None = None
        self.flushes: list[float] = []
        self.played: list[PCM] = []  # every play() call's samples, in order
        self.log: list[LogEntry] = []
        self._active_spans: list[tuple[float, float]] = []

    def __repr__(self) -> str:
        return f"<ScriptedMedia {self.call_id} t={self.now_s:.2f}s rate={self.sample_rate}>"

    # -- observation ---------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """The media clock (seconds of audio delivered)."""
        return self._now / self.sample_rate

    @property
    def ended(self) -> bool:
        return self._remote_end is not None or self.box_hung_up_at is not None

    def box_audio(self) -> Audio:
        """What the box played, on the media timeline (silence where it said nothing)."""
        return self._track(self._box_track)

    def caller_audio(self) -> Audio:
        """What the caller sent, on the same timeline."""
        return self._track(self._caller_track)

    def box_spans(self, *, min_gap_s: float = 0.1) -> list[tuple[float, float]]:
        """(start, end) seconds of the box's playback, gaps shorter than ``min_gap_s`` merged.

        A span is where the box's queue had audio (its silences between words included)."""
        spans: list[tuple[float, float]] = []
        for start, end in self._active_spans:
            if spans and start - spans[-1][1] < min_gap_s:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    # -- CallMedia -----------------------------------------------------------------------------

    def receive(self, timeout: float) -> MediaEvent | None:
        if self._pending:
            return self._pending.popleft()
        if self._remote_end is not None:
            return self._remote_end
        if self.box_hung_up_at is not None:
            self._nothing(max(_MIN_WAIT_S, timeout))
            return None
        self._run_steps()
        if self._pending:
            return self._pending.popleft()
        if self._remote_end is not None:
            return self._remote_end
        active = self._active
        if active is not None and isinstance(active.step, NoMedia):
            wait = min(max(timeout, _MIN_WAIT_S), active.remaining_s)
            active.remaining_s -= wait
            if active.remaining_s <= 1e-9:
                self._active = None
            self._nothing(wait)
            return None
        self._check_limit()
        return AudioFrame(self._frame())

    def play(self, pcm: PCM) -> None:
        samples = checked_play_samples(pcm, self.sample_rate)
        if samples.size == 0 or self.ended:
            return
        self.played.append(samples.copy())
        self._playback.push(samples)
        self._box_plays += 1

    def queued_seconds(self) -> float:
        return 0.0 if self.ended else self._queued / self.sample_rate

    @property
    def _queued(self) -> int:
        return len(self._playback)

    def flush(self) -> None:
        self._playback.clear()
        self.flushes.append(self.now_s)
        self._note("flush")

    def hangup(self) -> None:
        if self.ended:
            return
        self.box_hung_up_at = self.now_s
        self._playback.clear()
        self._note("box_hangup")

    # -- internals -----------------------------------------------------------------------------

    def _note(self, kind: str, detail: str = "") -> None:
        self.log.append(LogEntry(round(self.now_s, 4), kind, detail))

    def _check_limit(self) -> None:
        if self.now_s + self._idle_s >= self.limit_s:
            raise ScriptExhausted(
                f"scripted call reached its {self.limit_s:g} s limit "
                f"({len(self._steps) + (self._active is not None)} step(s) left)"
            )

    def _nothing(self, seconds: float) -> None:
        """A ``receive`` that got no media: ``seconds`` pass on the clock (not on the line)."""
        self._check_limit()
        self._idle_s += seconds
        self.clock.advance(seconds)

    def _track(self, parts: list[PCM]) -> Audio:
        samples = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return Audio(samples.astype(np.int16, copy=False), self.sample_rate)

    def _samples_of(self, audio: Audio | PCM) -> PCM:
        if isinstance(audio, Audio):
            if audio.rate != self.sample_rate:
                audio = resample_audio(audio, self.sample_rate)
            return audio.samples
        return np.asarray(audio, dtype=np.int16)

    def _run_steps(self) -> None:
        """Start steps and finish waits until one needs this frame (or a key/hang-up is due)."""
        while not self._pending and self._remote_end is None:
            if self._active is None:
                if not self._steps:
                    if self.then == "hangup":
                        self._hang_up(Hangup())
                    return
                self._start(self._steps.popleft())
                continue
            if not self._waiting(self._active):
                self._active = None
                continue
            return

    def _start(self, step: _AnyStep) -> None:
        if isinstance(step, Press):
            expanded: list[_AnyStep] = []
            for key in step.keys:
                expanded += [_Key(key), Silence(step.gap_s)]
            self._steps.extendleft(reversed(expanded))
            return
        if isinstance(step, _Key):
            self._pending.append(DtmfDigit(step.key))
            self._note("key", step.key)
            return
        if isinstance(step, Hangup):
            self._hang_up(step)
            return
        if isinstance(step, Do):
            self._note("do")
            step.action()
            return
        active = _Active(step, self._now)
        if isinstance(step, Speak):
            active.samples = self._samples_of(step.audio)
            self._note("speak_start", step.label)
        elif isinstance(step, NoMedia):
            active.remaining_s = step.seconds
        elif isinstance(step, BoxSpeaks | BoxDone):
            active.box_plays = self._box_plays
            active.box_seen_at = self._now if self._queued > 0 else None
        self._active = active

    def _hang_up(self, step: Hangup) -> None:
        self._remote_end = RemoteHangup(step.reason)
        self._note("hangup", step.reason)
        self._steps.clear()
        self._active = None

    def _waiting(self, active: _Active) -> bool:
        """Whether ``active`` still holds (True) or is over (False)."""
        step = active.step
        rate = self.sample_rate
        if isinstance(step, Silence):
            return self._now - active.started < round(step.seconds * rate)
        if isinstance(step, Until):
            return self._now < round(step.at_s * rate)
        if isinstance(step, Speak):
            if active.pos >= len(active.samples):
                self._note("speak_end", step.label)
                return False
            return True
        if isinstance(step, NoMedia):
            return active.remaining_s > 1e-9
        if isinstance(step, BoxSpeaks | BoxDone):
            seen = active.box_seen_at
            if seen is None and (self._box_plays > active.box_plays or self._queued > 0):
                seen = active.box_seen_at = self._now
            if seen is None:
                return True
            if isinstance(step, BoxSpeaks):
                return self._now - seen < round(step.after_s * rate)
            quiet = self._now - max(self._box_last_end, seen)
            return self._queued > 0 or quiet < round(step.gap_s * rate)
        raise AssertionError(f"unexpected step {step!r}")  # pragma: no cover

    def _frame(self) -> PCM:
        n = self.frame_samples
        frame = np.zeros(n, dtype=np.int16)
        if self.noise_dbfs is not None:
            scale = 32768.0 * 10.0 ** (self.noise_dbfs / 20.0)
            noise = np.rint(self._rng.standard_normal(n) * scale)
            frame = np.clip(noise, -32768, 32767).astype(np.int16)
        active = self._active
        if active is not None and isinstance(active.step, Speak):
            chunk = active.samples[active.pos : active.pos + n]
            active.pos += len(chunk)
            mixed = frame[: len(chunk)].astype(np.int32) + chunk
            frame[: len(chunk)] = np.clip(mixed, -32768, 32767)
        self._caller_track.append(frame)
        self._drain(n)
        self._now += n
        self.clock.advance(n / self.sample_rate)
        return frame

    def _drain(self, n: int) -> None:
        """The box's next ``n`` samples go out on the line."""
        out = np.zeros(n, dtype=np.int16)
        filled = self._playback.take_into(out)
        self._box_track.append(out)
        if filled:
            start, end = self._now / self.sample_rate, (self._now + filled) / self.sample_rate
            spans = self._active_spans
            if spans and abs(spans[-1][1] - start) < 1e-9:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
            self._box_last_end = self._now + filled


# -- a recogniser that hears tones -------------------------------------------------------------

MAX_TONE_HZ = 3400.0  # inside the phone band, so phrases survive an 8 kHz line


class ToneRecognizer:
    """A :class:`~assistant.core.ports.Recognizer` whose vocabulary is spoken as tones.

    Phrase *i* of ``phrases`` is a tone of ``base_hz + i * step_hz`` (:meth:`clip` makes one).
    An utterance is cut into runs of frames louder than ``min_dbfs``; each run of at least
    ``min_run_s`` is heard as the phrase nearest its strongest frequency (within half a step),
    and the phrases are joined with spaces. Partial text is the same reading of the audio so
    far. ``sessions`` keeps every session opened, for assertions.
    """

    name = "tone"

    def __init__(
        self,
        phrases: Sequence[str],
        *,
        sample_rate: int = 16000,
        base_hz: float = 400.0,
        step_hz: float = 150.0,
        min_dbfs: float = -40.0,
        min_run_s: float = 0.06,
    ) -> None:
        if not phrases:
            raise ValueError("ToneRecognizer needs at least one phrase")
        top = base_hz + (len(phrases) - 1) * step_hz
        if top > min(MAX_TONE_HZ, 0.45 * sample_rate):
            raise ValueError(f"{len(phrases)} phrases need tones up to {top:g} Hz: too high")
        self.phrases = list(phrases)
        self.sample_rate = sample_rate
        self.base_hz = base_hz
        self.step_hz = step_hz
        self.min_dbfs = min_dbfs
        self.min_run_s = min_run_s
        self.sessions: list[ToneSession] = []
        self.closed = False

    def hz(self, text: str) -> float:
        """The pitch that says ``text`` (a ValueError when it is not in the vocabulary)."""
        return self.base_hz + self.phrases.index(text) * self.step_hz

    def clip(
        self, text: str, seconds: float = 0.8, *, rate: int | None = None, dbfs: float = -12.0
    ) -> Audio:
        """``text`` said as a tone, at ``rate`` (default: the recogniser's)."""
        rate = rate or self.sample_rate
        return Audio(tone(self.hz(text), seconds, rate, dbfs=dbfs), rate)

    def open_session(self) -> ToneSession:
        if self.closed:
            raise RecognizerError("tone recogniser is closed", code="asr_closed")
        session = ToneSession(self)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        self.closed = True

    def read(self, samples: PCM) -> str:
        """What the recogniser hears in ``samples`` (at :attr:`sample_rate`)."""
        frame = max(1, round(0.02 * self.sample_rate))
        n = len(samples) // frame
        if n == 0:
            return ""
        x = samples[: n * frame].astype(np.float64).reshape(n, frame)
        power = np.mean(x * x, axis=1) / (32768.0 * 32768.0)
        loud = 10.0 * np.log10(np.maximum(power, 1e-12)) >= self.min_dbfs
        words: list[str] = []
        i = 0
        while i < n:
            if not loud[i]:
                i += 1
                continue
            j = i
            while j < n and loud[j]:
                j += 1
            if (j - i) * frame >= self.min_run_s * self.sample_rate:
                word = self._phrase(x[i:j].reshape(-1))
                if word is not None and (not words or words[-1] != word):
                    words.append(word)
            i = j
        return " ".join(words)

    def _phrase(self, run: npt.NDArray[np.float64]) -> str | None:
        spectrum = np.abs(np.fft.rfft(run * np.hanning(len(run))))
        peak_hz = float(np.argmax(spectrum)) * self.sample_rate / len(run)
        index = round((peak_hz - self.base_hz) / self.step_hz)
        if (
            0 <= index < len(self.phrases)
            and abs(peak_hz - self.hz(self.phrases[index])) <= self.step_hz / 2
        ):
            return self.phrases[index]
        return None


class ToneSession:
    """One call's session of a :class:`ToneRecognizer`. ``specs`` lists every ``begin``'s
    spec, ``heard`` every finished utterance's text and ``fed`` how many samples it was
    given, in order."""

    def __init__(self, recognizer: ToneRecognizer) -> None:
        self.recognizer = recognizer
        self.specs: list[ListenSpec] = []
        self.heard: list[str] = []
        self.fed: list[int] = []
        self.closed = False
        self._parts: list[PCM] | None = None

    def begin(self, spec: ListenSpec) -> None:
        if self.closed:
            raise RecognizerError("tone session is closed", code="asr_closed")
        if self._parts is not None:
            raise RecognizerError("begin() while an utterance is open", code="asr_state")
        self.specs.append(spec)
        self._parts = []

    def feed(self, pcm: PCM) -> str:
        if self._parts is None:
            raise RecognizerError("feed() outside an utterance", code="asr_state")
        self._parts.append(np.asarray(pcm, dtype=np.int16).copy())
        return self.recognizer.read(self._audio())

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        """The running reading: the phrases heard so far, the seconds fed, and the quiet
        (below ``min_dbfs``) after the last phrase, in 20 ms frames. Tones are heard at once,
        so ``flush`` changes nothing."""
        del flush
        if self._parts is None:
            raise RecognizerError("reading() outside an utterance", code="asr_state")
        samples = self._audio()
        rec = self.recognizer
        text = rec.read(samples)
        frame = max(1, round(0.02 * rec.sample_rate))
        n = len(samples) // frame
        quiet = 0
        if text and n:
            x = samples[: n * frame].astype(np.float64).reshape(n, frame)
            power = np.mean(x * x, axis=1) / (32768.0 * 32768.0)
            loud = np.flatnonzero(10.0 * np.log10(np.maximum(power, 1e-12)) >= rec.min_dbfs)
            quiet = n - int(loud[-1]) - 1 if len(loud) else 0
        return PartialReading(
            text, (), len(samples) / rec.sample_rate, quiet * frame / rec.sample_rate
        )

    def end(self) -> Recognition:
        if self._parts is None:
            raise RecognizerError("end() outside an utterance", code="asr_state")
        audio = self._audio()
        text = self.recognizer.read(audio)
        self._parts = None
        self.heard.append(text)
        self.fed.append(len(audio))
        return Recognition.of(text) if text else Recognition()

    def close(self) -> None:
        self.closed = True
        self._parts = None

    def _audio(self) -> PCM:
        parts = self._parts or []
        return np.concatenate(parts) if parts else _EMPTY


class ContextSession:
    """A tone session that also takes context (:class:`~assistant.core.ports.HearsContext`),
    and keeps what it was given: every call in order, each context, each turn's audio."""

    def __init__(self, inner: ToneSession) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.contexts: list[PCM] = []
        self.turns: list[PCM] = []
        self._parts: list[PCM] = []

    def begin(self, spec: ListenSpec) -> None:
        self.inner.begin(spec)
        self.calls.append("begin")
        self._parts = []

    def context(self, pcm: PCM) -> float:
        if self.calls[-1:] != ["begin"]:
            raise RecognizerError("context() must come right after begin()", code="asr_state")
        self.calls.append("context")
        self.contexts.append(np.asarray(pcm).copy())
        return len(pcm) / self.inner.recognizer.sample_rate

    def feed(self, pcm: PCM) -> str:
        self.calls.append("feed")
        self._parts.append(np.asarray(pcm).copy())
        return self.inner.feed(pcm)

    def end(self) -> Recognition:
        self.turns.append(np.concatenate(self._parts) if self._parts else np.zeros(0, np.int16))
        return self.inner.end()

    def close(self) -> None:
        self.inner.close()
