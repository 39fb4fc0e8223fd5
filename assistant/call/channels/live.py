"""The live channel: the dialog runtime's ears and mouth over a live call.

:class:`LiveChannel` runs over any :class:`~assistant.core.ports.CallMedia` (a SIP call, the sound
card): streaming recognition, end-of-utterance and no-input detection counted in audio samples,
keypad entry, barge-in, per-stage latency. Recorded turns go through
:mod:`assistant.call.channels.replay` instead.

A live turn ends the way :mod:`assistant.audio.endpoint` describes: after a long silence, or,
with a :class:`GrammarJudge`, as soon as the recogniser's running reading holds everything the
turn expects (every digit still missing, or a clear yes or no) and a short silence confirms
it. The channel asks the session for that reading (:func:`~assistant.core.ports.partial_reading`)
only while the caller is quiet, and for a flushed one (one extra model step) at most once per
pause, and only when the reading could then be complete. Once a flushed reading is complete,
the silence after it is kept from the recogniser, so that a turn that ends complete ends on
that very step (``end`` runs no model step at the moment the reply is due); speech, or any
other end of the turn, hands the kept audio over first. The
recogniser hears a turn from ``lead_in_s`` before the caller's speech started (the silence
before it costs no model work; a turn that ends without speech is heard whole after all).
Voice activity comes from the injected detector (Silero VAD in the box) or frame energy. A
barge-in flushes the queued prompt in the very frame in which the caller's speech is
confirmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from assistant.audio.endpoint import (
    Endpointer,
    EndpointSettings,
    MaxSpeech,
    SpeechEnded,
    SpeechStarted,
    TurnReading,
)
from assistant.audio.endpoint import NoInput as EpNoInput
from assistant.audio.resample import StreamResampler, resample
from assistant.audio.vad import VoiceActivity
from assistant.call.channels.timing import StageSink, endpoint_settings, no_stage
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import SayResult
from assistant.core.dialog import Event, Heard, HungUp, Keypad, Listen, NoInput, Outcome, Say
from assistant.core.errors import ConfigError
from assistant.core.ports import (
    PCM,
    AudioFrame,
    CallMedia,
    DtmfDigit,
    ListenMode,
    ListenSpec,
    PartialReading,
    RecognizerSession,
    RemoteHangup,
    hear_context,
    partial_reading,
)

log = logging.getLogger("assistant.call.prompt_voice")


class _DigitReadingLike(Protocol):
    @property
    def digits(self) -> str: ...

    @property
    def restart(self) -> bool: ...


class TurnReader(Protocol):
    """The dialog's own reading of words (:class:`assistant.language.numbers.NumberReader`)."""

    def read_digits(self, text: str) -> _DigitReadingLike: ...

    def read_yesno(self, text: str) -> object | None: ...

    def number_words(self) -> tuple[str, ...]: ...


