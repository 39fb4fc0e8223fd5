"""Input gain for the acoustic model: a quiet caller's utterance heard at a level it knows.

The model normalises its features with fixed global constants (CMVN inside the graph), so the
input level shifts every log-mel feature. Measured here on the corpus speaker (active level
-14 dBFS), 30 codes over a μ-law line, detector and model together: whole codes 30 of 30 at
-24 dB, 29 at -30, 27 at -36 and 13 at -42 dB (about -56 dBFS); the same -42 dB codes raised
again by 24 dB after the line: 29 of 30, and 12 dB above the original level (peaks clipped):
30 of 30. A telephone talker at the nominal -26 dBov who is 24 dB quieter is at about -50
dBFS: on the edge of that cliff.

So a quiet utterance is heard again at its end, raised by :meth:`InputGain.gain_db`: the gap
between a target and the loudest 100 ms of the utterance's own audio (:class:`SpeechPeak`),
when it is at least ``min_gain_db`` (a caller at a usual level is heard as they came), at most
``max_gain_db``, and none while nothing heard is above ``floor_dbfs`` (a silent or idle line
is not turned into speech). One gain for the whole utterance, known only once it is over:
raised chunk by chunk as its loudest part grew, a word split across two model steps was heard
at two levels, and short answers came back empty (2 of the corpus's 500 telephone answers as
recorded and 1 of 100 over GSM, at -24 to -34 dBFS). The streaming reading, which ends a
turn early, is not raised. Features are log-mel energies of int16-scale samples with no
dither and no energy floor, so a gain of ``g`` dB on the samples adds exactly
``g * ln(10) / 10`` to every feature: the gain is applied there, where it cannot clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from assistant.audio.level import SpeechPeak, lift_db
from assistant.core.errors import ConfigError

#: Added to every log-mel feature per dB of gain on the samples (natural-log power).
FEATURE_PER_DB = math.log(10.0) / 10.0


@dataclass(frozen=True)
class InputGain:
    """How much a quiet utterance is raised before the model. Validated on construction."""

    target_dbfs: float = -26.0  # the loudest 100 ms of speech is raised to this
    min_gain_db: float = 6.0  # a smaller gap is left alone
    max_gain_db: float = 30.0
    floor_dbfs: float = -65.0  # nothing this quiet or quieter is taken for speech
    window_s: float = 0.1  # the span the loudest level is measured over
    frame_s: float = 0.01

    def __post_init__(self) -> None:
        for name in (
            "target_dbfs",
            "min_gain_db",
            "max_gain_db",
            "floor_dbfs",
            "window_s",
            "frame_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"input gain {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"input gain {name} must be finite, got {value!r}")
        if not -60.0 <= self.target_dbfs <= 0.0:
            raise ConfigError(f"input gain target must be in [-60, 0] dBFS, not {self.target_dbfs}")
        if not 0.0 <= self.max_gain_db <= 60.0:
            raise ConfigError(f"input gain max_gain_db must be in [0, 60], not {self.max_gain_db}")
        if not 0.0 <= self.min_gain_db <= self.max_gain_db:
            raise ConfigError("input gain min_gain_db must be in [0, max_gain_db]")
        if self.floor_dbfs >= self.target_dbfs:
            raise ConfigError("input gain floor_dbfs must be below target_dbfs")
        if self.frame_s <= 0 or self.window_s < self.frame_s:
            raise ConfigError("input gain needs 0 < frame_s <= window_s")

    def gain_db(self, peak_dbfs: float) -> float:
        """The gain for an utterance whose loudest window is at ``peak_dbfs`` (0: none)."""
        db = lift_db(peak_dbfs, self.target_dbfs, self.max_gain_db, self.floor_dbfs)
        return db if db >= self.min_gain_db else 0.0

    def peak(self, rate: int) -> SpeechPeak:
        """A tracker of an utterance's loudest 100 ms, settled once no gain can follow."""
        frame = max(1, round(self.frame_s * rate))
        enough = self.target_dbfs - self.min_gain_db
        return SpeechPeak(frame, max(1, round(self.window_s / self.frame_s)), enough_dbfs=enough)
