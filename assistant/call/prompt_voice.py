"""The prompt voice: turns a :class:`~assistant.core.dialog.Say` into audio at the call's rate.

A prompt is rendered segment by segment (:meth:`assistant.language.prompts.Prompts.segments`):

* text segments are synthesised (or, for a prompt with no parameters, taken whole from a
  recorded prompt pack: ``<pack_dir>/<prompt_id>.wav``);
* digit runs are read digit by digit from one clip per digit (``<pack_dir>/digit_<d>.wav`` when
  recorded, else the synthesised digit word), with a pause between digits and a longer one
  between groups. Digits are never given to the synthesiser as a number ("472" would be read
  "four hundred and seventy-two").

Fixed prompts (no parameters), digit clips and the template text around parameters are rendered
once and cached (thread-safe), so a password prompt costs only its concatenation. Pack files may
be any WAV format :func:`assistant.audio.wav.read_wav` reads; they are converted on load.
"""

from __future__ import annotations

import logging
import string
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.audio.resample import resample_audio
from assistant.audio.wav import read_wav
from assistant.core.dialog import Say
from assistant.core.errors import ConfigError, SynthesizerError
from assistant.core.ports import PCM, Audio, Synthesizer
from assistant.language.prompts import DigitSegment, Prompts, TextSegment, group_digits

log = logging.getLogger(__name__)

DIGITS = "0123456789"


@dataclass(frozen=True)
class VoiceTiming:
    """Pauses (seconds) used when assembling a prompt, and the silence trim level."""

    digit_gap_s: float = 0.25
    group_gap_s: float = 0.5
    segment_gap_s: float = 0.2  # between a text piece and a digit run
    lead_s: float = 0.0
    tail_s: float = 0.15
    trim_db: float = 40.0  # clip edges quieter than peak - trim_db are cut...
    keep_s: float = 0.01  # ...leaving this much

    def __post_init__(self) -> None:
        for name in ("digit_gap_s", "group_gap_s", "segment_gap_s", "lead_s", "tail_s", "keep_s"):
            value = getattr(self, name)
            if not 0.0 <= value <= 5.0:
                raise ConfigError(f"voice timing {name} must be in [0, 5] s, got {value!r}")
        if not 0.0 < self.trim_db <= 90.0:
            raise ConfigError(f"voice timing trim_db must be in (0, 90], got {self.trim_db!r}")


def trim_silence(
    samples: PCM, rate: int, *, below_peak_db: float = 40.0, keep_s: float = 0.01
) -> PCM:
    """``samples`` without leading and trailing stretches quieter than peak - ``below_peak_db``.

    Works on 5 ms blocks' peaks, keeps ``keep_s`` around the sound; all-silent input gives an
    empty array.
    """
    x = np.asarray(samples, dtype=np.int16)
    if len(x) == 0:
        return x.copy()
    mags = np.abs(x.astype(np.int32))
    peak = int(mags.max())
    if peak == 0:
        return x[:0].copy()
    threshold = max(1.0, peak * 10.0 ** (-below_peak_db / 20.0))
    loud = np.flatnonzero(mags >= threshold)
    keep = round(keep_s * rate)
    start = max(0, int(loud[0]) - keep)
    end = min(len(x), int(loud[-1]) + 1 + keep)
    return x[start:end].copy()


def _silence(seconds: float, rate: int) -> PCM:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def _speakable(text: str) -> bool:
    return any(c.isalnum() for c in text)


