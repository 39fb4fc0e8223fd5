"""A tone prompt pack for the end-to-end calls, and a reader for the tones the caller heard.

The box reads digits (the code read-back, the new password) from ``digit_<d>.wav`` of its
prompt pack. Here each digit is a pure tone, ``400 + 180 * d`` Hz for 250 ms: 180 Hz apart,
all inside the telephone band, so they survive G.711 and can be told apart in 20 ms frames.
The fixed prompts (no parameters) get short, quiet noise bursts: tone-free, so nothing but
a digit is ever read as one, and short, so a call lasts seconds instead of minutes. The
prompt texts around parameters ("Mã số quý khách vừa đọc là: ...") are still synthesised by
the box.

:func:`tone_runs` finds the digit tones in a recording (the caller's ``sndfile`` dump) and
:func:`digit_sequences` groups them into what the box read out in one go (a prompt's digit
run: digits 0.25 s apart, groups 0.5 s apart; prompts are separated by speech).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import I16, RATE, write_wav

TONE_S = 0.25
FRAME = 160  # 20 ms at 8 kHz
MIN_TONE_FRAMES = 6  # 120 ms: a digit is 250 ms (12-13 frames)
MERGE_FRAMES = 3  # a lost packet or two inside one tone does not split it
MIN_PURITY = 0.75  # share of a frame's energy at the digit's frequency
MIN_RMS = 300.0
SEQUENCE_GAP_S = 0.9  # digits of one read-out are at most 0.5 s (group pause) apart


def digit_frequency(digit: int) -> float:
    return 400.0 + 180.0 * digit


FREQS = np.array([digit_frequency(d) for d in range(10)])


def digit_tone(digit: int, *, seconds: float = TONE_S, amplitude: float = 0.35) -> I16:
    """A pure tone with 5 ms raised-cosine edges (no clicks to smear the spectrum)."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = np.sin(2 * np.pi * digit_frequency(digit) * t) * amplitude * 32767
    ramp = int(0.005 * RATE)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    x[:ramp] *= edge
    x[-ramp:] *= edge[::-1]
    return x.astype(np.int16)


def fixed_prompt_ids(prompts_toml: Path) -> list[str]:
    """Ids of the prompts without ``{parameters}`` (the ones a pack may replace)."""
    with prompts_toml.open("rb") as f:
        prompts = tomllib.load(f)["prompts"]
    return sorted(pid for pid, text in prompts.items() if "{" not in text)


def write_prompt_pack(folder: Path, prompts_toml: Path, *, burst_s: float = 0.4) -> Path:
    """digit_0..9 tones, plus a short noise burst for every fixed prompt."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(10):
        write_wav(folder / f"digit_{d}.wav", digit_tone(d))
    rng = np.random.default_rng(1234)
    n = int(burst_s * RATE)
    for pid in fixed_prompt_ids(prompts_toml):
        burst = rng.normal(0.0, 0.06 * 32767, n) * np.hanning(n)
        write_wav(folder / f"{pid}.wav", np.clip(burst, -32767, 32767).astype(np.int16))
    return folder


@dataclass(frozen=True)
class Tone:
    digit: str
    start_s: float
    end_s: float


def _frame_purity(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: best digit, its share of the frame energy, and the frame RMS."""
    n = frames.shape[1]
    t = np.arange(n) / RATE
    # Correlation with cos/sin at each digit frequency (a Goertzel per digit, vectorised).
    cos = np.cos(2 * np.pi * FREQS[:, None] * t[None, :])
    sin = np.sin(2 * np.pi * FREQS[:, None] * t[None, :])
    re = frames @ cos.T
    im = frames @ sin.T
    power = (re**2 + im**2) * 2.0 / n  # a pure tone of amplitude A: ~ n * A^2 / 2
    energy = np.sum(frames**2, axis=1)
    share = power / np.maximum(energy, 1e-9)[:, None]
    best = np.argmax(share, axis=1)
    purity = share[np.arange(len(frames)), best]
    rms = np.sqrt(energy / n)
    return best, purity, rms


def tone_runs(samples: I16) -> list[Tone]:
    """Every digit tone in ``samples`` (8 kHz), in order."""
    usable = len(samples) - len(samples) % FRAME
    if usable == 0:
        return []
    frames = samples[:usable].astype(np.float64).reshape(-1, FRAME)
    best, purity, rms = _frame_purity(frames)
    label = np.where((purity >= MIN_PURITY) & (rms >= MIN_RMS), best, -1)
    runs: list[list[int]] = []  # [digit, first frame, last frame]
    for i, d in enumerate(label):
        if d < 0:
            continue
        if runs and runs[-1][0] == d and i - runs[-1][2] <= MERGE_FRAMES:
            runs[-1][2] = i
        else:
            runs.append([int(d), i, i])
    frame_s = FRAME / RATE
    return [
        Tone(str(d), first * frame_s, (last + 1) * frame_s)
        for d, first, last in runs
        if last - first + 1 >= MIN_TONE_FRAMES
    ]


@dataclass(frozen=True)
class DigitSequence:
    digits: str
    start_s: float
    end_s: float


def digit_sequences(samples: I16) -> list[DigitSequence]:
    """Tones grouped into read-outs: a pause longer than SEQUENCE_GAP_S starts a new one."""
    out: list[DigitSequence] = []
    for tone in tone_runs(samples):
        if out and tone.start_s - out[-1].end_s <= SEQUENCE_GAP_S:
            last = out[-1]
            out[-1] = DigitSequence(last.digits + tone.digit, last.start_s, tone.end_s)
        else:
            out.append(DigitSequence(tone.digit, tone.start_s, tone.end_s))
    return out


def readouts_after_readback(readouts: list[str], *, code_length: int = 10) -> list[str]:
    """The 8-digit read-outs (a password) after the last code read-back (10 digits)."""
    last = max((i for i, r in enumerate(readouts) if len(r) == code_length), default=None)
    if last is None:
        return []
    return [r for r in readouts[last + 1 :] if len(r) == 8]
