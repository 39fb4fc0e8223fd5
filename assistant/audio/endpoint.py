"""End-of-utterance and no-input detection: pure logic, time is the number of samples fed.

An :class:`Endpointer` listens for one caller turn. Feed it int16 frames of any size at a known
rate; it keeps its own sample clock, cuts the audio into analysis frames (``frame_s``, or the
voice-activity detector's own window), and returns events as they are decided:

* :class:`SpeechStarted` once at least ``min_speech_s`` of speech has been heard (clicks and
  short pops are shorter than that and never start an utterance);
* :class:`SpeechEnded` after ``end_silence_s`` of non-speech following speech, or, when the
  recogniser's running reading already holds everything the turn expects (see below), after
  only ``complete_silence_s``;
* :class:`NoInput` when no speech started within ``no_input_s`` of the start of the turn;
* :class:`MaxSpeech` when the utterance has lasted ``max_speech_s``.

After ``SpeechEnded``, ``NoInput`` or ``MaxSpeech`` the turn is over: further audio is counted on
the clock but yields nothing until :meth:`Endpointer.reset` starts the next turn (the noise
estimate is kept across turns: it describes the line, not the turn).

**Voice activity.** With a :class:`~assistant.audio.vad.VoiceActivity` detector (Silero VAD,
WebRTC VAD), a frame is speech when its speech probability reaches ``speech_probability``;
once speaking, a frame keeps the utterance alive down to ``continue_probability``. Without
one, voice activity is frame energy against an adaptive noise floor: the floor is the quietest
frame of the last ``noise_window_s`` (speech has pauses between syllables, so the minimum
follows the line noise even while the caller talks), and a frame is speech when it is
``threshold_db`` above that floor and above ``min_speech_dbfs``; once speaking, a frame keeps
the utterance alive at ``threshold_db - hangover_db`` (hysteresis).

**Speech above the line.** A detector says whether a frame is speech, not whose: other
people talking near the caller (a street, a market, a television) are speech too. With a
detector and ``above_line_db`` set, a frame can start an utterance only when it is also that
much louder than the line: the median frame level of the last ``noise_window_s`` heard while
waiting for the caller (:meth:`Endpointer.hear_line` adds the line heard before the
endpointer was, such as during the prompt; :meth:`Endpointer.seed_line` another endpointer's
estimate). The caller, close to the microphone, is louder than the voices around. A running
utterance is not gated: gating it too would end the detector's speech in every pause between
digits, each of which invites a recogniser step (README, "Speech above the line"). With no
line heard yet, nothing is gated.

**A quiet caller.** A detector judges partly by level: Silero VAD missed most of a caller's
speech at -56 dBFS (:mod:`assistant.audio.level`). With ``vad_lift_to_dbfs`` set, the frames
the detector is shown are lifted so that the loudest 100 ms the endpointer has heard so far
(this frame included) reaches that level, by at most ``vad_lift_max_db`` and not at all while
nothing above ``vad_lift_floor_dbfs`` has been heard. A caller at a usual level is shown as
they come (only their first syllable's first 100 ms, while the loudest 100 ms heard is still
partly silence, is lifted a little). Levels (the line, the gate above it, frame energy) are
always those of the audio itself.

**Grammar-aware end of turn.** The box knows what a turn should hold (ten digits, a yes or a
no). While the caller speaks, the channel hands the endpointer :class:`TurnReading` facts from
the streaming recogniser (:meth:`Endpointer.hear`): whether the running reading is complete
for the grammar (and sure), how far into the stream it has heard, and how long the acoustic
model has emitted only blank after the last word (CTC). The turn then ends when the reading
is complete, has heard the speech up to the detector's end of speech (within
``coverage_slack_s``), shows at least ``min_blank_s`` of blank after its last word, the
detector has heard at least ``min_vad_quiet_s`` of silence, and ``complete_silence_s`` have
passed since the caller stopped, the stop being the earlier of the detector's end of speech
and the model's last word, but at most ``coverage_slack_s`` earlier than the detector's (a
detector holds on to a word's fading tail for tens of milliseconds; the model's blank says
the word is over). Both kinds of evidence must agree.
:attr:`Endpointer.wants_reading` says when a fresh reading is worth its cost (the detector has
heard ``min_vad_quiet_s`` of silence and no reading has yet heard past the end of speech). An
incomplete reading changes nothing: callers pause between digit groups, so the turn waits
``end_silence_s``.

The module is long because the whole decision (speech start, no input, both kinds of turn end)
is one state machine over one clock, kept together so that it can be read and tested as one.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from assistant.audio.level import SILENT_DBFS, SpeechPeak, lift_db
from assistant.core.errors import ConfigError
from assistant.core.ports import PCM

if TYPE_CHECKING:
    from assistant.audio.vad import VoiceActivity


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
    #: Silence that ends a turn whose running reading is complete; ``None``: never early.
    complete_silence_s: float | None = None
    #: ...and one whose complete reading is still open (:attr:`TurnReading.open`); ``None``:
    #: such a reading waits ``end_silence_s`` as an incomplete one does
    open_silence_s: float | None = None
    min_blank_s: float = 0.08  # blank the acoustic model must show after the last word
    min_vad_quiet_s: float = 0.15  # silence the voice-activity detector must have heard
    coverage_slack_s: float = 0.1  # a reading may stop this short of the end of speech
    speech_probability: float = 0.5  # voice-activity detector: a frame this likely is speech
    #: ...and a running utterance goes on down to this. Equal to speech_probability: with
    #: Silero VAD's usual 0.35 the detected ends came later (scripts/bench_vad.py, README)
    continue_probability: float = 0.5
    #: with a detector, a frame starts an utterance only this far above the line's median
    #: level while waiting (None: at any level); see "Speech above the line" above
    above_line_db: float | None = 6.0
    #: with a detector, the frames it judges are lifted so that the loudest 100 ms heard so
    #: far reaches this level, by at most vad_lift_max_db (None: as they come); see "A quiet
    #: caller" above
    vad_lift_to_dbfs: float | None = -30.0
    vad_lift_max_db: float = 18.0
    vad_lift_floor_dbfs: float = -65.0  # nothing this quiet is lifted

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
        for name in (
            "max_gap_s",
            "threshold_db",
            "hangover_db",
            "min_blank_s",
            "min_vad_quiet_s",
            "coverage_slack_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"endpoint setting {name} must be >= 0, got {value!r}")
        for name in ("min_speech_dbfs", "initial_floor_dbfs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and -120 <= value <= 0):
                raise ConfigError(
                    f"endpoint setting {name} must be in [-120, 0] dBFS, got {value!r}"
                )
        for name in ("speech_probability", "continue_probability"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
                raise ConfigError(f"endpoint setting {name} must be in (0, 1], got {value!r}")
        lift = self.vad_lift_to_dbfs
        if lift is not None and not (isinstance(lift, int | float) and -60 <= lift <= 0):
            raise ConfigError(
                f"endpoint vad_lift_to_dbfs must be in [-60, 0] dBFS (or None), got {lift!r}"
            )
        if not (isinstance(self.vad_lift_max_db, int | float) and 0 <= self.vad_lift_max_db <= 40):
            raise ConfigError(
                f"endpoint vad_lift_max_db must be in [0, 40] dB, got {self.vad_lift_max_db!r}"
            )
        floor = self.vad_lift_floor_dbfs
        if not (isinstance(floor, int | float) and -120 <= floor <= (lift if lift else 0)):
            raise ConfigError(
                f"endpoint vad_lift_floor_dbfs must be in [-120, vad_lift_to_dbfs], got {floor!r}"
            )
        above = self.above_line_db
        if above is not None and not (isinstance(above, int | float) and 0 <= above <= 40):
            raise ConfigError(
                f"endpoint above_line_db must be in [0, 40] dB (or None), got {above!r}"
            )
        if self.continue_probability > self.speech_probability:
            raise ConfigError("endpoint continue_probability cannot exceed speech_probability")
        quick = self.complete_silence_s
        if quick is not None and not (
            isinstance(quick, int | float) and 0 < quick <= self.end_silence_s
        ):
            raise ConfigError(
                f"endpoint complete_silence_s must be in (0, end_silence_s], got {quick!r}"
            )
        if quick is not None and self.min_vad_quiet_s > quick:
            raise ConfigError("endpoint min_vad_quiet_s cannot exceed complete_silence_s")
        wait = self.open_silence_s
        if wait is not None and not (
            isinstance(wait, int | float)
            and quick is not None
            and quick <= wait <= self.end_silence_s
        ):
            raise ConfigError(
                "endpoint open_silence_s must be in [complete_silence_s, end_silence_s] "
                f"(and complete_silence_s set), got {wait!r}"
            )
        if self.frame_s > 0.1:
            raise ConfigError(f"endpoint frame_s must be at most 0.1 s, got {self.frame_s!r}")
        if self.hangover_db > self.threshold_db:
            raise ConfigError("endpoint hangover_db cannot exceed threshold_db")
        if self.min_speech_s >= self.max_speech_s:
            raise ConfigError("endpoint min_speech_s must be below max_speech_s")

    @staticmethod
    def digits() -> EndpointSettings:
        """For codes read aloud: callers pause between digit groups, so an incomplete code
        waits long; a complete one ends after a short silence, one whose last word is a tens
        word (a unit may follow) after a longer one."""
        return EndpointSettings(
            end_silence_s=1.4, no_input_s=8.0, complete_silence_s=0.2, open_silence_s=0.7
        )

    @staticmethod
    def yesno() -> EndpointSettings:
        """A clear yes or no ends the turn after a short silence; anything else waits."""
        return EndpointSettings(end_silence_s=0.7, complete_silence_s=0.25)


@dataclass(frozen=True)
class TurnReading:
    """What the streaming recogniser has heard so far, as the endpointer needs it.

    ``complete``: the running reading holds everything the turn expects (every digit still
    missing, or a clear yes or no) and none of it is unsure. ``covers_s``: stream time (the
    endpointer's clock) up to which the recogniser has heard. ``trailing_blank_s``: seconds at
    the end of that stretch in which the acoustic model emitted only blank after the last word
    (0 when the last word is still going on, or nothing was heard).
    """

    complete: bool
    covers_s: float
    trailing_blank_s: float = 0.0
    #: complete, but the next word may still change it: a code whose last word is a tens
    #: word ("bốn mươi" is 40, "bốn mươi ba" 43, the same count of digits); such a turn ends
    #: only after ``open_silence_s``
    open: bool = False


@dataclass(frozen=True)
class SpeechStarted:
    """Decided at ``at_s`` (stream time); the speech itself began at ``onset_s``."""

    at_s: float
    onset_s: float


@dataclass(frozen=True)
class SpeechEnded:
    """Decided at ``at_s``; the last speech frame ended at ``speech_end_s``. ``complete``:
    ended early because the running reading held everything expected."""

    at_s: float
    speech_end_s: float
    complete: bool = False


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
    """Stateful detector for one turn at a time; not thread-safe (one per call).

    ``vad``: a voice-activity detector at ``rate`` (its window becomes the analysis frame);
    ``None``: frame energy against the noise floor.
    """

    def __init__(
        self,
        rate: int,
        settings: EndpointSettings | None = None,
        *,
        vad: VoiceActivity | None = None,
    ) -> None:
        if not isinstance(rate, int) or rate <= 0:
            raise ConfigError(f"endpointer sample rate must be a positive integer, got {rate!r}")
        if vad is not None and vad.rate != rate:
            raise ConfigError(f"voice-activity detector runs at {vad.rate} Hz, not {rate} Hz")
        self.rate = rate
        self.vad = vad
        self._samples = 0  # clock: all samples ever fed
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = 0  # clock position of _pending[0]
        self._energies: deque[float] = deque()
        self._frames_seen = 0
        self._line = _LineLevels(1)  # frame levels heard while waiting (dBFS)
        self._peak: SpeechPeak | None = None  # the loudest 100 ms heard (reset makes it)
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

    @property
    def quiet_s(self) -> float:
        """Seconds of non-speech since the last speech frame of the running utterance
        (0 when not speaking)."""
        if self._state is not _State.SPEAKING:
            return 0.0
        return self._t(self._analysed - self._last_speech_end)

    @property
    def wants_reading(self) -> bool:
        """A fresh reading could end the turn soon: speaking, ``min_vad_quiet_s`` of silence
        heard, and no reading yet has heard ``min_blank_s`` past the end of speech."""
        s = self._settings
        if s.complete_silence_s is None or self._state is not _State.SPEAKING:
            return False
        if self.quiet_s < s.min_vad_quiet_s - 1e-9:
            return False
        reading = self._reading
        speech_end = self._t(self._last_speech_end)
        return reading is None or reading.covers_s < speech_end + self._settings.min_blank_s

    def reset(self, settings: EndpointSettings | None = None) -> None:
        """Start a new turn now (optionally with other settings); keeps the noise estimate."""
        if settings is not None or not hasattr(self, "_settings"):
            self._settings = settings or EndpointSettings()
        s = self._settings
        frame = (
            self.vad.frame_samples if self.vad is not None else max(1, round(s.frame_s * self.rate))
        )
        if getattr(self, "_frame", frame) != frame:
            self._energies.clear()
            self._line.clear()
            self._frames_seen = 0
        self._frame = frame
        frame_s = frame / self.rate
        window = max(1, round(s.noise_window_s / frame_s))
        self._energies = deque(self._energies, maxlen=window)
        self._line = _LineLevels(window, self._line)
        # the loudest 100 ms heard, in analysis frames: how far the detector's frames are
        # lifted (kept across turns, as the line is: a caller's level is the call's)
        enough = s.vad_lift_to_dbfs if s.vad_lift_to_dbfs is not None else 0.0
        if self._peak is None or self._peak.frame != frame or self._peak.enough_dbfs != enough:
            self._peak = SpeechPeak(frame, max(1, round(0.1 / frame_s)), enough_dbfs=enough)
        # a new turn starts at the current clock; frames already begun are analysed from here
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = self._samples
        self._analysed = self._samples  # end of the last analysed frame
        self._turn_start = self._samples
        self._state = _State.WAITING
        self._onset = 0  # samples
        self._voiced = 0
        self._gap = 0
        self._last_speech_end = 0
        self._reading: TurnReading | None = None

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
            elif self.vad is None:
                self._observe(frame)
            self._analysed = end
        used = n_frames * self._frame
        self._pending = buf[used:].copy()
        self._pending_start += used
        return events

    def hear_line(self, pcm: PCM) -> None:
        """Take the line's audio from before this endpointer was fed (the stretch just before
        the turn, e.g. during the prompt) as the line an utterance must start above
        (``above_line_db``). Changes no state of the turn and not the clock."""
        pcm = np.asarray(pcm, dtype=np.int16)
        for i in range(len(pcm) // self._frame):
            self._line.add(_level(pcm[i * self._frame : (i + 1) * self._frame]))

    @property
    def line_levels(self) -> tuple[float, ...]:
        """The frame levels (dBFS) the line estimate is made of, oldest first: to hand the
        line on to another endpointer of the same call (:meth:`seed_line`)."""
        return tuple(self._line)

    def seed_line(self, levels: Sequence[float]) -> None:
        """Take another endpointer's :attr:`line_levels` (same detector frames) as the line
        heard before this one was fed."""
        for x in levels:
            self._line.add(float(x))

    @property
    def line_dbfs(self) -> float | None:
        """The line's median frame level while waiting (``None``: none heard yet)."""
        return self._line.median()

    def hear(self, reading: TurnReading) -> list[EndpointEvent]:
        """Take the recogniser's latest reading of the turn; returns ``SpeechEnded`` when it
        (with the silence already heard) ends the turn now."""
        if self._state is _State.DONE:
            return []
        if self._reading is None or reading.covers_s >= self._reading.covers_s:
            self._reading = reading  # a reading that has heard less never replaces one
        return self._grammar_end()

    # -- internals ---------------------------------------------------------------------------

    def _floor(self) -> float:
        s = self._settings
        observed = min(self._energies) if self._energies else s.initial_floor_dbfs
        if self._frames_seen * (self._frame / self.rate) < s.noise_window_s:
            return min(observed, s.initial_floor_dbfs)
        return observed

    def _observe(self, frame: PCM) -> float:
        level = _level(frame)
        self._energies.append(level)
        self._frames_seen += 1
        return level

    def _t(self, samples: int) -> float:
        return samples / self.rate

    def _is_speech(self, frame: PCM) -> bool:
        s = self._settings
        speaking = self._state is _State.SPEAKING
        if self.vad is not None:
            level: float | None = None
            peak = self._peak
            if s.vad_lift_to_dbfs is not None and peak is not None and not peak.settled:
                level = _level(frame)
                peak.add_power(10.0 ** (level / 10.0))
            p = self.vad.probability(self._lifted(frame))
            if speaking:  # not gated: see "Speech above the line"
                return p >= s.continue_probability
            if s.above_line_db is None:
                return p >= s.speech_probability
            line = self.line_dbfs  # from frames heard while waiting, before this one
            if level is None:
                level = _level(frame)
            is_speech = p >= s.speech_probability and (
                line is None or level >= line + s.above_line_db
            )
            if self._state is _State.WAITING and not is_speech:
                self._line.add(level)  # the line while waiting: not a start's frames
            return is_speech
        floor = self._floor()  # from frames before this one
        level = self._observe(frame)
        margin = s.threshold_db - (s.hangover_db if speaking else 0.0)
        return level >= s.min_speech_dbfs and level >= floor + margin

    def _lifted(self, frame: PCM) -> PCM:
        """``frame`` as the detector judges it: lifted by :func:`lift_db` from the loudest
        100 ms this endpointer has heard, this frame included (a quiet caller's speech at the
        level the detector knows; louder audio as it is, and once the loudest 100 ms has
        reached the target, every frame after it)."""
        s = self._settings
        peak = self._peak
        if s.vad_lift_to_dbfs is None or peak is None or peak.settled:
            return frame
        db = lift_db(peak.peak_dbfs, s.vad_lift_to_dbfs, s.vad_lift_max_db, s.vad_lift_floor_dbfs)
        if db <= 0.0:
            return frame
        scaled = frame.astype(np.float32) * np.float32(10.0 ** (db / 20.0))
        lifted: PCM = np.clip(scaled, -32768, 32767).astype(np.int16)
        return lifted

    def _step(self, frame: PCM, end: int) -> list[EndpointEvent]:
        s = self._settings
        is_speech = self._is_speech(frame)
        start = end - len(frame)
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
        self._analysed = end
        return self._grammar_end()

    def _grammar_end(self) -> list[EndpointEvent]:
        s = self._settings
        reading = self._reading
        quick = s.open_silence_s if reading is not None and reading.open else s.complete_silence_s
        if quick is None or reading is None or not reading.complete:
            return []
        if self._state is not _State.SPEAKING:
            return []
        vad_end = self._t(self._last_speech_end)
        if (
            self.quiet_s < s.min_vad_quiet_s - 1e-9
            or reading.covers_s < vad_end - s.coverage_slack_s - 1e-9
            or reading.trailing_blank_s < s.min_blank_s - 1e-9
        ):
            return []
        word_end = reading.covers_s - reading.trailing_blank_s
        stopped = max(vad_end - s.coverage_slack_s, min(vad_end, word_end))
        now = self._t(self._analysed)
        if now - stopped >= quick - 1e-9:
            self._state = _State.DONE
            return [SpeechEnded(now, stopped, complete=True)]
        return []

    def _confirm(self, end: int) -> list[EndpointEvent]:
        needed = self._settings.min_speech_s * self.rate - 0.5  # float tolerance
        if self._state is _State.CANDIDATE and self._voiced >= needed:
            self._state = _State.SPEAKING
            self._last_speech_end = end
            return [SpeechStarted(self._t(end), self._t(self._onset))]
        return []