class PromptVoice:
    """Renders prompts for one sample rate (8000 for the phone, 16000 for a microphone).

    ``synthesizer`` may be ``None`` when a pack covers every prompt and digit used; rendering
    anything else then raises :class:`SynthesizerError` (``prompt_audio_missing``).
    """

    def __init__(
        self,
        prompts: Prompts,
        synthesizer: Synthesizer | None,
        rate: int,
        pack_dir: Path | None = None,
        timing: VoiceTiming | None = None,
    ) -> None:
        if not isinstance(rate, int) or rate <= 0:
            raise ConfigError(f"voice sample rate must be a positive integer, got {rate!r}")
        if pack_dir is not None and not Path(pack_dir).is_dir():
            raise ConfigError(f"prompt pack folder {pack_dir} does not exist")
        self.prompts = prompts
        self.synthesizer = synthesizer
        self.rate = rate
        self.pack_dir = Path(pack_dir) if pack_dir is not None else None
        self.timing = timing or VoiceTiming()
        self._lock = threading.RLock()
        self._fixed: dict[str, Audio] = {}
        self._digits: dict[str, PCM] = {}
        self._literals: dict[str, PCM] = {}
        if self.pack_dir is not None:
            self._check_pack(self.pack_dir)

    # -- public ------------------------------------------------------------------------------

    def render(self, say: Say) -> Audio:
        """``say`` as mono int16 at :attr:`rate`."""
        segments = self.prompts.segments(say)  # validates the prompt id and parameters
        template = self.prompts.templates[say.prompt]
        if self._is_fixed(template):
            with self._lock:
                cached = self._fixed.get(say.prompt)
                if cached is None:
                    cached = self._render_fixed(say.prompt, segments)
                    cached.samples.flags.writeable = False  # shared by every call
                    self._fixed[say.prompt] = cached
                return cached
        literals = {lit for lit, _n, _s, _c in string.Formatter().parse(template) if lit}
        pieces: list[PCM] = []
        for seg in segments:
            if isinstance(seg, DigitSegment):
                pieces.append(self._digit_run(seg))
            elif _speakable(seg.text):
                pieces.append(self._text(seg.text, cache=seg.text in literals))
        return self._assemble(pieces)

    def preload(self) -> int:
        """Render every fixed prompt, every digit and the text around the parameters of the
        other prompts now (start-up), so a read-back or a password is only a concatenation
        of cached clips when a caller is waiting for it; returns how many."""
        count = 0
        for prompt_id, template in self.prompts.templates.items():
            if self._is_fixed(template):
                self.render(Say(prompt_id))
                count += 1
                continue
            for literal, _name, _spec, _conv in string.Formatter().parse(template):
                if literal and _speakable(literal):
                    self._text(literal, cache=True)
                    count += 1
        for d in DIGITS:
            self._digit(d)
            count += 1
        return count

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _is_fixed(template: str) -> bool:
        return all(name is None for _l, name, _s, _c in string.Formatter().parse(template))

    def _check_pack(self, pack: Path) -> None:
        ids = set(self.prompts.templates)
        for path in sorted(pack.glob("*.wav")):
            stem = path.stem
            if stem in ids and not self._is_fixed(self.prompts.templates[stem]):
                log.warning("prompt pack: %s ignored (prompt %r has parameters)", path.name, stem)
            elif stem not in ids and stem not in {f"digit_{d}" for d in DIGITS}:
                log.warning("prompt pack: %s ignored (no such prompt id)", path.name)

    def _pack_file(self, stem: str) -> Path | None:
        if self.pack_dir is None:
            return None
        path = self.pack_dir / f"{stem}.wav"
        return path if path.is_file() else None

    def _synth(self, text: str, what: str) -> PCM:
        if self.synthesizer is None:
            raise SynthesizerError(
                f"no recorded audio and no synthesizer for {what}", code="prompt_audio_missing"
            )
        audio = resample_audio(self.synthesizer.synthesize(text), self.rate)
        return self._trim(audio.samples)

    def _trim(self, samples: PCM) -> PCM:
        t = self.timing
        return trim_silence(samples, self.rate, below_peak_db=t.trim_db, keep_s=t.keep_s)

    def _render_fixed(self, prompt_id: str, segments: list[DigitSegment | TextSegment]) -> Audio:
        pack = self._pack_file(prompt_id)
        if pack is not None:
            return read_wav(pack, self.rate)
        text = "".join(seg.text for seg in segments if isinstance(seg, TextSegment))
        pieces = [self._synth(text, f"prompt {prompt_id!r}")] if _speakable(text) else []
        return self._assemble(pieces)

    def _text(self, text: str, *, cache: bool) -> PCM:
        if not cache:
            return self._synth(text, "prompt text")
        with self._lock:
            clip = self._literals.get(text)
            if clip is None:
                clip = self._synth(text, "prompt text")
                self._literals[text] = clip
            return clip

    def _digit(self, d: str) -> PCM:
        with self._lock:
            clip = self._digits.get(d)
            if clip is None:
                pack = self._pack_file(f"digit_{d}")
                if pack is not None:
                    clip = self._trim(read_wav(pack, self.rate).samples)
                else:
                    clip = self._synth(self.prompts.digit_words[d], f"digit clip digit_{d}")
                self._digits[d] = clip
            return clip

    def _digit_run(self, seg: DigitSegment) -> PCM:
        bad = set(seg.digits) - set(DIGITS)
        if bad:  # message without the digits themselves (they may be a code or a password)
            raise SynthesizerError(
                "digit parameter holds non-digit characters", code="prompt_digits_invalid"
            )
        groups = group_digits(seg.digits, seg.groups) if seg.groups else [seg.digits]
        digit_gap = _silence(self.timing.digit_gap_s, self.rate)
        group_gap = _silence(self.timing.group_gap_s, self.rate)
        parts: list[PCM] = []
        for gi, group in enumerate(g for g in groups if g):
            if gi:
                parts.append(group_gap)
            for di, d in enumerate(group):
                if di:
                    parts.append(digit_gap)
                parts.append(self._digit(d))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def _assemble(self, pieces: list[PCM]) -> Audio:
        t = self.timing
        gap = _silence(t.segment_gap_s, self.rate)
        parts: list[PCM] = [_silence(t.lead_s, self.rate)]
        for i, piece in enumerate(p for p in pieces if len(p)):
            if i:
                parts.append(gap)
            parts.append(piece)
        parts.append(_silence(t.tail_s, self.rate))
        return Audio(np.concatenate(parts), self.rate)
