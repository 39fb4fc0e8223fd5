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

SILENT_DBFS = -120.0  # the level of an all-zero frame


def lift_db(peak_dbfs: float, target_dbfs: float, max_db: float, floor_dbfs: float) -> float:
    """The gain (dB) that brings a peak at ``peak_dbfs`` up to ``target_dbfs``: never below 0
    (loud audio is left alone), at most ``max_db``, and 0 while the peak is at ``floor_dbfs``
    or below (nothing heard yet is taken for speech)."""
    if peak_dbfs <= floor_dbfs:
        return 0.0
    return min(max_db, max(0.0, target_dbfs - peak_dbfs))


class SpeechPeak:
    """The loudest mean power over ``frames`` consecutive frames of ``frame`` samples heard so
    far, in dBFS; fed samples in any chunks (:meth:`add`) or one frame's power at a time
    (:meth:`add_power`).

    Once the peak reaches ``enough_dbfs`` nothing more can change what it is used for (a lift
    that is 0 stays 0: the peak only grows), so it is :attr:`settled` and ignores what follows.
    A caller at a usual level costs it their first syllable. Every call does this on the
    box's hot path, where, most likely, each numpy call is a point at which another call's
    thread can take the interpreter lock for a switch interval: with the tracking running on
    every frame, 16 SIP callers' codes were answered 0.15-1.2 s later, at the same CPU.
    """

    def __init__(self, frame: int, frames: int, *, enough_dbfs: float = 0.0) -> None:
        self.frame = frame
        self._frames = frames
        self.enough_dbfs = enough_dbfs
        self._left = np.zeros(0, dtype=np.float64)  # samples short of a whole frame
        self._recent: deque[float] = deque(maxlen=frames)  # mean square of the last frames
        self._sum = 0.0
        self.peak_dbfs = SILENT_DBFS
        self.settled = False

    def add(self, pcm: PCM) -> float:
        """Hear ``pcm`` (int16 samples); the loudest level so far."""
        if self.settled:
            return self.peak_dbfs
        x = np.concatenate([self._left, np.asarray(pcm, dtype=np.float64).reshape(-1)])
        whole = len(x) // self.frame * self.frame
        self._left = x[whole:]
        if whole:
            powers = (x[:whole].reshape(-1, self.frame) ** 2).mean(axis=1)
            for p in powers.tolist():
                self.add_power(p / (32768.0 * 32768.0))
        return self.peak_dbfs

    def add_power(self, power: float) -> float:
        """Hear one frame of mean square ``power`` (full scale 1.0); the loudest level so far."""
        if self.settled:
            return self.peak_dbfs
        if len(self._recent) == self._frames:
            self._sum -= self._recent[0]
        self._recent.append(power)
        self._sum += power
        if len(self._recent) == self._frames and self._sum > 1e-12 * self._frames:
            level = 10.0 * math.log10(self._sum / self._frames)
            if level > self.peak_dbfs:
                self.peak_dbfs = level
                self.settled = level >= self.enough_dbfs
        return self.peak_dbfs