class GrammarJudge:
    """Whether a running reading already holds everything a turn expects.

    Digits: exactly the ``spec.expected_digits`` still missing, read by the dialog's number
    reader (no restart word). Yes/no: a clear yes or no (the reader's answer is not ``None``).
    Never when a word of the reading scores below ``low_confidence`` (the dialog's threshold
    for reading a digit back as uncertain), nor in free mode.
    """

    FLUSH_WITHIN = 2
    URGENT_WITHIN = 1  # see flush_is_urgent

    def __init__(self, reader: TurnReader, *, low_confidence: float = 0.5) -> None:
        if not 0.0 <= low_confidence <= 1.0:
            raise ConfigError(f"low_confidence must be in [0, 1], got {low_confidence!r}")
        self.reader = reader
        self.low_confidence = low_confidence

    def complete(self, spec: ListenSpec, reading: PartialReading) -> bool:
        if not reading.text.strip():
            return False
        if any(c < self.low_confidence for c in reading.word_confidences):
            return False
        if spec.mode is ListenMode.DIGITS:
            if not spec.expected_digits:
                return False
            digits = self.reader.read_digits(reading.text)
            return not digits.restart and len(digits.digits) == spec.expected_digits
        if spec.mode is ListenMode.YESNO:
            return self.reader.read_yesno(reading.text) is not None
        return False

    def still_open(self, spec: ListenSpec, reading: PartialReading) -> bool:
        """Whether a digit turn's reading ends on a word the next one may still change: a
        tens or hundreds word of the reader's tables ("bốn mươi" is 40 and "bốn mươi ba" 43,
        as many digits; "mười" is 10 and "mười lăm" 15)."""
        if spec.mode is not ListenMode.DIGITS:
            return False
        words = reading.text.split()
        return bool(words) and words[-1] in self.reader.number_words()

    def worth_flushing(self, spec: ListenSpec, reading: PartialReading | None) -> bool:
        """Whether a flushed reading (one extra model step over the audio the model has not
        yet heard in a whole chunk, 0.4 s at most) could be complete: a yes/no turn always; a
        digit turn when the running reading lacks at most :attr:`FLUSH_WITHIN` digits (more
        than a fast reader says in 0.4 s), so that the pauses between the first groups of a
        code cost no model work."""
        if spec.mode is ListenMode.YESNO:
            return True
        missing = self._missing(spec, reading)
        return missing is not None and missing <= self.FLUSH_WITHIN

    def flush_is_urgent(self, spec: ListenSpec, reading: PartialReading | None) -> bool:
        """Whether a flushed step worth running should go before other calls' streaming steps:
        a yes/no turn's, and a digit turn's when the running reading lacks one digit at most.
        Lacking two, it completes the turn only when both were said in the last 0.4 s; it is
        still run, but in its turn: when many callers finish their codes in the same seconds,
        those long shots (one and a half per code, in a simulated reading) no longer hold up
        the steps that end a turn."""
        missing = self._missing(spec, reading)
        return missing is None or missing <= self.URGENT_WITHIN

    def _missing(self, spec: ListenSpec, reading: PartialReading | None) -> int | None:
        """Digits a digit turn's running reading still lacks; ``None`` for any other turn."""
        if spec.mode is not ListenMode.DIGITS or not spec.expected_digits:
            return None
        have = len(self.reader.read_digits(reading.text).digits) if reading is not None else 0
        return spec.expected_digits - have


class _LeadIn:
    """A turn's audio held back from the recogniser until the caller starts to speak.

    The recogniser then hears the last ``keep`` samples before that and everything after; the
    samples it never heard are counted (:attr:`skipped`) so its readings can be put on the
    endpointer's clock. If the turn ends without speech, all held audio (up to ``limit``
    samples) is heard after all, so quiet speech the detector missed is still recognised.
    """

    def __init__(self, keep: int, limit: int) -> None:
        self.keep = keep
        self.limit = limit
        self.held: list[PCM] = []
        self.size = 0
        self.skipped = 0
        self.open = False

    def hold(self, pcm: PCM) -> None:
        self.held.append(pcm)
        self.size += len(pcm)
        while self.size - len(self.held[0]) >= self.limit:
            self.size -= len(self.held[0])
            self.skipped += len(self.held.pop(0))

    def release(self, keep: int | None = None) -> list[PCM]:
        """Open the gate: the held audio the recogniser is to hear (the last ``keep`` samples,
        or all of it)."""
        keep = self.size if keep is None else keep
        out: list[PCM] = []
        size = 0
        for pcm in reversed(self.held):
            if size >= keep:
                break
            take = pcm[-(keep - size) :] if size + len(pcm) > keep else pcm
            out.append(take)
            size += len(take)
        self.skipped += self.size - size
        self.held, self.size, self.open = [], 0, True
        return out[::-1]


