"""Preparing recorded syllables for joining (pure numpy): trim, level, fade, check, stretch.

The source clips (one isolated syllable each, 16 kHz) are fixed-length windows with a noisy
floor (mostly below 300 Hz), levels that differ by 10 dB and more, and sometimes speech cut
off at an edge. :func:`prepare` makes every clip alike:

* a 100 Hz high-pass removes the rumble (the phone band starts at 300 Hz anyway);
* speech is found on 10 ms frames of the signal above 300 Hz, where the noise floor is low and
  fricatives (s, x, kh, h) stand out: frames above ``noise + above_noise_db`` (and no more than
  ``below_peak_db`` under the loudest), with ``pad_s`` kept either side;
* the active speech level (:func:`speech_level_db`) is set to ``target_db``, with the peak
  held under ``peak_limit_db``;
* raised-cosine fades of ``fade_s`` at both ends, so the clip starts and ends at zero;
* checks: ``onset_clipped`` / ``tail_clipped`` (speech already loud in the first / last 30 ms
  of the source window), ``bad_level`` (speech level far from the usual range),
  ``source_clipping`` (samples at full scale), ``noisy`` (speech barely above the floor),
  ``peak_limited`` (could not reach the target level without clipping).

:func:`drop_onset` cuts an unvoiced onset (the /h/ of "hạ") to make a vowel-initial clip the
speaker never recorded; :func:`stretch` changes a clip's duration without changing its pitch
(WSOLA), used to make phrase-final syllables slightly longer than the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assistant.core.ports import PCM

Float = npt.NDArray[np.float64]
FRAME_S = 0.01
FULL_SCALE = 32768.0


def highpass(x: npt.ArrayLike, rate: int, cutoff_hz: float) -> Float:
    """Zero-phase FFT high-pass: 0 below ``cutoff_hz / 2``, 1 above ``cutoff_hz``, cosine
    between. Zero padding on both sides keeps the ends free of wrap-around."""
    y = np.asarray(x, dtype=np.float64)
    n = len(y)
    if n == 0:
        return y.copy()
    pad = round(0.05 * rate)
    padded = np.concatenate([np.zeros(pad), y, np.zeros(pad)])
    nfft = 1 << int(np.ceil(np.log2(len(padded))))
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate)
    ramp = np.clip((freqs - cutoff_hz / 2.0) / (cutoff_hz / 2.0), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * ramp)
    out: Float = np.fft.irfft(np.fft.rfft(padded, nfft) * gain, nfft)[pad : pad + n]
    return out


def frame_db(x: npt.ArrayLike, rate: int, frame_s: float = FRAME_S) -> Float:
    """Mean power of consecutive frames in dB re full scale (a partial last frame dropped)."""
    y = np.asarray(x, dtype=np.float64)
    hop = max(1, round(frame_s * rate))
    n = len(y) // hop
    frames = y[: n * hop].reshape(n, hop)
    power = (frames * frames).mean(axis=1) / FULL_SCALE**2
    out: Float = 10.0 * np.log10(power + 1e-12)
    return out


def speech_level_db(x: npt.ArrayLike, rate: int, *, within_db: float = 25.0) -> float:
    """Active speech level: mean power, above 300 Hz, of the 10 ms frames within ``within_db``
    of the loudest one, in dB re full scale (``-inf`` for silence). Trimming does not change it,
    so a prepared clip measures what it was levelled to."""
    det = frame_db(highpass(x, rate, 300.0), rate)
    if len(det) == 0 or det.max() <= -100.0:
        return float("-inf")
    loud = det[det >= det.max() - within_db]
    return float(10.0 * np.log10(np.mean(10.0 ** (loud / 10.0))))


def fade(x: npt.ArrayLike, rate: int, fade_s: float) -> Float:
    """``x`` with raised-cosine fade-in and fade-out of ``fade_s`` (at most half the clip)."""
    y = np.array(x, dtype=np.float64)
    n = min(round(fade_s * rate), len(y) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        y[:n] *= ramp
        y[len(y) - n :] *= ramp[::-1]
    return y


def to_pcm16(x: npt.ArrayLike) -> PCM:
    return np.clip(np.round(np.asarray(x, dtype=np.float64)), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class PrepSettings:
    """How :func:`prepare` works (the defaults are what the shipped pack was built with)."""

    highpass_hz: float = 100.0
    detect_hz: float = 300.0
    above_noise_db: float = 9.0
    below_peak_db: float = 40.0
    pad_s: float = 0.02
    fade_s: float = 0.008
    target_db: float = -20.0
    peak_limit_db: float = -1.0
    edge_s: float = 0.03  # the source's first / last stretch checked for cut-off speech
    edge_clipped_db: float = 12.0  # ...flagged when all of it is within this of the level
    level_range_db: tuple[float, float] = (-34.0, -6.0)  # usual source speech levels
    min_snr_db: float = 20.0


@dataclass(frozen=True)
class Prepared:
    """A prepared clip and what was found out about its source."""

    samples: PCM
    source_level_db: float  # speech level of the source
    gain_db: float  # applied
    noise_db: float  # floor of the source above 300 Hz
    flags: tuple[str, ...]
    start_s: float  # the kept stretch of the source
    end_s: float


class ClipError(ValueError):
    """The clip holds no usable speech."""


def prepare(samples: npt.ArrayLike, rate: int, s: PrepSettings | None = None) -> Prepared:
    """Trim, level and fade one source clip; see the module doc. Raises :class:`ClipError`."""
    s = s or PrepSettings()
    x = np.asarray(samples, dtype=np.float64)
    det = frame_db(highpass(x, rate, s.detect_hz), rate)
    if len(det) < 5:
        raise ClipError(f"clip too short ({len(x) / rate:.3f} s)")
    noise = float(np.percentile(det, 10))
    peak = float(det.max())
    threshold = max(noise + s.above_noise_db, peak - s.below_peak_db)
    loud = np.flatnonzero(det >= threshold)
    if len(loud) == 0 or peak <= -90.0:
        raise ClipError("no speech found")
    level = speech_level_db(x, rate)
    flags: list[str] = []
    if np.abs(x).max() >= 32000:
        flags.append("source_clipping")
    edge = max(1, round(s.edge_s / FRAME_S))
    if det[:edge].min() >= level - s.edge_clipped_db:
        flags.append("onset_clipped")
    if det[-edge:].min() >= level - s.edge_clipped_db:
        flags.append("tail_clipped")
    if not s.level_range_db[0] <= level <= s.level_range_db[1]:
        flags.append("bad_level")
    if peak - noise < s.min_snr_db:
        flags.append("noisy")
    hop = round(FRAME_S * rate)
    pad = round(s.pad_s * rate)
    start = max(0, int(loud[0]) * hop - pad)
    end = min(len(x), (int(loud[-1]) + 1) * hop + pad)
    kept = highpass(x, rate, s.highpass_hz)[start:end]
    gain_db = s.target_db - level
    limit = FULL_SCALE * 10.0 ** (s.peak_limit_db / 20.0)
    top = float(np.abs(kept).max()) * 10.0 ** (gain_db / 20.0)
    if top > limit:
        cut = 20.0 * np.log10(top / limit)
        gain_db -= cut
        if cut > 3.0:
            flags.append("peak_limited")
    out = fade(kept * 10.0 ** (gain_db / 20.0), rate, s.fade_s)
    return Prepared(to_pcm16(out), level, gain_db, noise, tuple(flags), start / rate, end / rate)


def voicing(x: npt.ArrayLike, rate: int, frame_s: float = 0.02, hop_s: float = 0.005) -> Float:
    """Per ``hop_s`` step: the normalised autocorrelation peak for pitch 70-400 Hz (0..1)."""
    y = np.asarray(x, dtype=np.float64)
    n, hop = round(frame_s * rate), round(hop_s * rate)
    lo, hi = int(rate / 400), int(rate / 70)
    out: list[float] = []
    for i in range(0, max(0, len(y) - n - hi), hop):
        seg = y[i : i + n + hi] - y[i : i + n + hi].mean()
        a = seg[:n]
        lagged = np.lib.stride_tricks.sliding_window_view(seg[lo:], n)[: hi - lo]
        num = lagged @ a
        den = np.sqrt(np.dot(a, a) * np.einsum("ij,ij->i", lagged, lagged)) + 1e-9
        out.append(float(max(0.0, (num / den).max())))
    return np.array(out)


def drop_onset(
    x: npt.ArrayLike, rate: int, *, threshold: float = 0.8, run_s: float = 0.03
) -> Float:
    """``x`` from where steady voicing starts: removes an unvoiced onset such as the /h/ of
    "hạ" (giving "ạ"). Raises :class:`ClipError` when nothing is voiced."""
    y = np.asarray(x, dtype=np.float64)
    v = voicing(highpass(y, rate, 60.0), rate)
    hop = round(0.005 * rate)
    run = max(1, round(run_s / 0.005))
    for i in range(len(v) - run):
        if bool((v[i : i + run] >= threshold).all()):
            out: Float = y[i * hop :]
            return out
    raise ClipError("no voiced stretch to keep")


def stretch(x: npt.ArrayLike, rate: int, factor: float, *, frame_s: float = 0.02) -> Float:
    """``x`` made ``factor`` times as long, pitch unchanged (WSOLA: Hann frames overlapping by
    half, each taken within ±5 ms of its ideal place where it best continues the last one)."""
    y = np.asarray(x, dtype=np.float64)
    if factor == 1.0 or len(y) == 0:
        return y.copy()
    n = round(frame_s * rate)
    hs = n // 2
    tol = round(0.005 * rate)
    out_len = round(len(y) * factor)
    frames = max(1, int(np.ceil(out_len / hs)))
    src = np.concatenate([np.zeros(tol), y, np.zeros(n + tol + hs)])
    window = np.hanning(n + 2)[1:-1]
    out = np.zeros(frames * hs + n)
    weight = np.zeros_like(out)
    prev = tol  # position in src of the frame taken last
    for k in range(frames):
        ideal = tol + round(k * hs / factor)
        ideal = min(ideal, len(src) - n - tol - 1)
        if k == 0:
            pos = ideal
        else:
            target = src[prev + hs : prev + hs + n]
            region = src[ideal - tol : ideal + tol + n]
            score = np.correlate(region, target, mode="valid")
            pos = ideal - tol + int(np.argmax(score))
        out[k * hs : k * hs + n] += src[pos : pos + n] * window
        weight[k * hs : k * hs + n] += window
        prev = pos
    weight[weight < 1e-3] = 1.0
    result: Float = (out / weight)[:out_len]
    return result
