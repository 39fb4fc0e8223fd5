"""WAV files in and out, numpy only.

:func:`read_wav` parses the RIFF chunks itself (the stdlib ``wave`` module reads neither float
nor G.711 data) and accepts integer PCM (8-bit unsigned, 16, 24, 32-bit), IEEE float (32/64-bit),
G.711 μ-law and A-law, plain or WAVE_FORMAT_EXTENSIBLE, any channel count and any rate; the result
is always mono int16 at the rate asked for (channels averaged, then resampled). Anything else
raises :class:`~assistant.core.errors.AudioError` with one of these codes:

* ``audio_unreadable``: not a RIFF/WAVE file, truncated, missing chunks, zero channels...
* ``audio_empty``: a well-formed file with no samples;
* ``audio_format_unsupported``: a valid WAV in an encoding we do not decode (ADPCM, MP3...).

Headers are checked before anything is decoded or allocated: a sample rate outside 4-192 kHz,
a chunk or data size that does not fit the file, or samples wider than 64 bits are
``audio_unreadable`` at once (a 1 KB file claiming 1 Hz used to make the resampler run for
seconds and allocate gigabytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from assistant.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from assistant.audio.resample import Float, resample_float, to_pcm
from assistant.core.errors import AudioError
from assistant.core.ports import Audio

FORMAT_PCM = 0x0001
FORMAT_FLOAT = 0x0003
FORMAT_ALAW = 0x0006
FORMAT_ULAW = 0x0007
FORMAT_EXTENSIBLE = 0xFFFE

Encoding = Literal["pcm16", "ulaw", "alaw"]

_FORMAT_NAMES = {
    FORMAT_PCM: "PCM",
    FORMAT_FLOAT: "IEEE float",
    FORMAT_ALAW: "A-law",
    FORMAT_ULAW: "mu-law",
}
# Streaming writers (espeak-ng --stdout, sox to a pipe...) cannot seek back to fill in the data
# size, so they write 0 or a huge placeholder (0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF): such a data
# chunk runs to the end of the file. A smaller size larger than the file means truncation.
_PLACEHOLDER_SIZE = 0x7FFF0000
#: Sample rates accepted in a header: telephone 8 kHz up to studio 192 kHz, with margin below.
MIN_RATE = 4_000
MAX_RATE = 192_000
_MAX_CONTAINER_BITS = 64


@dataclass(frozen=True)
class WavInfo:
    """The ``fmt `` chunk, resolved (``format_tag`` is the sub-format of an extensible file)."""

    format_tag: int
    channels: int
    rate: int
    bits: int  # container bits per sample (block_align / channels * 8)
    valid_bits: int


def _unreadable(name: str, why: str) -> AudioError:
    return AudioError(f"cannot read WAV {name}: {why}", code="audio_unreadable")


def _parse_fmt(body: bytes, name: str) -> WavInfo:
    if len(body) < 16:
        raise _unreadable(name, f"fmt chunk is {len(body)} bytes, needs 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if channels == 0:
        raise _unreadable(name, "zero channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _unreadable(name, f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    valid = bits
    if tag == FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise _unreadable(name, "extensible fmt chunk shorter than 40 bytes")
        valid = struct.unpack("<H", body[18:20])[0] or bits
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    if tag not in _FORMAT_NAMES:
        raise AudioError(
            f"cannot read WAV {name}: format 0x{tag:04x} is not supported (use "
            "PCM 8/16/24/32-bit, float 32/64-bit, mu-law or A-law)",
            code="audio_format_unsupported",
        )
    if block_align == 0 or block_align % channels:
        raise _unreadable(name, f"block align {block_align} for {channels} channels")
    container = block_align // channels * 8
    if container > _MAX_CONTAINER_BITS:
        raise _unreadable(name, f"{container}-bit samples (block align {block_align})")
    return WavInfo(tag, channels, rate, container, valid or container)


def _chunks(data: bytes, name: str) -> tuple[WavInfo, memoryview]:
    if len(data) < 12:
        raise _unreadable(name, f"{len(data)} bytes, too short for a RIFF header")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        kind = "RIFX (big-endian)" if data[:4] == b"RIFX" else "no RIFF/WAVE header"
        raise _unreadable(name, kind)
    view = memoryview(data)
    pos = 12
    info: WavInfo | None = None
    while pos + 8 <= len(data):
        chunk_id = bytes(view[pos : pos + 4])
        size = struct.unpack("<I", view[pos + 4 : pos + 8])[0]
        body_start = pos + 8
        if chunk_id == b"data":
            if info is None:
                raise _unreadable(name, "data chunk before fmt chunk")
            available = len(data) - body_start
            if size == 0 or (size >= _PLACEHOLDER_SIZE and size > available):
                size = available
            elif size > available:
                raise _unreadable(
                    name, f"truncated: data chunk declares {size} bytes, the file holds {available}"
                )
            return info, view[body_start : body_start + size]
        if body_start + size > len(data):
            raise _unreadable(name, f"truncated inside the {chunk_id!r} chunk")
        if chunk_id == b"fmt ":
            info = _parse_fmt(bytes(view[body_start : body_start + size]), name)
        pos = body_start + size + (size & 1)  # chunks are word-aligned
    if info is None:
        raise _unreadable(name, "no fmt chunk")
    raise _unreadable(name, "no data chunk")


def _decode(info: WavInfo, payload: memoryview, name: str) -> Float:
    """Interleaved samples as floats at int16 scale, shape (frames, channels)."""
    width = info.bits // 8
    frames = len(payload) // (width * info.channels)
    raw = bytes(payload[: frames * width * info.channels])
    tag = info.format_tag
    x: Float
    if tag == FORMAT_PCM and info.bits == 8:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif tag == FORMAT_PCM and info.bits == 16:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif tag == FORMAT_PCM and info.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float64) / 256.0
    elif tag == FORMAT_PCM and info.bits == 32:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    elif tag == FORMAT_FLOAT and info.bits in (32, 64):
        f = np.frombuffer(raw, dtype="<f4" if info.bits == 32 else "<f8").astype(np.float64)
        x = np.nan_to_num(f, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    elif tag == FORMAT_ULAW and info.bits == 8:
        x = ulaw_decode(np.frombuffer(raw, dtype=np.uint8)).astype(np.float64)
    elif tag == FORMAT_ALAW and info.bits == 8:
        x = alaw_decode(np.frombuffer(raw, dtype=np.uint8)).astype(np.float64)
    else:
        kind = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        raise AudioError(
            f"cannot read WAV {name}: {kind} with {info.bits}-bit samples is not "
            "supported (use PCM 8/16/24/32-bit, float 32/64-bit, mu-law or A-law)",
            code="audio_format_unsupported",
        )
    return x.reshape(frames, info.channels)


def wav_info(source: str | Path | bytes) -> WavInfo:
    """The format of a WAV file without decoding it."""
    data, name = _load(source)
    return _chunks(data, name)[0]


def _load(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise AudioError(
            f"cannot read WAV {path}: {exc.strerror or exc}", code="audio_unreadable"
        ) from exc


def read_wav(source: str | Path | bytes, rate: int) -> Audio:
    """Any supported WAV (path or bytes) as mono int16 at ``rate`` Hz."""
    data, name = _load(source)
    info, payload = _chunks(data, name)
    frames = _decode(info, payload, name)
    if len(frames) == 0:
        raise AudioError(f"WAV {name} holds no samples", code="audio_empty")
    mono = frames[:, 0] if info.channels == 1 else frames.mean(axis=1)
    return Audio(to_pcm(resample_float(mono, info.rate, rate)), rate)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def pack_wav(
    payload: bytes,
    *,
    rate: int,
    channels: int,
    bits: int,
    format_tag: int,
    extensible: bool = False,
    block_align: int | None = None,
) -> bytes:
    """A RIFF/WAVE file around already-encoded interleaved ``payload`` (any format tag).

    Used by :func:`to_wav_bytes`, and by tests and scripts that need unusual formats.
    """
    if block_align is None:
        block_align = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack(
            "<HHIIHHHHI",
            FORMAT_EXTENSIBLE,
            channels,
            rate,
            rate * block_align,
            block_align,
            bits,
            22,
            bits,
            0,
        )
        fmt += struct.pack("<H", format_tag) + guid_tail
    else:
        fmt = struct.pack(
            "<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits
        )
        if format_tag != FORMAT_PCM:
            fmt += b"\x00\x00"  # cbSize: non-PCM formats carry it
    pad = b"\x00" if len(payload) & 1 else b""
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
        + pad
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def to_wav_bytes(audio: Audio, encoding: Encoding = "pcm16") -> bytes:
    """``audio`` as a mono WAV file: 16-bit PCM, or 8-bit G.711 (``ulaw``/``alaw``)."""
    samples = np.asarray(audio.samples, dtype=np.int16)
    if encoding == "pcm16":
        return pack_wav(
            samples.astype("<i2").tobytes(),
            rate=audio.rate,
            channels=1,
            bits=16,
            format_tag=FORMAT_PCM,
        )
    if encoding == "ulaw":
        return pack_wav(
            ulaw_encode(samples).tobytes(),
            rate=audio.rate,
            channels=1,
            bits=8,
            format_tag=FORMAT_ULAW,
        )
    if encoding == "alaw":
        return pack_wav(
            alaw_encode(samples).tobytes(),
            rate=audio.rate,
            channels=1,
            bits=8,
            format_tag=FORMAT_ALAW,
        )
    raise AudioError(f"unknown WAV encoding {encoding!r}", code="audio_format_unsupported")


def write_wav(path: str | Path, audio: Audio, encoding: Encoding = "pcm16") -> None:
    """Write ``audio`` to ``path`` (see :func:`to_wav_bytes`)."""
    path = Path(path)
    try:
        path.write_bytes(to_wav_bytes(audio, encoding))
    except OSError as exc:
        raise AudioError(
            f"cannot write WAV {path}: {exc.strerror or exc}", code="audio_write_failed"
        ) from exc


def wav_duration(source: str | Path | bytes) -> float:
    """Duration in seconds, from the header and data size (no decoding)."""
    data, name = _load(source)
    info, payload = _chunks(data, name)
    return len(payload) // (info.bits // 8 * info.channels) / info.rate


__all__ = [
    "WavInfo",
    "pack_wav",
    "read_wav",
    "to_wav_bytes",
    "wav_duration",
    "wav_info",
    "write_wav",
]
