"""Audio plumbing: G.711, resampling, WAV reading and writing, committed fixtures."""

from __future__ import annotations

import csv
import struct
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from assistant.audio import g711
from assistant.audio.resample import (
    StreamResampler,
    _outputs,
    _outputs_by_phase,
    _outputs_gathered,
    _plan,
    resample,
    resample_audio,
    resample_float,
)
from assistant.audio.wav import (
    FORMAT_ALAW,
    FORMAT_FLOAT,
    FORMAT_PCM,
    FORMAT_ULAW,
    pack_wav,
    read_wav,
    to_wav_bytes,
    wav_duration,
    wav_info,
    write_wav,
)
from assistant.core.errors import AudioError
from assistant.core.ports import Audio
from assistant.testing.audio import noise, tone

FIXTURES = Path(__file__).parent / "fixtures"
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def _audioop() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # removed in Python 3.13
            return None
    return audioop


# --------------------------------------------------------------------------------------------
# G.711: independent scalar references, written from the segment tables
# --------------------------------------------------------------------------------------------


def ref_ulaw_encode(x: int) -> int:
    """Sun g711.c / audioop lin2ulaw, one sample at a time."""
    seg_end = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
    v = x >> 2
    if v < 0:
        v, mask = -v, 0x7F
    else:
        mask = 0xFF
    v = min(v, 8159) + 33
    for seg, end in enumerate(seg_end):
        if v <= end:
            return ((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask
    return 0x7F ^ mask


def ref_ulaw_decode(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def ref_alaw_encode_g191(x: int) -> int:
    """ITU-T G.191 alaw_compress (a different formulation; same codes as Sun's)."""
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_ulaw_encode_g191(x: int) -> int:
    """ITU-T G.191 ulaw_compress: differs from Sun/audioop on some negative inputs."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno += 1
        i >>= 1
    out = ((0x8 - segno) << 4) | (0xF - ((absno >> segno) & 0xF))
    return out | 0x80 if x >= 0 else out


def ref_alaw_decode(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def test_ulaw_encode_all_inputs_match_reference() -> None:
    expected = np.array([ref_ulaw_encode(int(x)) for x in ALL_INT16], dtype=np.uint8)
    assert np.array_equal(g711.ulaw_encode(ALL_INT16), expected)


def test_alaw_encode_all_inputs_match_itu_g191() -> None:
    expected = np.array([ref_alaw_encode_g191(int(x)) for x in ALL_INT16], dtype=np.uint8)
    assert np.array_equal(g711.alaw_encode(ALL_INT16), expected)


def test_all_codes_decode_like_reference() -> None:
    assert g711.ulaw_decode(ALL_CODES).tolist() == [ref_ulaw_decode(c) for c in range(256)]
    assert g711.alaw_decode(ALL_CODES).tolist() == [ref_alaw_decode(c) for c in range(256)]


def test_known_pairs() -> None:
    """Values as audioop (Python <= 3.12) gave them."""
    pairs_ulaw = {0: 0xFF, -1: 0x7E, 32767: 0x80, -32768: 0x00, 1000: 0xCE, -1000: 0x4E}
    for x, code in pairs_ulaw.items():
        assert int(g711.ulaw_encode(np.array([x], dtype=np.int16))[0]) == code
    pairs_alaw = {0: 0xD5, -1: 0x55, 32767: 0xAA, -32768: 0x2A, 1000: 0xFA, -1000: 0x7A}
    for x, code in pairs_alaw.items():
        assert int(g711.alaw_encode(np.array([x], dtype=np.int16))[0]) == code
    decoded = {0x00: -32124, 0x7F: 0, 0x80: 32124, 0xFF: 0}
    for code, x in decoded.items():
        assert int(g711.ulaw_decode(np.array([code], dtype=np.uint8))[0]) == x
    assert g711.alaw_decode(np.array([0xD5, 0x55, 0xAA, 0x2A], dtype=np.uint8)).tolist() == [
        8,
        -8,
        32256,
        -32256,
    ]


def test_matches_audioop_when_available() -> None:
    audioop = _audioop()
    if audioop is None:
        pytest.skip("audioop is not available (Python 3.13+); the scalar references cover it")
    raw = ALL_INT16.tobytes()
    assert g711.ulaw_encode(ALL_INT16).tobytes() == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(ALL_INT16).tobytes() == audioop.lin2alaw(raw, 2)
    codes = ALL_CODES.tobytes()
    assert g711.ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(codes, 2)


def test_ulaw_differs_from_g191_only_by_one_step_on_negative_inputs() -> None:
    """Documents the one known divergence: Sun/audioop vs ITU G.191 on μ-law rounding."""
    ours = g711.ulaw_encode(ALL_INT16).astype(int)
    g191 = np.array([ref_ulaw_encode_g191(int(x)) for x in ALL_INT16])
    differ = np.flatnonzero(ours != g191)
    assert 0 < len(differ) <= 512
    assert np.all(ALL_INT16[differ] < 0)
    assert np.all(np.abs(ours[differ] - g191[differ]) == 1)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_codes_survive_decode_encode(law: g711.Law) -> None:
    again = g711.encode(g711.decode(ALL_CODES, law), law)
    same = again == ALL_CODES
    # μ-law has two zeros (0x7F and 0xFF); 0 encodes to 0xFF
    assert same.sum() == (255 if law == "ulaw" else 256)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_quantisation_error_is_bounded(law: g711.Law) -> None:
    back = g711.decode(g711.encode(ALL_INT16, law), law).astype(np.int64)
    err = np.abs(back - ALL_INT16)
    big = np.abs(ALL_INT16.astype(np.int64)) > 256
    assert np.all(err[big] <= np.abs(ALL_INT16[big].astype(np.int64)) / 16 + 8)


def test_encoder_rejects_other_dtypes_and_laws() -> None:
    with pytest.raises(AudioError) as err:
        g711.ulaw_encode(np.zeros(4, dtype=np.float32))
    assert err.value.code == "audio_dtype"
    with pytest.raises(AudioError) as err:
        g711.encode(ALL_INT16, "gsm")  # type: ignore[arg-type]
    assert err.value.code == "audio_law_unknown"


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_phone_line_keeps_a_voice_band_tone(law: g711.Law) -> None:
    src = Audio(tone(1000.0, 1.0, 16000, dbfs=-10.0), 16000)
    out = g711.phone_line(src, law)
    assert out.rate == 8000 and len(out.samples) == 8000
    ref = tone(1000.0, 1.0, 8000, dbfs=-10.0).astype(np.float64)
    err = out.samples.astype(np.float64) - ref
    snr = 10 * np.log10(np.sum(ref[400:-400] ** 2) / np.sum(err[400:-400] ** 2))
    assert snr > 30.0


def test_phone_line_band_pass_and_seeded_noise() -> None:
    low = Audio(tone(100.0, 1.0, 16000, dbfs=-10.0), 16000)
    kept = g711.phone_line(low).samples[2000:-2000].astype(np.float64)
    cut = g711.phone_line(low, band=True).samples[2000:-2000].astype(np.float64)
    assert np.sqrt(np.mean(cut**2)) < 0.05 * np.sqrt(np.mean(kept**2))
    quiet = Audio(np.zeros(16000, dtype=np.int16), 16000)
    a = g711.phone_line(quiet, noise_dbfs=-50.0, seed=3)
    b = g711.phone_line(quiet, noise_dbfs=-50.0, seed=3)
    c = g711.phone_line(quiet, noise_dbfs=-50.0, seed=4)
    assert a == b and a != c
    rms = np.sqrt(np.mean(a.samples.astype(np.float64) ** 2)) / 32768.0
    assert -53.0 < 20 * np.log10(rms) < -47.0


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------

RATE_PAIRS = [
    (22050, 8000),
    (16000, 8000),
    (8000, 16000),
    (44100, 16000),
    (48000, 8000),
    (8000, 22050),
    (11025, 16000),
]


def _gain_db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(ref**2)))


def test_equal_rates_pass_through_exactly() -> None:
    x = noise(0.5, 8000, dbfs=-10.0)
    y = resample(x, 8000, 8000)
    assert np.array_equal(x, y) and y is not x
    audio = Audio(x, 8000)
    assert resample_audio(audio, 8000) is audio


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_output_length_and_passband_gain(src: int, dst: int) -> None:
    x = tone(1000.0, 1.0, src, dbfs=-6.0)
    y = resample(x, src, dst)
    assert len(y) == -(-len(x) * dst // src)
    ref = tone(1000.0, 1.0, dst, dbfs=-6.0).astype(np.float64)
    edge = dst // 10
    assert abs(_gain_db(y[edge:-edge], ref[edge:-edge])) < 0.05
    err = y[edge:-edge].astype(np.float64) - ref[edge:-edge]
    assert 10 * np.log10(np.sum(ref[edge:-edge] ** 2) / (np.sum(err**2) + 1e-9)) > 60.0


def test_flat_to_3400_hz_and_rejects_aliases_at_8k() -> None:
    for freq in (300.0, 3400.0):
        x = np.sin(2 * np.pi * freq * np.arange(22050) / 22050) * 10000
        y = resample_float(x, 22050, 8000)[800:-800]
        assert abs(20 * np.log10(np.sqrt(2 * np.mean(y**2)) / 10000)) < 0.1
    for freq in (4300.0, 5000.0, 9000.0):  # would alias to 3700, 3000, 1000 Hz
        x = np.sin(2 * np.pi * freq * np.arange(22050) / 22050) * 10000
        y = resample_float(x, 22050, 8000)[800:-800]
        assert 20 * np.log10(np.sqrt(2 * np.mean(y**2)) / 10000) < -75.0


def test_dc_is_kept_and_time_is_aligned() -> None:
    x = np.full(8000, 1000, dtype=np.int16)
    y = resample(x, 8000, 16000)
    assert np.all(y[200:-200] == 1000)
    click = np.zeros(8000, dtype=np.int16)
    click[4000] = 20000
    up = resample(click, 8000, 16000)
    assert int(np.argmax(up)) == 8000  # centred filter: no delay


def test_full_scale_input_clips_without_wrapping() -> None:
    high = np.sin(2 * np.pi * 200 * np.arange(8000) / 8000) >= 0
    square = np.where(high, 32767, -32768).astype(np.int16)
    y = resample(square, 8000, 22050)
    assert y.max() == 32767 and y.min() == -32768  # the filter's overshoot was clipped...
    # ...and never wrapped: wherever the input is high for 9 samples around, output is > 0
    steady = np.convolve(high.astype(int), np.ones(9, dtype=int), "same") == 9
    assert np.all(y[steady[np.arange(len(y)) * 8000 // 22050]] > 0)


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_stream_equals_one_shot(src: int, dst: int) -> None:
    rng = np.random.default_rng(src + dst)
    x = noise(1.3, src, dbfs=-12.0, seed=1)
    whole = resample(x, src, dst)
    stream = StreamResampler(src, dst)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.choice([0, 1, 7, 160, 441, 1000, 3000]))
        parts.append(stream.process(x[i : i + n]))
        i += n
    parts.append(stream.flush())
    chunked = np.concatenate(parts)
    assert len(chunked) == len(whole)
    assert np.max(np.abs(chunked.astype(int) - whole.astype(int))) <= 1


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 16000), (16000, 8000), (16000, 48000), (48000, 16000), (11025, 16000)]
)
def test_filtering_phase_by_phase_equals_gathering_the_taps(src: int, dst: int) -> None:
    """The fast path the live calls take (issue 11) computes the very same outputs."""
    plan = _plan(src, dst)
    x = noise(0.5, src, dbfs=-6.0, seed=3).astype(np.float64)
    buf = np.concatenate([np.zeros(plan.half - 1), x, np.zeros(plan.half + 1)])
    n_out = -(-len(x) * plan.up // plan.down)
    for n_from, n_to in ((0, n_out), (5, n_out - 3), (17, 18), (9, 9)):
        fast = _outputs_by_phase(plan, buf, -(plan.half - 1), n_from, n_to)
        slow = _outputs_gathered(plan, buf, -(plan.half - 1), n_from, n_to)
        assert fast.shape == slow.shape == (n_to - n_from,)
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-7)


def test_stream_latency_reset_and_closed() -> None:
    stream = StreamResampler(8000, 16000)
    assert 0 < stream.latency_s < 0.01
    first = stream.process(tone(440.0, 0.1, 8000))
    assert 0 < len(first) < 1600
    assert len(first) + len(stream.flush()) == 1600
    with pytest.raises(AudioError) as err:
        stream.process(tone(440.0, 0.1, 8000))
    assert err.value.code == "audio_stream_closed"
    stream.reset()
    assert len(stream.process(np.zeros(0, dtype=np.int16))) == 0
    same = StreamResampler(8000, 8000)
    assert np.array_equal(same.process(tone(440.0, 0.1, 8000)), tone(440.0, 0.1, 8000))


def test_per_block_weights_equal_table_weights() -> None:
    table = _plan(22050, 8000)
    direct = _plan(22050, 8000, max_table=0)
    assert table.table is not None and direct.table is None
    x = noise(0.2, 22050, dbfs=-10.0).astype(np.float64)
    buf = np.concatenate([np.zeros(table.half - 1), x, np.zeros(table.half + 1)])
    n_out = -(-len(x) * table.up // table.down)
    a = _outputs(table, buf, -(table.half - 1), 0, n_out)
    b = _outputs(direct, buf, -(direct.half - 1), 0, n_out)
    assert np.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("rate", [0, -8000, 8000.5])
def test_invalid_rates_raise(rate: int) -> None:
    with pytest.raises(AudioError) as err:
        resample(np.zeros(10, dtype=np.int16), 8000, rate)
    assert err.value.code == "audio_rate_invalid"


def test_round_trip_8k_16k_8k() -> None:
    x = g711.band_pass(noise(1.0, 8000, dbfs=-15.0).astype(np.float64), 8000, 100, 3500)
    pcm = np.rint(x).astype(np.int16)
    back = resample(resample(pcm, 8000, 16000), 16000, 8000).astype(np.float64)
    err = back[400:-400] - pcm[400:-400]
    snr = 10 * np.log10(np.sum(pcm[400:-400].astype(np.float64) ** 2) / np.sum(err**2))
    assert snr > 50.0


# --------------------------------------------------------------------------------------------
# WAV
# --------------------------------------------------------------------------------------------


def _int24(x: np.ndarray) -> bytes:
    return (x.astype(np.int32) << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def test_write_read_round_trip(tmp_path: Path) -> None:
    audio = Audio(noise(0.3, 16000, dbfs=-10.0), 16000)
    write_wav(tmp_path / "a.wav", audio)
    assert read_wav(tmp_path / "a.wav", 16000) == audio
    assert read_wav(to_wav_bytes(audio), 16000) == audio
    info = wav_info(tmp_path / "a.wav")
    assert (info.format_tag, info.channels, info.rate, info.bits) == (FORMAT_PCM, 1, 16000, 16)
    assert wav_duration(tmp_path / "a.wav") == pytest.approx(0.3)


@pytest.mark.parametrize("encoding", ["ulaw", "alaw"])
def test_g711_wav_round_trip(encoding: str) -> None:
    audio = Audio(g711.phone_line(Audio(tone(500.0, 0.2, 8000), 8000), encoding).samples, 8000)  # type: ignore[arg-type]
    data = to_wav_bytes(audio, encoding)  # type: ignore[arg-type]
    tag = FORMAT_ULAW if encoding == "ulaw" else FORMAT_ALAW
    assert wav_info(data).format_tag == tag
    assert len(data) < 44 + len(audio.samples) + 8  # one byte per sample
    assert read_wav(data, 8000) == audio


def test_reads_every_sample_format() -> None:
    x = tone(440.0, 0.1, 8000, dbfs=-6.0)
    expect = x.astype(np.int64)
    u8 = pack_wav(
        ((x.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes(),
        rate=8000,
        channels=1,
        bits=8,
        format_tag=FORMAT_PCM,
    )
    assert np.max(np.abs(read_wav(u8, 8000).samples - expect)) <= 256
    i24 = pack_wav(_int24(x), rate=8000, channels=1, bits=24, format_tag=FORMAT_PCM)
    assert np.array_equal(read_wav(i24, 8000).samples, x)
    i32 = pack_wav(
        (x.astype(np.int32) << 16).astype("<i4").tobytes(),
        rate=8000,
        channels=1,
        bits=32,
        format_tag=FORMAT_PCM,
    )
    assert np.array_equal(read_wav(i32, 8000).samples, x)
    for dtype, bits in (("<f4", 32), ("<f8", 64)):
        f = pack_wav(
            (x / 32768.0).astype(dtype).tobytes(),
            rate=8000,
            channels=1,
            bits=bits,
            format_tag=FORMAT_FLOAT,
        )
        assert np.array_equal(read_wav(f, 8000).samples, x)
    ext = pack_wav(
        _int24(x), rate=8000, channels=1, bits=24, format_tag=FORMAT_PCM, extensible=True
    )
    assert np.array_equal(read_wav(ext, 8000).samples, x)
    extf = pack_wav(
        (x / 32768.0).astype("<f4").tobytes(),
        rate=8000,
        channels=1,
        bits=32,
        format_tag=FORMAT_FLOAT,
        extensible=True,
    )
    assert np.array_equal(read_wav(extf, 8000).samples, x)


def test_float_out_of_range_and_nan_saturate() -> None:
    f = np.array([2.0, -2.0, np.nan, np.inf, -np.inf, 0.5], dtype="<f4")
    data = pack_wav(f.tobytes(), rate=8000, channels=1, bits=32, format_tag=FORMAT_FLOAT)
    assert read_wav(data, 8000).samples.tolist() == [32767, -32768, 0, 32767, -32768, 16384]


def test_channels_are_averaged_and_rate_converted() -> None:
    left = np.full(4410, 1000, dtype=np.int16)
    right = np.full(4410, 3000, dtype=np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    data = pack_wav(
        stereo.astype("<i2").tobytes(), rate=44100, channels=2, bits=16, format_tag=FORMAT_PCM
    )
    mono = read_wav(data, 8000)
    assert mono.rate == 8000 and len(mono.samples) == 800
    assert np.all(mono.samples[100:-100] == 2000)
    six = np.repeat(tone(440.0, 0.05, 8000), 6)
    data6 = pack_wav(
        six.astype("<i2").tobytes(), rate=8000, channels=6, bits=16, format_tag=FORMAT_PCM
    )
    assert np.array_equal(read_wav(data6, 8000).samples, tone(440.0, 0.05, 8000))


def test_odd_chunks_and_streaming_sizes_are_handled() -> None:
    x = tone(440.0, 0.05, 8000)
    plain = to_wav_bytes(Audio(x, 8000))
    fmt_end = 12 + 8 + 16
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    with_list = plain[:fmt_end] + odd_chunk + plain[fmt_end:]
    assert np.array_equal(read_wav(with_list, 8000).samples, x)
    for placeholder in (0, 0x7FFFF000, 0xFFFFFFFF):  # espeak-ng --stdout, sox to a pipe...
        streamed = plain[:40] + struct.pack("<I", placeholder) + plain[44:]
        assert np.array_equal(read_wav(streamed, 8000).samples, x)


def _error(source: Path | bytes) -> AudioError:
    with pytest.raises(AudioError) as err:
        read_wav(source, 8000)
    return err.value


def test_broken_inputs_raise_stable_codes(tmp_path: Path) -> None:
    valid = to_wav_bytes(Audio(tone(440.0, 0.1, 8000), 8000))
    assert _error(b"hello").code == "audio_unreadable"
    assert _error(b"RIFF\x00\x00\x00\x00WAVEjunk").code == "audio_unreadable"
    assert _error(b"RIFX" + valid[4:]).code == "audio_unreadable"
    assert _error(valid[:30]).code == "audio_unreadable"
    assert "truncated" in _error(valid[:300]).message
    no_data = valid[:36]
    assert "no data chunk" in _error(no_data).message
    data_first = valid[:12] + valid[36:44] + valid[12:36]
    assert _error(data_first[:44]).code == "audio_unreadable"
    zero_rate = bytearray(valid)
    zero_rate[24:28] = b"\x00\x00\x00\x00"
    assert _error(bytes(zero_rate)).code == "audio_unreadable"
    assert _error(valid[:44]).code == "audio_unreadable"  # declares 1600 bytes, holds none
    assert _error(to_wav_bytes(Audio(np.zeros(0, dtype=np.int16), 8000))).code == "audio_empty"
    adpcm = pack_wav(b"\x00" * 256, rate=8000, channels=1, bits=4, format_tag=2, block_align=256)
    assert _error(adpcm).code == "audio_format_unsupported"
    odd_bits = pack_wav(b"\x00" * 60, rate=8000, channels=1, bits=48, format_tag=FORMAT_PCM)
    assert _error(odd_bits).code == "audio_format_unsupported"
    missing = _error(tmp_path / "nope.wav")
    assert missing.code == "audio_unreadable" and "nope.wav" in missing.message


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("not_a_wav.wav", "audio_unreadable"),
        ("truncated_header.wav", "audio_unreadable"),
        ("truncated_data.wav", "audio_unreadable"),
        ("zero_channels.wav", "audio_unreadable"),
        ("empty.wav", "audio_empty"),
        ("adpcm.wav", "audio_format_unsupported"),
    ],
)
def test_committed_broken_files(name: str, code: str) -> None:
    err = _error(FIXTURES / "wav" / name)
    assert err.code == code
    assert name in err.message  # the message names the file


def test_committed_valid_odd_formats() -> None:
    stereo = read_wav(FIXTURES / "wav" / "stereo_24bit_44k.wav", 16000)
    info = wav_info(FIXTURES / "wav" / "stereo_24bit_44k.wav")
    assert (info.channels, info.rate, info.bits) == (2, 44100, 24)
    expected = (
        tone(440.0, 0.15, 16000, dbfs=-6.0).astype(np.float64) + tone(660.0, 0.15, 16000, dbfs=-6.0)
    ) / 2
    assert len(stereo.samples) == len(expected)
    assert np.max(np.abs(stereo.samples[200:-200] - expected[200:-200])) < 40
    f32 = read_wav(FIXTURES / "wav" / "float32_16k.wav", 8000)
    assert wav_info(FIXTURES / "wav" / "float32_16k.wav").format_tag == FORMAT_FLOAT
    assert f32.rate == 8000 and len(f32.samples) == 2400


def test_committed_speech_manifest() -> None:
    folder = FIXTURES / "speech"
    with (folder / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 1_500_000
    for row in rows:
        rate = int(row["sample_rate"])
        audio = read_wav(folder / row["file"], rate)
        assert audio.rate == rate and audio.duration > 1.0
        if row["kind"] == "digits":
            assert row["expected"].isdigit()
        else:
            assert row["expected"] in ("yes", "no")
    digits_8k = "".join(
        r["expected"]
        for r in rows
        if r["file"].startswith("code0123456789_single3") and r["sample_rate"] == "8000"
    )
    assert digits_8k == "0123456789"


@pytest.mark.parametrize("rate", [1, 3999, 192_001, 2**32 - 1])
def test_hostile_sample_rates_are_refused_before_decoding(rate: int) -> None:
    """A 1 KB file whose header claims 1 Hz or 2**32-1 Hz used to hang the resampler for
    seconds and allocate gigabytes: now the header alone is refused."""
    header = bytearray(pack_wav(b"\x01\x02" * 500, rate=8000, channels=1, bits=16, format_tag=1))
    header[24:28] = struct.pack("<I", rate)  # the fmt chunk's sample rate
    hostile = bytes(header)
    error = _error(hostile)
    assert error.code == "audio_unreadable"
    assert f"sample rate {rate} Hz" in error.message
    with pytest.raises(AudioError):
        wav_info(hostile)


@pytest.mark.parametrize("rate", [4000, 8000, 192_000])
def test_sample_rates_within_bounds_still_read(rate: int) -> None:
    x = tone(440.0, 0.05, rate)
    assert read_wav(to_wav_bytes(Audio(x, rate)), rate).rate == rate


def test_sizes_that_do_not_fit_the_file_are_refused() -> None:
    valid = to_wav_bytes(Audio(tone(440.0, 0.1, 8000), 8000))
    declares_more = valid[:40] + struct.pack("<I", 0x10000) + valid[44:]  # 64 KB in a 1.6 KB file
    assert "truncated" in _error(declares_more).message
    huge_fmt = valid[:16] + struct.pack("<I", 0x7FFFFFF0) + valid[20:]  # fmt chunk past the end
    assert _error(huge_fmt).code == "audio_unreadable"
    wide = pack_wav(
        b"\x00" * 1024, rate=8000, channels=1, bits=16, format_tag=FORMAT_PCM, block_align=1024
    )  # 8192-bit samples
    assert _error(wide).code == "audio_unreadable"
