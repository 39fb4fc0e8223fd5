"""Test signals and checks: WAV files (PCM and mu-law), tones, correlation, pitch."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 8000
I16 = npt.NDArray[np.int16]


def tone(freq: float, seconds: float, *, amplitude: float = 0.4, rate: int = RATE) -> I16:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def noise(seconds: float, *, seed: int, amplitude: float = 0.3, rate: int = RATE) -> I16:
    """Seeded white noise: correlates sharply, so it pins down alignment."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, int(seconds * rate)) * amplitude * 32767
    return x.astype(np.int16)


def silence(seconds: float, *, rate: int = RATE) -> I16:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def write_wav(path: Path, samples: I16, *, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def _layout(raw: bytes, path: Path) -> tuple[tuple[int, ...] | None, int | None, int]:
    """A WAV's ``fmt`` fields, and where its data chunk starts and the size it declares, from
    the bytes present (``None`` for what they do not hold yet)."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, fmt = 12, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", raw[pos + 8 : pos + 24])
        elif cid == b"data":
            return fmt, pos + 8, size
        pos += 8 + size + (size & 1)
    return fmt, None, 0


def read_wav(path: Path) -> tuple[I16, int]:
    """A 16-bit PCM WAV, tolerating a data size the writer never updated (a dump read
    while, or right after, its writer closed it): the bytes present are what counts."""
    raw = path.read_bytes()
    fmt, at, size = _layout(raw, path)
    data = None
    if at is not None:
        body = raw[at : at + size]
        data = raw[at:] if size in (0, 0xFFFFFFFF) or size > len(body) else body
    if fmt is None or data is None or fmt[0] != 1 or fmt[5] != 16:
        raise ValueError(f"{path}: not a 16-bit PCM WAV")
    channels, rate = fmt[1], fmt[2]
    samples = np.frombuffer(data[: len(data) - len(data) % (2 * channels)], dtype="<i2")
    return samples[::channels].astype(np.int16), int(rate)


class GrowingWav:
    """A 16-bit mono PCM WAV that another process is still writing, read as it grows.

    Each :meth:`read` reads only the bytes appended since the last one (the header once), so
    polling a long recording ten times a second costs its new audio, not the whole file again
    (16 callers re-reading their 40 s recordings read up to 100 MB a second on the box under
    test). The samples returned are a view of one buffer that grows by doubling; treat it as
    read-only."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rate = 0
        self._data_at: int | None = None  # file offset of the first sample
        self._read_to = 0  # file offset read so far (whole samples only)
        self._buf = np.zeros(8000, dtype=np.int16)
        self._n = 0

    def read(self) -> I16:
        with self.path.open("rb") as fh:
            if self._data_at is None:
                self._header(fh.read(4096))
                self._read_to = self._data_at or 0
            fh.seek(self._read_to)
            new = fh.read()
        new = new[: len(new) - len(new) % 2]
        if new:
            self._read_to += len(new)
            samples = np.frombuffer(new, dtype="<i2")
            need = self._n + len(samples)
            if need > len(self._buf):
                grown = np.zeros(max(need, 2 * len(self._buf)), dtype=np.int16)
                grown[: self._n] = self._buf[: self._n]
                self._buf = grown
            self._buf[self._n : need] = samples
            self._n = need
        return self._buf[: self._n]

    def _header(self, head: bytes) -> None:
        fmt, at, _ = _layout(head, self.path)
        if at is None:
            raise ValueError(f"{self.path}: no data chunk in its first 4 KB (yet)")
        if fmt is None or fmt[0] != 1 or fmt[1] != 1 or fmt[5] != 16:
            raise ValueError(f"{self.path}: not a 16-bit mono PCM WAV")
        self.rate = int(fmt[2])
        self._data_at = at


def ulaw_encode(samples: I16) -> bytes:
    """G.711 mu-law, as the reference encoder (Sun's g711.c ``linear2ulaw``) does it."""
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    x = samples.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted(seg_end, mag, side="left")
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def write_ulaw_wav(path: Path, samples: I16, *, rate: int = RATE) -> Path:
    """A WAVE_FORMAT_MULAW file (sipp's rtp_stream sends it as PCMU)."""
    data = ulaw_encode(samples)
    fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
    fact = struct.pack("<I", len(data))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def best_ncc(reference: I16, recording: I16) -> float:
    """Highest normalised cross-correlation of ``reference`` against any window of
    ``recording`` (FFT lag search). 1.0 is a perfect copy; G.711 gives ~0.999."""
    ref = reference.astype(np.float64)
    rec = recording.astype(np.float64)
    if len(rec) < len(ref) or not np.any(ref):
        return 0.0
    n = len(ref)
    size = 1 << int(np.ceil(np.log2(len(rec) + n)))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: len(rec) - n + 1]
    csum = np.concatenate(([0.0], np.cumsum(rec * rec)))
    energy = csum[n:] - csum[:-n]
    denom = np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(ref, ref)))
    return float(np.max(corr / denom))


def dominant_frequency(samples: I16, *, rate: int = RATE) -> float:
    x = samples.astype(np.float64)
    if not np.any(x):
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def loud_part(samples: I16, *, threshold: float = 1000.0, frame: int = 160) -> I16:
    """The frames whose RMS exceeds ``threshold`` (concatenated)."""
    usable = len(samples) - len(samples) % frame
    frames = samples[:usable].reshape(-1, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud: I16 = samples[:usable].reshape(-1, frame)[rms > threshold].reshape(-1).astype(np.int16)
    return loud
