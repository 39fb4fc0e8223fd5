"""G.711 μ-law and A-law in numpy, bit-exact with the classic reference (Sun ``g711.c``, which
``audioop`` also used), and a simulated telephone channel.

Encoders take int16 samples and return uint8 codes; decoders do the reverse. Both go through
lookup tables built once at import (65536 and 256 entries), so they are fast on any length.

A-law codes equal those of ITU-T G.191's reference ``alaw_compress`` for every input. μ-law codes
equal audioop's (and sox's and most SIP stacks', which share Sun's code); G.191's
``ulaw_compress`` rounds negative inputs differently and gives a code one step away for 508 of
the 65536 inputs (tests/test_audio.py documents exactly which).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from assistant.audio.resample import resample
from assistant.core.errors import AudioError
from assistant.core.ports import PCM, Audio

Codes = npt.NDArray[np.uint8]
Law = Literal["ulaw", "alaw"]

PHONE_RATE = 8000

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # on the 14-bit magnitude
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_ulaw_encode_table() -> Codes:
    """Codes for every int16 value, indexed by ``value + 32768``."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, arithmetic shift
    negative = pcm < 0
    mask = np.where(negative, 0x7F, 0xFF)
    mag = np.minimum(np.where(negative, -pcm, pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")  # first segment whose end >= mag
    seg_c = np.minimum(seg, 7)
    uval = (seg_c << 4) | ((mag >> (seg_c + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F ^ mask, uval ^ mask)
    return code.astype(np.uint8)


def _build_ulaw_decode_table() -> PCM:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode_table() -> Codes:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit, arithmetic shift
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    mag = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    seg_c = np.minimum(seg, 7)
    shift = np.where(seg_c < 2, 1, seg_c)
    aval = (seg_c << 4) | ((mag >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F ^ mask, aval ^ mask)
    return code.astype(np.uint8)


def _build_alaw_decode_table() -> PCM:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg >= 2, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode_table()
_ULAW_DEC = _build_ulaw_decode_table()
_ALAW_ENC = _build_alaw_encode_table()
_ALAW_DEC = _build_alaw_decode_table()
for _table in (_ULAW_ENC, _ULAW_DEC, _ALAW_ENC, _ALAW_DEC):
    _table.flags.writeable = False


def _as_index(samples: PCM) -> npt.NDArray[np.int32]:
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise AudioError(f"G.711 encoders take int16 samples, got {arr.dtype}", code="audio_dtype")
    return arr.astype(np.int32) + 32768


def ulaw_encode(samples: PCM) -> Codes:
    """int16 samples to μ-law codes (what ``audioop.lin2ulaw(..., 2)`` gave)."""
    return _ULAW_ENC[_as_index(samples)]


def ulaw_decode(codes: Codes) -> PCM:
    """μ-law codes to int16 samples (what ``audioop.ulaw2lin(..., 2)`` gave)."""
    return _ULAW_DEC[np.asarray(codes, dtype=np.uint8)]


def alaw_encode(samples: PCM) -> Codes:
    """int16 samples to A-law codes (what ``audioop.lin2alaw(..., 2)`` gave)."""
    return _ALAW_ENC[_as_index(samples)]


def alaw_decode(codes: Codes) -> PCM:
    """A-law codes to int16 samples (what ``audioop.alaw2lin(..., 2)`` gave)."""
    return _ALAW_DEC[np.asarray(codes, dtype=np.uint8)]


def encode(samples: PCM, law: Law) -> Codes:
    if law == "ulaw":
        return ulaw_encode(samples)
    if law == "alaw":
        return alaw_encode(samples)
    raise AudioError(f"unknown G.711 law {law!r} (use 'ulaw' or 'alaw')", code="audio_law_unknown")


def decode(codes: Codes, law: Law) -> PCM:
    if law == "ulaw":
        return ulaw_decode(codes)
    if law == "alaw":
        return alaw_decode(codes)
    raise AudioError(f"unknown G.711 law {law!r} (use 'ulaw' or 'alaw')", code="audio_law_unknown")


# --------------------------------------------------------------------------------------------
# Telephone channel
# --------------------------------------------------------------------------------------------


def _kaiser_bandpass(
    low_hz: float, high_hz: float, rate: int, taps: int = 255
) -> npt.NDArray[np.float64]:
    """Linear-phase FIR band-pass (difference of two Kaiser-windowed sincs), odd length."""
    n = np.arange(taps, dtype=np.float64) - (taps - 1) / 2.0
    window = np.kaiser(taps, 8.0)

    def lowpass(cut_hz: float) -> npt.NDArray[np.float64]:
        fc = 2.0 * cut_hz / rate
        return fc * np.sinc(fc * n)

    out: npt.NDArray[np.float64] = (lowpass(high_hz) - lowpass(low_hz)) * window
    return out


def band_pass(
    samples: npt.NDArray[np.float64], rate: int, low_hz: float = 300.0, high_hz: float = 3400.0
) -> npt.NDArray[np.float64]:
    """Zero-phase-delay band-pass (the FIR's delay is compensated: output aligns with input)."""
    if len(samples) == 0:
        return samples.astype(np.float64)
    h = _kaiser_bandpass(low_hz, high_hz, rate)
    full = np.convolve(samples, h)
    delay = (len(h) - 1) // 2
    out: npt.NDArray[np.float64] = full[delay : delay + len(samples)]
    return out


def phone_line(
    audio: Audio,
    law: Law = "ulaw",
    *,
    band: bool = False,
    noise_dbfs: float | None = None,
    seed: int = 0,
) -> Audio:
    """What a caller's (or our) audio sounds like after a G.711 phone channel, at 8 kHz.

    Resample to 8 kHz, optionally band-pass 300-3400 Hz (``band``) and add white noise at
    ``noise_dbfs`` (RMS, relative to full scale; e.g. -65 is a light dither, seeded by ``seed``),
    then encode with ``law`` and decode. Deterministic for a given seed.
    """
    pcm = resample(audio.samples, audio.rate, PHONE_RATE)
    if band or noise_dbfs is not None:
        x = pcm.astype(np.float64)
        if band:
            x = band_pass(x, PHONE_RATE)
        if noise_dbfs is not None:
            rng = np.random.default_rng(seed)
            x = x + rng.standard_normal(len(x)) * (32768.0 * 10.0 ** (noise_dbfs / 20.0))
        pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return Audio(decode(encode(pcm, law), law), PHONE_RATE)
