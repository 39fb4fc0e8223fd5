"""The loudest stretch of a stream so far, and the gain that lifts a quiet one to a target.

A voice-activity detector judges a caller partly by level: Silero VAD called 72 % of the corpus
speaker's speech frames speech at -50 dBFS and 36 % at -56 dBFS (97-99 % from -14 to -44
dBFS), and 96-98 % of the same frames 12 dB louder (8 kHz, μ-law, 10 codes; a scratch loop).
The endpointer (:mod:`assistant.audio.endpoint`) lifts the frames it shows its detector with
:class:`SpeechPeak` and :func:`lift_db`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from assistant.core.ports import PCM

SILENT_DBFS = -120.0


def lift_db(peak_dbfs: float, target_dbfs: float, max_db: float, floor_dbfs: float) -> float:
    """The gain (dB) that brings a peak at ``peak_dbfs`` up to ``target_dbfs``: never below 0
    (loud audio is left alone), at most ``max_db``, and 0 while the peak is at ``floor_dbfs``
    or below (nothing heard yet is taken for speech)."""
    if peak_dbfs <= floor_dbfs:
        return 0.0
    return min(max_db, max(0.0, target_dbfs - peak_dbfs))


class SpeechPeak:
    """The loudest ``frames``-frame mean power heard so far, in dBFS, fed in any chunks."""

    def __init__(self, frame: int, frames: int) -> None:
        self._frame = frame
        self._frames = frames
        self._left = np.zeros(0, dtype=np.float64)  # samples short of a whole frame
        self._recent: deque[float] = deque(maxlen=frames)  # mean square of the last frames
        self._sum = 0.0
        self.peak_dbfs = SILENT_DBFS

    def add(self, pcm: PCM) -> float:
        """Hear ``pcm`` (int16 samples); the loudest level so far."""
        x = np.concatenate([self._left, np.asarray(pcm, dtype=np.float64).reshape(-1)])
        whole = len(x) // self._frame * self._frame
        self._left = x[whole:]
        if not whole:
            return self.peak_dbfs
        powers = (x[:whole].reshape(-1, self._frame) ** 2).mean(axis=1) / (32768.0 * 32768.0)
        best = 0.0
        for p in powers.tolist():
            if len(self._recent) == self._frames:
                self._sum -= self._recent[0]
            self._recent.append(p)
            self._sum += p
            if len(self._recent) == self._frames:
                best = max(best, self._sum / self._frames)
        if best > 1e-12:
            self.peak_dbfs = max(self.peak_dbfs, 10.0 * math.log10(best))
        return self.peak_dbfs