class LineTail:
    """The last ``size`` samples the line brought, by their position in the call's audio.

    Every received audio frame goes in, during prompts too; a turn takes the stretch just
    before its own audio from here as the recogniser's context (:attr:`LiveSettings.context_s`).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.parts: list[PCM] = []
        self.kept = 0
        self.end = 0  # samples the line has brought, in all

    def append(self, pcm: PCM) -> None:
        self.parts.append(pcm)
        self.kept += len(pcm)
        self.end += len(pcm)
        while self.parts and self.kept - len(self.parts[0]) >= self.size:
            self.kept -= len(self.parts.pop(0))

    def between(self, start: int, stop: int) -> PCM:
        """The kept samples at positions ``start`` to ``stop`` (less where they are gone)."""
        pos = self.end - self.kept
        out: list[PCM] = []
        for part in self.parts:
            a, b = max(start, pos), min(stop, pos + len(part))
            if a < b:
                out.append(part[a - pos : b - pos])
            pos += len(part)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def worth_context(pcm: PCM, min_dbfs: float | None) -> bool:
    """Whether the line's audio before a turn is heard as context: any audio when
    ``min_dbfs`` is ``None``, else audio at least that loud (:func:`noisy_enough`)."""
    return bool(len(pcm)) and (min_dbfs is None or noisy_enough(pcm, min_dbfs))


def noisy_enough(pcm: PCM, min_dbfs: float) -> bool:
    """Whether the line's audio is loud enough (RMS at least ``min_dbfs``) to be worth hearing
    as context: the model hears speech better through a noisy line it has heard first, and
    worse after a quiet one."""
    if not len(pcm):
        return False
    power = float(np.mean(np.asarray(pcm, dtype=np.float64) ** 2)) / 32768.0**2
    return power > 0 and 10.0 * np.log10(power) >= min_dbfs


@dataclass(frozen=True)
class LiveSettings:
    """Timing of a live call (seconds)."""

    write_ahead_s: float = 0.3  # reply audio kept queued ahead of the line (0.2-0.5 s)
    play_chunk_s: float = 0.1
    interdigit_s: float = 3.0  # keypad entry ends this long after the last key, or on '#'
    barge_in_speech: bool = True  # caller speech stops a prompt (off for loudspeaker demos)
    barge_in_keys: bool = True
    preroll_s: float = 0.4  # audio kept from before a barge-in is detected
    idle_guard_s: float = 30.0  # no media at all for this long (wall clock): the line is dead
    #: the recogniser hears a turn from this long before the caller's speech started (None:
    #: from the start of the turn); the silence before costs no model work
    lead_in_s: float | None = 0.5
    #: ... after hearing the line's audio before that as context only (the model's caches, not
    #: words of the turn: the caller's own line noise, which the model then hears speech
    #: through better; README, "The line before the turn"). 0: no context.
    context_s: float = 1.2
    #: ... and for a yes/no (any turn but digits) only when the line is noisy: its audio
    #: before the turn at least this loud (RMS, dBFS). On the panel a quiet line's context cost
    #: answers (4 of the 500 recorded ones went unclear, their lines at -64 to -75 dBFS) while a
    #: noisy one's (pink noise, -50 to -31 dBFS) turned 9 unclear answers right; chosen on
    #: those, babble held out.
    context_min_dbfs: float = -55.0
    #: ... for digits, from this level (None: whatever the line's level, digital silence too).
    #: The first digit of a code is the one the model is least sure of; over a real telephone
    #: noise floor (-68 to -85 dBFS) the context took the right codes with a digit marked
    #: unsure from 43 to 26 of 150, none wrong (README, "The line before the turn").
    digits_context_min_dbfs: float | None = None

    def context_gate(self, mode: ListenMode) -> float | None:
        """The line level from which a turn in ``mode`` hears the line before it as context
        (``None``: always)."""
        return self.digits_context_min_dbfs if mode is ListenMode.DIGITS else self.context_min_dbfs

    def __post_init__(self) -> None:
        if not 0.02 <= self.write_ahead_s <= 2.0:
            raise ConfigError("write_ahead_s must be within 0.02..2 s")
        if self.lead_in_s is not None and not 0.2 <= self.lead_in_s <= 5.0:
            raise ConfigError("lead_in_s must be within 0.2..5 s (or None)")
        if not 0.0 <= self.context_s <= 5.0:
            raise ConfigError("context_s must be within 0..5 s")
        if self.interdigit_s <= 0 or self.play_chunk_s <= 0 or self.idle_guard_s <= 0:
            raise ConfigError("live timings must be positive")


class LiveChannel:
    """The dialog's channel over a live call. One per call, used from the call's thread."""

    def __init__(
        self,
        media: CallMedia,
        session: RecognizerSession,
        asr_rate: int,
        voice: PromptVoice,
        *,
        settings: LiveSettings | None = None,
        on_partial: Callable[[str], None] | None = None,
        stage: StageSink = no_stage,
        clock: Callable[[], float] = time.monotonic,
        vad: Callable[[int], VoiceActivity] | None = None,
        judge: GrammarJudge | None = None,
    ) -> None:
        """``vad`` makes a voice-activity detector stream for a rate (``None``: frame energy);
        ``judge`` ends turns early on a complete reading (``None``: after the silence only)."""
        if voice.rate != media.sample_rate:
            raise ConfigError(
                f"voice renders at {voice.rate} Hz but the line runs at {media.sample_rate} Hz"
            )
        self.media = media
        self.session = session
        self.asr_rate = asr_rate
        self.voice = voice
        self.settings = settings or LiveSettings()
        self.on_partial = on_partial
        self.stage = stage
        self.clock = clock
        self.vad = vad
        self.judge = judge
        self._pending_keys = ""
        self._pending_audio: list[PCM] = []
        self._speech_ended_at: float | None = None  # for the reply latency
        self._hung_up = False
        self._utterance_open = False
        self._lead: _LeadIn | None = None
        #: line audio kept from the recogniser after a flushed reading was complete (see _hear)
        self._hold: list[PCM] | None = None
        self._turn_clock = (0.0, 0.0)  # (clock at the turn's start, audio heard from before)
        s = self.settings
        heard = max(s.context_s + (s.lead_in_s or 0.0), EndpointSettings().noise_window_s)
        span = heard + s.preroll_s + 0.5
        #: the line's recent audio: the recogniser's context before a turn, and the line the
        #: turn's speech must start above (Endpointer.hear_line)
        self._tail = LineTail(round(span * media.sample_rate))
        self._context_gate: float | None = s.context_min_dbfs  # the turn's (context_gate)
        self._fed = 0  # the line position just after the last frame the endpointer heard
        #: the line as the last turn's endpointer heard it while waiting (Endpointer.line_levels)
        self._line_levels: tuple[float, ...] = ()

    # -- speaking -------------------------------------------------------------------------------

    def attach(self, stage: StageSink) -> None:
        self.stage = stage

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        if self._hung_up:
            return SayResult.HUNG_UP
        t0 = self.clock()
        pcm = self.voice.render(say).samples
        self.stage("tts", self.clock() - t0)
        rate = self.media.sample_rate
        chunk = max(1, int(self.settings.play_chunk_s * rate))
        barge = self._endpointer(rate, EndpointSettings(no_input_s=3600.0, max_speech_s=3600.0))
        # The line the caller's speech must start above: as the last turn heard it while
        # waiting (the line's recent audio ends with the caller's own words, just heard)
        if self._line_levels:
            barge.seed_line(self._line_levels)
        else:
            self._hear_line_before(barge, self._tail.end)
        preroll: list[PCM] = []
        preroll_len = int(self.settings.preroll_s * rate)
        pos = 0
        last_media = self.clock()
        while True:
            while pos < len(pcm) and self.media.queued_seconds() < self.settings.write_ahead_s:
                if pos == 0 and self._speech_ended_at is not None:
                    self.stage("reply_latency", self.clock() - self._speech_ended_at)
                    self._speech_ended_at = None
                self.media.play(pcm[pos : pos + chunk])
                pos += chunk
            if pos >= len(pcm) and self.media.queued_seconds() <= 0.0:
                return SayResult.DONE
            event = self.media.receive(timeout=0.02)
            if event is None:
                if self.clock() - last_media > self.settings.idle_guard_s:
                    self._hung_up = True
                    return SayResult.HUNG_UP
                continue
            last_media = self.clock()
            if isinstance(event, RemoteHangup):
                self._hung_up = True
                return SayResult.HUNG_UP
            if isinstance(event, AudioFrame):
                self._tail.append(event.samples)
            if isinstance(event, DtmfDigit):
                if interruptible and self.settings.barge_in_keys:
                    self.media.flush()
                    self._pending_keys += event.digit
                    return SayResult.INTERRUPTED
                continue
            if interruptible and self.settings.barge_in_speech:
                preroll.append(event.samples)
                while sum(len(p) for p in preroll) - len(preroll[0]) > preroll_len:
                    preroll.pop(0)
                if any(isinstance(e, SpeechStarted) for e in barge.feed(event.samples)):
                    self.media.flush()
                    self._pending_audio = preroll
                    log.info("barge-in during prompt %s", say.prompt)
                    return SayResult.INTERRUPTED

    # -- listening ------------------------------------------------------------------------------

    def listen(self, listen: Listen) -> Event:
        if self._hung_up:
            return HungUp()
        spec = listen.spec
        keys, self._pending_keys = self._pending_keys, ""
        if keys and (spec.mode is not ListenMode.DIGITS or keys.endswith("#")):
            return self._keys_done(keys)  # keyed during the prompt (barge-in)
        rate = self.media.sample_rate
        ep = self._endpointer(rate, endpoint_settings(spec))
        to_asr = StreamResampler(rate, self.asr_rate)
        lead = self.settings.lead_in_s
        self._lead = (
            _LeadIn(round(lead * rate), round((ep.settings.no_input_s + 1.0) * rate))
            if lead is not None
            else None
        )
        self._hold = None
        self.session.begin(spec)
        self._utterance_open = True
        self._context_gate = self.settings.context_gate(spec.mode)
        last_key_at = ep.now_s if keys else None
        last_media = self.clock()
        pending, self._pending_audio = self._pending_audio, []
        # audio time the endpointer will have heard from before this turn began (barge-in)
        self._turn_clock = (last_media, sum(len(p) for p in pending) / rate)
        tail = self._tail
        self._fed = tail.end - sum(len(p) for p in pending)
        self._hear_line_before(ep, self._fed)  # the line during the prompt
        if self._lead is None:
            self._hear_context(self._fed)
        try:
            for samples in pending:
                result = self._hear(ep, to_asr, samples, spec)
                if result is not None:
                    return result
            while True:
                event = self.media.receive(timeout=0.1)
                if event is None:
                    if self.clock() - last_media > self.settings.idle_guard_s:
                        self._hung_up = True
                        return HungUp()
                    continue
                last_media = self.clock()
                if isinstance(event, RemoteHangup):
                    self._hung_up = True
                    return HungUp()
                if isinstance(event, DtmfDigit):
                    keys += event.digit
                    if spec.mode is not ListenMode.DIGITS or event.digit == "#":
                        return self._keys_done(keys)
                    last_key_at = ep.now_s
                    continue
                assert isinstance(event, AudioFrame)
                tail.append(event.samples)
                if keys and last_key_at is not None and not ep.speaking:
                    self._fed += len(event.samples)
                    ep.feed(event.samples)
                    if ep.now_s - last_key_at >= self.settings.interdigit_s:
                        return self._keys_done(keys)
                    continue
                result = self._hear(ep, to_asr, event.samples, spec)
                if result is not None:
                    return result
        finally:
            self._line_levels = ep.line_levels
            if self._utterance_open:  # hang-up or keys mid-utterance: discard the speech
                self.session.end()
                self._utterance_open = False

    def _keys_done(self, keys: str) -> Keypad:
        self._speech_ended_at = self.clock()
        return Keypad(keys)

    def _endpointer(self, rate: int, settings: EndpointSettings) -> Endpointer:
        return Endpointer(rate, settings, vad=self.vad(rate) if self.vad is not None else None)

    def _hear(
        self, ep: Endpointer, to_asr: StreamResampler, samples: PCM, spec: ListenSpec
    ) -> Event | None:
        """Feed one frame; return the turn's event when the turn is over."""
        lead = self._lead
        self._fed += len(samples)
        if lead is not None and not lead.open:
            lead.hold(samples)
            events = ep.feed(samples)
            if ep.speaking or any(isinstance(e, SpeechStarted) for e in events):
                self._release_lead(to_asr, lead, lead.keep)
        elif self._hold is not None:
            self._hold.append(samples)
            events = ep.feed(samples)
            if ep.speaking and ep.quiet_s < ep.settings.min_vad_quiet_s:  # the caller goes on
                self._release_hold(to_asr)
        else:
            self._feed(to_asr, samples)
            events = ep.feed(samples)
        for e in events:
            result = self._turn_over(ep, to_asr, e)
            if result is not None:
                return result
        s = ep.settings
        if self.judge is None or s.complete_silence_s is None or not ep.speaking:
            return None
        if ep.quiet_s < s.min_vad_quiet_s:
            return None
        reading = partial_reading(self.session)
        flushed = False
        if ep.wants_reading and self.judge.worth_flushing(spec, reading):
            urgent = self.judge.flush_is_urgent(spec, reading)
            reading = partial_reading(self.session, flush=True, urgent=urgent)
            flushed = True
        if reading is None:
            return None
        skipped_s = lead.skipped / self.media.sample_rate if lead is not None else 0.0
        fact = TurnReading(
            self.judge.complete(spec, reading),
            reading.heard_s + skipped_s,
            reading.trailing_blank_s,
            self.judge.still_open(spec, reading),
        )
        if flushed and fact.complete and not fact.open and self._hold is None:
            # The silence that follows adds only blank to a complete reading: keep it from
            # the recogniser, so that if the turn ends complete, end() reuses this very model
            # step instead of running one more at the moment the reply is due. Speech, or any
            # other end of the turn, hands it all over first. Not after an open reading: the
            # unit that may follow ("bốn mươi [ba]") must reach the recogniser even when its
            # soft onset does not start the detector's speech.
            self._hold = []
        for e in ep.hear(fact):
            result = self._turn_over(ep, to_asr, e)
            if result is not None:
                return result
        return None

    def _release_lead(self, to_asr: StreamResampler, lead: _LeadIn, keep: int | None) -> None:
        """The caller spoke (or the turn is over): the recogniser hears the line before the
        released audio as context, then the released audio itself."""
        held = lead.release(keep)
        self._hear_context(self._fed - sum(len(p) for p in held))
        for samples in held:
            self._feed(to_asr, samples)

    def _hear_line_before(self, ep: Endpointer, start: int) -> None:
        """The line's last ``noise_window_s`` before position ``start``, as the line ``ep``'s
        speech must start above (:meth:`Endpointer.hear_line`)."""
        window = round(ep.settings.noise_window_s * self.media.sample_rate)
        ep.hear_line(self._tail.between(start - window, start))

    def _hear_context(self, start: int) -> None:
        """The line's :attr:`LiveSettings.context_s` before position ``start``, as context."""
        if self.settings.context_s <= 0:
            return
        rate = self.media.sample_rate
        pcm = self._tail.between(start - round(self.settings.context_s * rate), start)
        if worth_context(pcm, self._context_gate):
            hear_context(self.session, resample(pcm, rate, self.asr_rate))

    def _release_hold(self, to_asr: StreamResampler) -> None:
        held, self._hold = self._hold, None
        for samples in held or ():
            self._feed(to_asr, samples)

    def _feed(self, to_asr: StreamResampler, samples: PCM) -> None:
        partial = self.session.feed(to_asr.process(samples))
        if partial and self.on_partial is not None:
            self.on_partial(partial)

    def _turn_over(self, ep: Endpointer, to_asr: StreamResampler, e: object) -> Event | None:
        complete = isinstance(e, SpeechEnded) and e.complete
        if not complete and isinstance(e, SpeechEnded | MaxSpeech | EpNoInput):
            self._release_hold(to_asr)
        if isinstance(e, SpeechEnded | MaxSpeech):
            decided = self.clock()
            if not complete:
                # after a complete reading and a silence the resampler's last few samples add
                # nothing, and leaving them out lets end() reuse the flushed model step
                tail = to_asr.flush()
                if len(tail):
                    self.session.feed(tail)
            t0 = self.clock()
            recognition = self.session.end()
            self._utterance_open = False
            self.stage("asr_final", self.clock() - t0)
            lag = ep.now_s - e.speech_end_s if isinstance(e, SpeechEnded) else 0.0
            if isinstance(e, SpeechEnded):
                self.stage("endpoint_wait", e.at_s - e.speech_end_s)
            # How far behind the line the box was when it decided: wall time since the turn
            # began beyond the audio it had heard of it (frames waiting in the media's queue).
            # The reply latency counts it, and the final decoding, as the caller does.
            started, earlier_s = self._turn_clock
            backlog = max(0.0, (decided - started) - (ep.now_s - earlier_s))
            self.stage("rx_backlog", backlog)
            self._speech_ended_at = decided - lag - backlog
            return Heard(recognition)
        if isinstance(e, EpNoInput):
            if self._lead is not None and not self._lead.open:  # hear what was held after all
                self._release_lead(to_asr, self._lead, None)
                tail = to_asr.flush()
                if len(tail):
                    self.session.feed(tail)
            recognition = self.session.end()
            self._utterance_open = False
            if recognition.text.strip():  # quiet speech the endpointer missed
                self._speech_ended_at = self.clock()
                return Heard(recognition)
            return NoInput()
        return None

    def close(self, outcome: Outcome) -> None:
        if not self._hung_up:
            self.media.hangup()
            self._hung_up = True
