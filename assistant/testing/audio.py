"""Deterministic audio stand-ins for tests: a fake synthesiser and synthetic signals.

Nothing here needs espeak-ng or a sound device.
"""

from __future__ import annotations

import threading
import zlib

import numpy as np

from assistant.core.errors import SynthesizerError
from assistant.core.ports import PCM, Audio


def tone(
    freq_hz: float, seconds: float, rate: int, *, dbfs: float = -12.0, ramp_s: float = 0.005
) -> PCM:
    """A sine tone at ``dbfs`` peak with short raised-cosine ramps (no clicks)."""
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    x = np.sin(2.0 * np.pi * freq_hz * t) * (32767.0 * 10.0 ** (dbfs / 20.0))
    r = min(round(ramp_s * rate), n // 2)
    if r > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)
        x[:r] *= ramp
        x[n - r :] *= ramp[::-1]
    out: PCM = np.rint(x).astype(np.int16)
    return out


def silence(seconds: float, rate: int) -> PCM:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def noise(seconds: float, rate: int, *, dbfs: float = -60.0, seed: int = 0) -> PCM:
    """White Gaussian noise at ``dbfs`` RMS, seeded."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(round(seconds * rate)) * (32768.0 * 10.0 ** (dbfs / 20.0))
    out: PCM = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return out


def concat(*parts: PCM) -> PCM:
    if not parts:
        return np.zeros(0, dtype=np.int16)
    out: PCM = np.concatenate([np.asarray(p, dtype=np.int16) for p in parts])
    return out


def mix(a: PCM, b: PCM) -> PCM:
    """Sum of two signals (the shorter zero-padded), saturated to int16."""
    n = max(len(a), len(b))
    out = np.zeros(n, dtype=np.float64)
    out[: len(a)] += a
    out[: len(b)] += b
    mixed: PCM = np.clip(out, -32768, 32767).astype(np.int16)
    return mixed


class FakeSynthesizer:
    """A :class:`~assistant.core.ports.Synthesizer` that turns text into a tone.

    The tone lasts ``seconds_per_char`` per non-space character (at least one character's
    worth) and its pitch depends on the text (CRC-32), so equal texts give equal audio and
    different texts almost always differ. ``calls`` records every text synthesised; set
    ``fail`` to make the next calls raise it.
    """

    name = "fake"

    def __init__(self, rate: int = 16000, *, seconds_per_char: float = 0.05) -> None:
        self.rate = rate
        self.seconds_per_char = seconds_per_char
        self.calls: list[str] = []
        self.fail: SynthesizerError | None = None
        self.closed = False
        self._lock = threading.Lock()

    def duration_for(self, text: str) -> float:
        chars = max(1, sum(1 for c in text if not c.isspace()))
        return chars * self.seconds_per_char

    def synthesize(self, text: str) -> Audio:
        if self.closed:
            raise SynthesizerError("fake synthesizer is closed", code="tts_closed")
        if self.fail is not None:
            raise self.fail
        if not text.strip():
            raise SynthesizerError("nothing to synthesise (empty text)", code="tts_empty_text")
        with self._lock:
            self.calls.append(text)
        freq = 200.0 + zlib.crc32(text.encode("utf-8")) % 800
        return Audio(tone(freq, self.duration_for(text), self.rate, dbfs=-6.0), self.rate)

    def close(self) -> None:
        self.closed = True
