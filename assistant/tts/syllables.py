"""The syllable voice: a real speaker's recorded syllables, joined, behind the Synthesizer port.

Text goes through :class:`~assistant.tts.spoken.Normaliser` (NFC, lower case, spoken forms,
numbers and codes) into syllables and pauses; each syllable is a prepared clip of the voice pack
(``voices/lephuong/``, built by ``scripts/build_voice.py``). Joining:

* clips start and end at zero (faded when the pack was built), so silence between them, or
  none, never clicks;
* inside a word group ("quý khách") the gap is :attr:`JoinTiming.syllable_gap_s`, between
  groups :attr:`JoinTiming.word_gap_s`; punctuation gives the comma / colon / stop pauses;
* a syllable that ends a phrase is stretched by ``final_stretch`` (pitch kept, WSOLA), the
  others by ``inner_stretch``: isolated recordings are citation forms, so the phrase-final ones
  come out slightly longer, as in speech;
* the digits of a code are said whole, with the dialog's pauses: ``digit_gap_s`` (250 ms)
  between digits and ``group_gap_s`` (500 ms) between groups.

A word with a syllable the pack lacks is said by the ``fallback`` synthesiser (espeak-ng), that
word alone, levelled to the pack; each such word is logged once. Without a fallback it is an
error (``voice_word_missing``) naming the word. Output is at the pack's rate, or at
``output_rate`` through :mod:`assistant.audio.resample`. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from assistant.audio.resample import resample_audio
from assistant.core.errors import AssistantError, ConfigError, SynthesizerError
from assistant.core.paths import voices_dir
from assistant.core.ports import PCM, Audio, Synthesizer
from assistant.tts.clips import fade, speech_level_db, stretch, to_pcm16
from assistant.tts.pack import VoicePack
from assistant.tts.spoken import Item, Normaliser, Pause, PauseKind, Role, SpokenForms, Syllable

log = logging.getLogger(__name__)

DEFAULT_VOICE = "lephuong"
TARGET_LEVEL_DB = -20.0  # the pack's speech level (assistant.tts.clips.PrepSettings)


@dataclass(frozen=True)
class JoinTiming:
    """Pauses (seconds) and stretch factors used when joining syllables."""

    syllable_gap_s: float = 0.02
    word_gap_s: float = 0.08
    digit_gap_s: float = 0.25  # as assistant.call.prompt_voice.VoiceTiming
    group_gap_s: float = 0.5
    short_s: float = 0.12
    comma_s: float = 0.25
    colon_s: float = 0.3
    stop_s: float = 0.45
    lead_s: float = 0.05
    tail_s: float = 0.1
    inner_stretch: float = 1.0
    final_stretch: float = 1.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_stretch"):
                if not 0.5 <= value <= 2.0:
                    raise ConfigError(f"join timing {f.name} must be in [0.5, 2], got {value!r}")
            elif not 0.0 <= value <= 3.0:
                raise ConfigError(f"join timing {f.name} must be in [0, 3] s, got {value!r}")

    def pause(self, kind: PauseKind) -> float:
        return {
            PauseKind.WORD: self.word_gap_s,
            PauseKind.DIGIT: self.digit_gap_s,
            PauseKind.GROUP: self.group_gap_s,
            PauseKind.SHORT: self.short_s,
            PauseKind.COMMA: self.comma_s,
            PauseKind.COLON: self.colon_s,
            PauseKind.STOP: self.stop_s,
        }[kind]


def default_pack_dir(name: str = DEFAULT_VOICE) -> Path:
    return voices_dir() / name


@dataclass(frozen=True)
class Rendered:
    """Audio and where its pieces meet (sample indices), for checks and benchmarks."""

    audio: Audio
    joins: tuple[int, ...]
    fallback_words: tuple[str, ...]


class SyllableSynthesizer:
    """:class:`~assistant.core.ports.Synthesizer` over a voice pack (see the module doc).

    ``fallback`` makes the synthesiser for words the pack cannot say; it is called at most
    once, when the first such word comes up.
    """

    def __init__(
        self,
        pack: VoicePack | None = None,
        normaliser: Normaliser | None = None,
        *,
        fallback: Callable[[], Synthesizer] | None = None,
        output_rate: int | None = None,
        timing: JoinTiming | None = None,
    ) -> None:
        if output_rate is not None and (not isinstance(output_rate, int) or output_rate <= 0):
            raise ConfigError(f"output rate must be a positive integer, got {output_rate!r}")
        self.pack = pack or VoicePack(default_pack_dir())
        self.normaliser = normaliser or Normaliser(SpokenForms.load())
        self.timing = timing or JoinTiming()
        self.output_rate = output_rate
        self.name = f"syllables:{self.pack.name}"
        self._fallback_factory = fallback
        self._fallback: Synthesizer | None = None
        self._lock = threading.RLock()
        self._clips: dict[tuple[str, float, int], PCM] = {}
        self._foreign: dict[tuple[str, int], PCM] = {}
        self._logged: set[str] = set()
        self._closed = False

    # -- the port ----------------------------------------------------------------------------

    def synthesize(self, text: str) -> Audio:
        return self.render(text).audio

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fallback is not None:
                self._fallback.close()
                self._fallback = None

    # -- more ----------------------------------------------------------------------------------

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` the pack cannot say (they would go to the fallback)."""
        out: list[str] = []
        for unit in _units(self.normaliser.items(text)):
            if isinstance(unit, Pause):
                continue
            word, syllables = unit
            if any(s.text not in self.pack for s in syllables) and word not in out:
                out.append(word)
        return out

    def render(self, text: str) -> Rendered:
        """``text`` as audio, with the join positions."""
        if self._closed:
            raise SynthesizerError("synthesizer is closed", code="tts_closed")
        items = self.normaliser.items(text)
        if not any(isinstance(it, Syllable) for it in items):
            raise SynthesizerError("nothing to say (no words in the text)", code="tts_empty_text")
        rate = self.output_rate or self.pack.rate
        t = self.timing
        parts: list[PCM] = [_silence(t.lead_s, rate)]
        joins: list[int] = []
        fallback_words: list[str] = []
        length = len(parts[0])
        pending = 0.0
        for unit in _units(items):
            if isinstance(unit, Pause):
                pending = max(pending, t.pause(unit.kind))
                continue
            word, syllables = unit
            if all(s.text in self.pack for s in syllables):
                clips = [self._syllable(s, rate) for s in syllables]
            else:
                clips = [self._foreign_clip(word, rate)]
                fallback_words.append(word)
            for i, clip in enumerate(clips):
                gap = _silence(pending if i == 0 else t.syllable_gap_s, rate)
                pending = 0.0
                parts += [gap, clip]
                length += len(gap)
                joins.append(length)
                length += len(clip)
                joins.append(length)
        parts.append(_silence(t.tail_s, rate))
        audio = Audio(np.concatenate(parts), rate)
        return Rendered(audio, tuple(joins), tuple(fallback_words))

    # -- internals -----------------------------------------------------------------------------

    def _syllable(self, syl: Syllable, rate: int) -> PCM:
        """The clip of ``syl`` for its role at ``rate`` (prepared once, then cached)."""
        factor = {
            Role.INNER: self.timing.inner_stretch,
            Role.FINAL: self.timing.final_stretch,
            Role.DIGIT: 1.0,
        }[syl.role]
        key = (syl.text, factor, rate)
        with self._lock:
            clip = self._clips.get(key)
            if clip is None:
                raw = self.pack.clip(syl.text)
                if factor != 1.0:
                    raw = _finish(stretch(raw, self.pack.rate, factor), self.pack.rate)
                clip = self._at(raw, rate)
                self._clips[key] = clip
            return clip

    def _at(self, samples: PCM, rate: int) -> PCM:
        clip = resample_audio(Audio(samples, self.pack.rate), rate).samples
        if rate != self.pack.rate:
            clip = _finish(clip, rate)  # the resampler's ringing ends at zero again
        clip.flags.writeable = False
        return clip

    def _foreign_clip(self, word: str, rate: int) -> PCM:
        with self._lock:
            key = (word, rate)
            clip = self._foreign.get(key)
            if clip is not None:
                return clip
            synth = self._fallback_synth(word)
            try:
                audio = resample_audio(synth.synthesize(word), self.pack.rate)
            except AssistantError as exc:
                raise SynthesizerError(
                    f"the fallback voice could not say {word!r}: {exc.message}",
                    code="voice_fallback_failed",
                ) from exc
            x = audio.samples.astype(np.float64)
            level = speech_level_db(x, self.pack.rate)
            if np.isfinite(level):
                x *= 10.0 ** ((TARGET_LEVEL_DB - level) / 20.0)
            clip = self._at(_finish(_trim(x), self.pack.rate), rate)
            self._foreign[key] = clip
            if word not in self._logged:
                self._logged.add(word)
                log.warning(
                    "syllable voice %s cannot say %r: said by %s", self.pack.name, word, synth.name
                )
            return clip

    def _fallback_synth(self, word: str) -> Synthesizer:
        if self._fallback is None:
            if self._fallback_factory is None:
                raise SynthesizerError(
                    f"the voice pack {self.pack.name} cannot say {word!r} and there is no "
                    "fallback voice (add a spoken form to data/spoken_forms.toml, or the "
                    "syllable to the pack: scripts/build_voice.py)",
                    code="voice_word_missing",
                )
            self._fallback = self._fallback_factory()
        return self._fallback


