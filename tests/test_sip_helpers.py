"""The end-to-end callers' own helpers: a recording read while its writer still writes it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from sip import audio as sig


def _header(rate: int, *, channels: int = 1, data_size: int = 0) -> bytes:
    """A WAV header as a recorder writes it before it knows the length (sizes 0)."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
    )


def test_growing_wav_reads_what_was_appended_since_the_last_read(tmp_path: Path) -> None:
    path = tmp_path / "dump.wav"
    samples = (np.arange(3001, dtype=np.int64) * 37 % 65536 - 32768).astype(np.int16)
    raw = samples.astype("<i2").tobytes()
    path.write_bytes(_header(8000))
    wav = sig.GrowingWav(path)
    assert len(wav.read()) == 0 and wav.rate == 8000
    seen: list[np.ndarray] = []
    # the writer appends in pieces that split samples in two, as a file read mid-write can
    for lo, hi in [(0, 1), (1, 777), (777, 4000), (4000, len(raw))]:
        with path.open("ab") as fh:
            fh.write(raw[lo:hi])
        got = wav.read()
        assert len(got) == hi // 2
        np.testing.assert_array_equal(got, samples[: hi // 2])
        seen.append(got)
    # what an earlier read returned stays as it was while the buffer grows
    np.testing.assert_array_equal(seen[1], samples[: 777 // 2])
    # the same as reading the whole file at once
    np.testing.assert_array_equal(wav.read(), sig.read_wav(path)[0])


def test_growing_wav_waits_for_a_header_and_refuses_what_is_not_mono_pcm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dump.wav"
    path.write_bytes(b"RIFF")  # the recorder has only begun
    wav = sig.GrowingWav(path)
    with pytest.raises(ValueError, match="not a WAV file"):
        wav.read()
    path.write_bytes(_header(8000) + b"\x01\x00")
    assert wav.read().tolist() == [1]  # the next poll finds the header
    stereo = tmp_path / "stereo.wav"
    stereo.write_bytes(_header(8000, channels=2))
    with pytest.raises(ValueError, match="mono PCM"):
        sig.GrowingWav(stereo).read()


def test_a_free_sip_port_keeps_the_next_one_for_baresips_tls_transport() -> None:
    from sip import netports

    ports = [netports.free_port() for _ in range(50)]
    taken = set(ports) | {p + 1 for p in ports}
    assert len(taken) == 2 * len(ports)  # no port, nor the one after it, handed out twice
    assert {p + 1 for p in ports} <= netports._handed_out
