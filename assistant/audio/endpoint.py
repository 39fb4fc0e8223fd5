"""End-of-utterance and no-input detection: pure logic, time is the number of samples fed.

An :class:`Endpointer` listens for one caller turn. Feed it int16 frames of any size at a known
rate; it keeps its own sample clock, cuts the audio into analysis frames (``frame_s``), and
returns events as they are decided:

* :class:`SpeechStarted` once at least ``min_speech_s`` of speech has been heard (clicks and
  short pops are shorter than that and never start an utterance);
* :class:`SpeechEnded` after ``end_silence_s`` of non-speech following speech;
* :class:`NoInput` when no speech started within ``no_input_s`` of the start of the turn;
* :class:`MaxSpeech` when the utterance has lasted ``max_speech_s``.

After ``SpeechEnded``, ``NoInput`` or ``MaxSpeech`` the turn is over: further audio is counted on
the clock but yields nothing until :meth:`Endpointer.reset` starts the next turn (the noise
estimate is kept across turns: it describes the line, not the turn).

Voice activity is frame energy against an adaptive noise floor: the floor is the quietest frame
of the last ``noise_window_s`` (speech has pauses between syllables, so the minimum follows the
line noise even while the caller talks), and a frame is speech when it is ``threshold_db`` above
that floor and above ``min_speech_dbfs`` (so exact digital silence plus dither, or quiet 8 kHz
line hiss, never counts). Once speaking, a frame keeps the utterance alive at
``threshold_db - hangover_db`` (hysteresis).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from assistant.core.errors import ConfigError
from assistant.core.ports import PCM

_SILENT_DBFS = -120.0  # energy of an all-zero frame


@dataclass(frozen=True)
class EndpointSettings:
    """How one turn is endpointed. All durations in seconds. Validated on construction."""

    end_silence_s: float = 0.8
    no_input_s: float = 6.0
    max_speech_s: float = 20.0
    min_speech_s: float = 0.12  # speech needed before an utterance counts as started
    max_gap_s: float = 0.1  # a gap this long abandons a not-yet-confirmed start (a click)
    frame_s: float = 0.02
    threshold_db: float = 10.0  # above the noise floor to start
    hangover_db: float = 4.0  # a running utterance continues down to threshold - hangover
    min_speech_dbfs: float = -50.0  # never speech below this frame RMS level
    noise_window_s: float = 1.5
    initial_floor_dbfs: float = -50.0  # assumed noise floor before noise_window_s of audio

    def __post_init__(self) -> None:
        positive = (
            "end_silence_s",
            "no_input_s",
            "max_speech_s",
            "min_speech_s",
            "frame_s",
            "noise_window_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"endpoint setting {name} must be a positive number, got {value!r}"
                )
        for name in ("max_gap_s", "threshold_db", "hangover_db"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"endpoint setting {name} must be >= 0, got {value!r}")
        for name in ("min_speech_dbfs", "initial_floor_dbfs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and -120 <= value <= 0):
                raise ConfigError(
                    f"endpoint setting {name} must be in [-120, 0] dBFS, got {value!r}"
                )
        if self.frame_s > 0.1:
            raise ConfigError(f"endpoint frame_s must be at most 0.1 s, got {self.frame_s!r}")
        if self.hangover_db > self.threshold_db:
            raise ConfigError("endpoint hangover_db cannot exceed threshold_db")
        if self.min_speech_s >= self.max_speech_s:
            raise ConfigError("endpoint min_speech_s must be below max_speech_s")

    @staticmethod
    def digits() -> EndpointSettings:
        """For codes read aloud: callers pause between digit groups, so wait longer."""
        return EndpointSettings(end_silence_s=1.4, no_input_s=8.0)

    @staticmethod
    def yesno() -> EndpointSettings:
        return EndpointSettings(end_silence_s=0.7)


@dataclass(frozen=True)
class SpeechStarted:
    """Decided at ``at_s`` (stream time); the speech itself began at ``onset_s``."""

    at_s: float
    onset_s: float


@dataclass(frozen=True)
class SpeechEnded:
    """Decided at ``at_s``; the last speech frame ended at ``speech_end_s``."""

    at_s: float
    speech_end_s: float


@dataclass(frozen=True)
class NoInput:
    at_s: float


@dataclass(frozen=True)
class MaxSpeech:
    at_s: float


EndpointEvent = SpeechStarted | SpeechEnded | NoInput | MaxSpeech


class _State(Enum):
    WAITING = "waiting"
    CANDIDATE = "candidate"
    SPEAKING = "speaking"
    DONE = "done"


class Endpointer:
    """Stateful detector for one turn at a time; not thread-safe (one per call)."""

    def __init__(self, rate: int, settings: EndpointSettings | None = None) -> None:
        if not isinstance(rate, int) or rate <= 0:
            raise ConfigError(f"endpointer sample rate must be a positive integer, got {rate!r}")
        self.rate = rate
        self._samples = 0  # clock: all samples ever fed
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = 0  # clock position of _pending[0]
        self._energies: deque[float] = deque()
        self._frames_seen = 0
        self.reset(settings)

    # -- public ------------------------------------------------------------------------------

    @property
    def settings(self) -> EndpointSettings:
        return self._settings

    @property
    def now_s(self) -> float:
        """Stream time: samples fed so far / rate."""
        return self._samples / self.rate

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    @property
    def speaking(self) -> bool:
        return self._state is _State.SPEAKING

    @property
    def noise_floor_dbfs(self) -> float:
        return self._floor()

    def reset(self, settings: EndpointSettings | None = None) -> None:
        """Start a new turn now (optionally with other settings); keeps the noise estimate."""
        if settings is not None or not hasattr(self, "_settings"):
            self._settings = settings or EndpointSettings()
        s = self._settings
        frame = max(1, round(s.frame_s * self.rate))
        if getattr(self, "_frame", frame) != frame:
            self._energies.clear()
            self._frames_seen = 0
        self._frame = frame
        self._energies = deque(self._energies, maxlen=max(1, round(s.noise_window_s / s.frame_s)))
        # a new turn starts at the current clock; frames already begun are analysed from here
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = self._samples
        self._turn_start = self._samples
        self._state = _State.WAITING
        self._onset = 0  # samples
        self._voiced = 0
        self._gap = 0
        self._last_speech_end = 0

    def feed(self, pcm: PCM) -> list[EndpointEvent]:
        """Account for ``pcm`` (any length) and return the events decided in it, in order."""
        pcm = np.asarray(pcm, dtype=np.int16)
        self._samples += len(pcm)
        if len(pcm) == 0:
            return []
        buf = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        events: list[EndpointEvent] = []
        n_frames = len(buf) // self._frame
        for i in range(n_frames):
            frame = buf[i * self._frame : (i + 1) * self._frame]
            end = self._pending_start + (i + 1) * self._frame
            if self._state is not _State.DONE:
                events.extend(self._step(frame, end))
            else:
                self._observe(frame)
        used = n_frames * self._frame
        self._pending = buf[used:].copy()
        self._pending_start += used
        return events

    # -- internals ---------------------------------------------------------------------------

    def _floor(self) -> float:
        s = self._settings
        observed = min(self._energies) if self._energies else s.initial_floor_dbfs
        if self._frames_seen * s.frame_s < s.noise_window_s:
            return min(observed, s.initial_floor_dbfs)
        return observed

    def _observe(self, frame: PCM) -> float:
        x = frame.astype(np.float64)
        x -= x.mean()
        power = float(np.dot(x, x)) / len(x) / (32768.0 * 32768.0)
        level = 10.0 * math.log10(power) if power > 1e-12 else _SILENT_DBFS
        self._energies.append(level)
        self._frames_seen += 1
        return level

    def _t(self, samples: int) -> float:
        return samples / self.rate

    def _step(self, frame: PCM, end: int) -> list[EndpointEvent]:
        s = self._settings
        floor = self._floor()  # from frames before this one
        level = self._observe(frame)
        start = end - len(frame)
        margin = s.threshold_db - (s.hangover_db if self._state is _State.SPEAKING else 0.0)
        is_speech = level >= s.min_speech_dbfs and level >= floor + margin
        if self._state is _State.WAITING:
            if is_speech:
                self._state = _State.CANDIDATE
                self._onset, self._voiced, self._gap = start, len(frame), 0
            elif end - self._turn_start >= s.no_input_s * self.rate:
                self._state = _State.DONE
                return [NoInput(self._t(end))]
            return self._confirm(end)
        if self._state is _State.CANDIDATE:
            if is_speech:
                self._voiced += len(frame)
                self._gap = 0
                return self._confirm(end)
            self._gap += len(frame)
            if self._gap >= s.max_gap_s * self.rate:  # a click, not speech
                self._state = _State.WAITING
                if end - self._turn_start >= s.no_input_s * self.rate:
                    self._state = _State.DONE
                    return [NoInput(self._t(end))]
            return []
        # SPEAKING
        if is_speech:
            self._last_speech_end = end
        if end - self._onset >= s.max_speech_s * self.rate:
            self._state = _State.DONE
            return [MaxSpeech(self._t(end))]
        if end - self._last_speech_end >= s.end_silence_s * self.rate:
            self._state = _State.DONE
            return [SpeechEnded(self._t(end), self._t(self._last_speech_end))]
        return []

    def _confirm(self, end: int) -> list[EndpointEvent]:
        needed = self._settings.min_speech_s * self.rate - 0.5  # float tolerance
        if self._state is _State.CANDIDATE and self._voiced >= needed:
            self._state = _State.SPEAKING
            self._last_speech_end = end
            return [SpeechStarted(self._t(end), self._t(self._onset))]
        return []