Unit = Pause | tuple[str, list[Syllable]]


def _units(items: Sequence[Item]) -> list[Unit]:
    """Pauses, and syllables by the word group they belong to (written word, syllables)."""
    out: list[Unit] = []
    current: list[Syllable] = []
    for item in items:
        if isinstance(item, Pause):
            if current:
                out.append((current[0].word, current))
                current = []
            out.append(item)
            continue
        current.append(item)
        if item.group_end:
            out.append((item.word, current))
            current = []
    if current:
        out.append((current[0].word, current))
    return out


def _silence(seconds: float, rate: int) -> PCM:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def _trim(x: np.ndarray, below_peak_db: float = 40.0) -> np.ndarray:
    mags = np.abs(x)
    if len(x) == 0 or mags.max() == 0:
        return x[:0]
    loud = np.flatnonzero(mags >= mags.max() * 10.0 ** (-below_peak_db / 20.0))
    return x[int(loud[0]) : int(loud[-1]) + 1]


def _finish(x: np.ndarray, rate: int) -> PCM:
    return to_pcm16(fade(x, rate, 0.008))


def needed_syllables(
    templates: dict[str, str],
    digit_words: dict[str, str],
    ordinals: dict[str, str],
    normaliser: Normaliser,
) -> dict[str, list[str]]:
    """Every syllable the box can say with ``data/prompts.toml``, and where each comes from
    ("prompt greeting", "digits", "ordinals", "counts"): the text of every prompt (around its
    placeholders), the digit words, the ordinals and every quantity a count can be."""
    import string

    needed: dict[str, list[str]] = {}

    def add(text: str, where: str) -> None:
        for syl in normaliser.syllables(text):
            needed.setdefault(syl, [])
            if where not in needed[syl]:
                needed[syl].append(where)

    for prompt_id, template in templates.items():
        for literal, _name, _spec, _conv in string.Formatter().parse(template):
            if literal:
                add(literal, f"prompt {prompt_id}")
    for word in digit_words.values():
        add(word, "digits")
    for word in ordinals.values():
        add(word, "ordinals")
    for word in sorted(normaliser.forms.numbers.vocabulary()):
        add(word, "counts")
    return needed
