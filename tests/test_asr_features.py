"""The filterbank front end: settings from ../shared/notes/asr.md, pinned values, streaming."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from assistant.asr.features import (
    FRAME_LENGTH,
    FRAME_SHIFT,
    NUM_BINS,
    FbankStream,
    compute_fbank,
    fbank_options,
    num_frames,
)


def chirp() -> npt.NDArray[np.int16]:
    """0.75 s: a 200 Hz → 2450 Hz sweep fading in, plus a 3 kHz tone (no randomness)."""
    t = np.arange(12000) / 16000.0
    x = 8000 * np.sin(2 * np.pi * (200 * t + 1500 * t * t)) * np.minimum(1, t * 4)
    x += 500 * np.sin(2 * np.pi * 3000 * t)
    out: npt.NDArray[np.int16] = np.rint(x).astype(np.int16)
    return out


def kaldi_fbank_reference(x: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """Kaldi's fbank recipe written out in numpy, with the settings the notes give: 25 ms povey
    window, 10 ms shift, DC removal, pre-emphasis 0.97, 512-point power spectrum, 80 triangular
    mel bins from 20 Hz to 8 kHz, natural log with float epsilon floor, snip_edges."""
    y = x.astype(np.float64)
    n = 1 + (len(y) - 400) // 160
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85

    def mel(f: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
        return np.asarray(1127.0 * np.log(1.0 + np.asarray(f) / 700.0))

    lo, hi = float(mel(20.0)), float(mel(8000.0))
    step = (hi - lo) / 81
    fft_mel = mel(np.arange(256) * 16000.0 / 512)
    banks = np.zeros((80, 256))
    for b in range(80):
        left, centre, right = lo + b * step, lo + (b + 1) * step, lo + (b + 2) * step
        rising = (fft_mel - left) / (centre - left)
        falling = (right - fft_mel) / (right - centre)
        inside = (fft_mel > left) & (fft_mel < right)
        banks[b] = np.where(inside, np.where(fft_mel <= centre, rising, falling), 0.0)
    out = np.empty((n, 80))
    for i in range(n):
        frame = y[i * 160 : i * 160 + 400].copy()
        frame -= frame.mean()
        frame[1:] -= 0.97 * frame[:-1].copy()
        frame[0] -= 0.97 * frame[0]
        power = np.abs(np.fft.rfft(frame * window, 512)) ** 2
        out[i] = np.log(np.maximum(banks @ power[:256], np.finfo(np.float32).eps))
    return out


def test_options_are_the_ones_the_model_needs() -> None:
    opts = fbank_options()
    assert opts.frame_opts.samp_freq == 16000
    assert opts.frame_opts.dither == 0.0
    assert opts.frame_opts.snip_edges
    assert opts.frame_opts.window_type == "povey"
    assert opts.frame_opts.preemph_coeff == pytest.approx(0.97)
    assert opts.mel_opts.num_bins == NUM_BINS == 80
    assert opts.mel_opts.low_freq == 20.0
    assert opts.mel_opts.high_freq == 0.0  # Nyquist
    assert opts.energy_floor == 0.0


def test_shape_and_frame_count() -> None:
    assert (FRAME_LENGTH, FRAME_SHIFT) == (400, 160)
    assert [num_frames(n) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    feats = compute_fbank(chirp())
    assert feats.shape == (num_frames(12000), 80) == (73, 80)
    assert feats.dtype == np.float32
    assert compute_fbank(np.zeros(100, dtype=np.int16)).shape == (0, 80)


def test_matches_kaldis_recipe_written_out() -> None:
    ours = compute_fbank(chirp())
    ref = kaldi_fbank_reference(chirp())
    diff = np.abs(ours - ref)
    assert float(np.median(diff)) < 1e-3
    assert float(diff.max()) < 0.05  # float32 rounding in nearly empty bins


def test_pinned_values() -> None:
    feats = compute_fbank(chirp())
    cols = [0, 5, 20, 40, 60, 79]
    pinned = {
        0: [7.723, 12.44, 2.184, 2.466, 3.995, 5.202],
        36: [7.565, 4.54, 7.981, 10.181, 4.56, 6.35],
        72: [2.696, 0.894, 3.896, 10.397, 5.319, 5.639],
    }
    for frame, values in pinned.items():
        np.testing.assert_allclose(feats[frame, cols], values, atol=2e-3)


def test_int16_scale_not_normalised() -> None:
    quiet = compute_fbank(chirp())
    loud = compute_fbank((chirp() * 2).astype(np.int16))
    # Twice the amplitude is four times the power: every log energy rises by log(4).
    np.testing.assert_allclose(loud - quiet, np.log(4.0), atol=1e-3)


@pytest.mark.parametrize("chunk", [1, 160, 320, 1000, 4801])
def test_streaming_equals_one_shot(chunk: int) -> None:
    x = chirp()
    stream = FbankStream()
    parts = [stream.accept(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(stream.finish())
    np.testing.assert_array_equal(np.concatenate(parts), compute_fbank(x))
    assert stream.samples == len(x)