def _level(frame: PCM) -> float:
    """A frame's RMS level in dBFS, its DC removed (``SILENT_DBFS`` for silence)."""
    x = frame.astype(np.float64)
    n, total = len(x), float(x.sum())
    power = (float(np.dot(x, x)) - total * total / n) / n / (32768.0 * 32768.0)
    return 10.0 * math.log10(power) if power > 1e-12 else SILENT_DBFS


class _LineLevels:
    """The last ``size`` frame levels, oldest first, with their median kept at hand (a sorted
    copy updated by bisection: it is asked for on every frame while waiting)."""

    def __init__(self, size: int, levels: Iterable[float] = ()) -> None:
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        for level in levels:
            self.add(level)

    def add(self, level: float) -> None:
        self._order.append(level)
        bisect.insort(self._sorted, level)
        if len(self._order) > self.size:
            del self._sorted[bisect.bisect_left(self._sorted, self._order.popleft())]

    def clear(self) -> None:
        self._order.clear()
        self._sorted.clear()

    def median(self) -> float | None:
        n = len(self._sorted)
        if not n:
            return None
        mid = n // 2
        return self._sorted[mid] if n % 2 else (self._sorted[mid - 1] + self._sorted[mid]) / 2

    def __iter__(self) -> Iterator[float]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)
