"""Synthesise caller turns with espeak-ng and write WAV test fixtures plus a manifest.

Two sets:

* ``--set full`` (default; output ``tests/fixtures/generated``, not committed): every code and
  answer below in several voices (``vi``, ``vi-vn-x-south``), speaking rates (130/160/190 wpm),
  digit-reading styles (one by one, in pairs "mười hai", with the variants "lăm/tư/mốt/linh",
  with fillers "dạ, mã số của tôi là") and yes/no words, at 8 and 16 kHz;
* ``--set committed`` (output ``tests/fixtures``): the small set kept in the repository for
  replayed-call tests (demo code 0123456789 in 3 turns one by one and in 2 turns in pairs,
  7912345680 in one turn both ways, yes and no answers, at 8 and 16 kHz), plus WAV files in odd
  formats and broken ones for error tests (``tests/fixtures/wav``).

Each turn is said the way a careful caller reads a code: every word (or pair) is synthesised on
its own and joined with a short pause (0.3 s), after 1.0 s of lead-in silence (viet-asr drops
the first words when speech starts within about 0.5 s of the buffer start). The 8 kHz files are
the 16 kHz audio through a simulated phone line (band-pass 300-3400 Hz, light noise, G.711
mu-law) and are stored as mu-law WAVs, as a phone line delivers them; the 16 kHz files are 16-bit
PCM with light noise (no exact digital silence). ``--check-asr`` transcribes every file with
viet-asr (at 16 kHz) and records what it heard in the manifest's ``asr_heard`` column.

    .venv/bin/python scripts/make_fixtures.py --set committed --check-asr
    .venv/bin/python scripts/make_fixtures.py --out /tmp/turns --voices vi --rates 160
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assistant.audio.g711 import phone_line  # noqa: E402
from assistant.audio.resample import resample, to_pcm  # noqa: E402
from assistant.audio.wav import (  # noqa: E402
    FORMAT_FLOAT,
    FORMAT_PCM,
    pack_wav,
    read_wav,
    to_wav_bytes,
    write_wav,
)
from assistant.call.prompt_voice import trim_silence  # noqa: E402
from assistant.core.ports import PCM, Audio  # noqa: E402
from assistant.language.numbers import NumberReader  # noqa: E402
from assistant.testing.audio import noise, tone  # noqa: E402

RATE = 16000
LEAD_S = 1.0
TAIL_S = 0.4
WORD_GAP_S = 0.3
HEADROOM = 10 ** (-3 / 20)

#: The word for each digit, from ``data/numbers.toml`` (the variants below are reading styles).
DIGIT_WORDS = {d: NumberReader.load().digit_word(d) for d in "0123456789"}
FILLER = "dạ, mã số của tôi là"
YES = ("đúng rồi", "vâng", "đúng", "có", "dạ đúng rồi")
NO = ("không", "không phải", "sai rồi", "không đúng")


@dataclass(frozen=True)
class Turn:
    """One caller turn: ``chunks`` are synthesised one by one and joined with pauses."""

    id: str
    chunks: tuple[str, ...]
    expected: str  # the digits said in this turn, or "yes"/"no"
    kind: str  # "digits" or "yesno"
    style: str  # "single", "pairs", "pairs_variants", "answer"

    @property
    def text(self) -> str:
        return ", ".join(self.chunks)


# --------------------------------------------------------------------------------------------
# How people read digits
# --------------------------------------------------------------------------------------------


def pair_words(pair: str, *, variants: bool) -> str:
    """Two digits read as a number ("23" -> "hai mươi ba"), with the spoken variants
    (mốt, tư, lăm, linh) when ``variants``; a leading 0 is read "không"/"linh" + digit."""
    tens, units = pair[0], pair[1]
    if tens == "0":
        return f"{'linh' if variants else 'không'} {DIGIT_WORDS[units]}"
    if tens == "1":
        if units == "0":
            return "mười"
        return "mười " + ("lăm" if units == "5" else DIGIT_WORDS[units])
    head = f"{DIGIT_WORDS[tens]} mươi"
    if units == "0":
        return head
    unit = DIGIT_WORDS[units]
    if units == "5":
        unit = "lăm"
    elif units == "1":
        unit = "mốt"
    elif units == "4" and variants:
        unit = "tư"
    return f"{head} {unit}"


def split_turns(digits: str, sizes: tuple[int, ...]) -> list[str]:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i : i + size])
        i += size
    if i < len(digits):
        out.append(digits[i:])
    return [p for p in out if p]


def single_turns(code_id: str, digits: str, sizes: tuple[int, ...], *, filler: bool) -> list[Turn]:
    parts = split_turns(digits, sizes)
    turns = []
    for n, part in enumerate(parts, 1):
        chunks = tuple(DIGIT_WORDS[d] for d in part)
        if filler and n == 1:
            chunks = (FILLER, *chunks)
        turns.append(Turn(f"{code_id}_single{len(parts)}_t{n}", chunks, part, "digits", "single"))
    return turns


def pair_turns(code_id: str, digits: str, sizes: tuple[int, ...], *, variants: bool) -> list[Turn]:
    parts = split_turns(digits, sizes)
    style = "pairs_variants" if variants else "pairs"
    turns = []
    for n, part in enumerate(parts, 1):
        pairs = [part[i : i + 2] for i in range(0, len(part), 2)]
        chunks = tuple(
            pair_words(p, variants=variants) if len(p) == 2 else DIGIT_WORDS[p] for p in pairs
        )
        turns.append(Turn(f"{code_id}_{style}{len(parts)}_t{n}", chunks, part, "digits", style))
    return turns


#: committed turns left out at 16 kHz (kept at 8 kHz) to stay under the 1.5 MB budget
COMMITTED_8K_ONLY = frozenset({"code7912345680_pairs_variants1_t1", "yes_vang", "no_khong"})


def committed_turns() -> list[Turn]:
    demo, other = "0123456789", "7912345680"
    turns = single_turns("code0123456789", demo, (3, 3, 4), filler=True)
    turns += pair_turns("code0123456789", demo, (6, 4), variants=False)
    turns += single_turns("code7912345680", other, (10,), filler=False)
    turns += pair_turns("code7912345680", other, (10,), variants=True)
    turns += [
        Turn("yes_dung_roi", ("đúng rồi",), "yes", "yesno", "answer"),
        Turn("yes_vang", ("vâng",), "yes", "yesno", "answer"),
        Turn("no_khong", ("không",), "no", "yesno", "answer"),
        Turn("no_khong_phai", ("không phải",), "no", "yesno", "answer"),
    ]
    return turns


def full_turns() -> list[Turn]:
    rng = np.random.default_rng(20261125)
    codes = {"code0123456789": "0123456789", "code7912345680": "7912345680"}
    for _ in range(4):
        digits = "".join(str(d) for d in rng.integers(0, 10, size=10))
        codes[f"code{digits}"] = digits
    turns: list[Turn] = []
    for code_id, digits in codes.items():
        turns += single_turns(code_id, digits, (10,), filler=False)
        turns += single_turns(code_id, digits, (3, 3, 4), filler=True)
        turns += single_turns(code_id, digits, (5, 5), filler=False)
        turns += pair_turns(code_id, digits, (10,), variants=False)
        turns += pair_turns(code_id, digits, (6, 4), variants=True)
    for i, word in enumerate(YES):
        turns.append(Turn(f"yes{i}", (word,), "yes", "yesno", "answer"))
    for i, word in enumerate(NO):
        turns.append(Turn(f"no{i}", (word,), "no", "yesno", "answer"))
    return turns


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def espeak(text: str, voice: str, wpm: int) -> PCM:
    """espeak-ng's rendering of ``text`` at 16 kHz, with 3 dB headroom, edges trimmed."""
    try:
        out = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except FileNotFoundError:
        sys.exit("espeak-ng not found: apt-get install espeak-ng")
    audio = read_wav(out, RATE)
    return trim_silence(to_pcm(audio.samples.astype(np.float64) * HEADROOM), RATE)


def render_turn(turn: Turn, voice: str, wpm: int) -> PCM:
    gap = np.zeros(round(WORD_GAP_S * RATE), dtype=np.int16)
    parts: list[PCM] = [np.zeros(round(LEAD_S * RATE), dtype=np.int16)]
    for i, chunk in enumerate(turn.chunks):
        if i:
            parts.append(gap)
        parts.append(espeak(chunk, voice, wpm))
    parts.append(np.zeros(round(TAIL_S * RATE), dtype=np.int16))
    return np.concatenate(parts)


def channel(clean16: PCM, rate: int, seed: int) -> Audio:
    """16 kHz speech as a 16 kHz microphone (light noise) or an 8 kHz mu-law phone line."""
    if rate == 8000:
        return phone_line(Audio(clean16, RATE), "ulaw", band=True, noise_dbfs=-60.0, seed=seed)
    noisy = clean16.astype(np.float64) + noise(len(clean16) / RATE, RATE, dbfs=-62.0, seed=seed)
    return Audio(resample(to_pcm(noisy), RATE, rate), rate)


class Listener:
    """viet-asr, loaded once, transcribing at 16 kHz."""

    def __init__(self) -> None:
        from vietasr import Pipeline

        self.pipeline = Pipeline.preset("transcribe")

    def hear(self, audio: Audio) -> str:
        pcm = resample(audio.samples, audio.rate, 16000)
        return str(self.pipeline.transcribe(pcm, 16000).text).strip()


FIELDS = ["file", "text", "expected", "kind", "style", "voice", "wpm", "sample_rate", "asr_heard"]


def write_turns(
    turns: list[Turn],
    out: Path,
    *,
    voices: list[str],
    wpms: list[int],
    rates: list[int],
    listener: Listener | None,
    name_suffix: bool,
    only_8k: frozenset[str] = frozenset(),
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for voice in voices:
        for wpm in wpms:
            for turn in turns:
                clean = render_turn(turn, voice, wpm)
                for rate in rates:
                    if rate != 8000 and turn.id in only_8k:
                        continue
                    seed = zlib.crc32(f"{turn.id}/{voice}/{wpm}/{rate}".encode())
                    audio = channel(clean, rate, seed)
                    tag = f"_{voice}_{wpm}" if name_suffix else ""
                    name = f"{turn.id}{tag}_{rate // 1000}k.wav"
                    write_wav(out / name, audio, "ulaw" if rate == 8000 else "pcm16")
                    heard = listener.hear(read_wav(out / name, rate)) if listener else ""
                    rows.append(
                        {
                            "file": name,
                            "text": turn.text,
                            "expected": turn.expected,
                            "kind": turn.kind,
                            "style": turn.style,
                            "voice": voice,
                            "wpm": str(wpm),
                            "sample_rate": str(rate),
                            "asr_heard": heard,
                        }
                    )
                    print(f"{name}: {turn.text!r} -> heard {heard!r}" if listener else name)
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


# --------------------------------------------------------------------------------------------
# Odd and broken WAV files
# --------------------------------------------------------------------------------------------


def format_files() -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of WAV files for reader tests: valid odd formats and broken ones."""
    left = tone(440.0, 0.15, 44100, dbfs=-6.0).astype(np.int32) << 8
    right = tone(660.0, 0.15, 44100, dbfs=-6.0).astype(np.int32) << 8
    frames = np.stack([left, right], axis=1).reshape(-1)
    b = frames.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    yield (
        "stereo_24bit_44k.wav",
        pack_wav(b, rate=44100, channels=2, bits=24, format_tag=FORMAT_PCM),
    )
    f32 = (tone(440.0, 0.3, 16000, dbfs=-6.0) / 32768.0).astype("<f4").tobytes()
    yield "float32_16k.wav", pack_wav(f32, rate=16000, channels=1, bits=32, format_tag=FORMAT_FLOAT)
    valid = to_wav_bytes(Audio(tone(440.0, 0.1, 8000), 8000))
    yield "not_a_wav.wav", b"This is not a WAV file, just text.\n"
    yield "truncated_header.wav", valid[:30]
    yield "truncated_data.wav", valid[: 44 + 200]
    yield "empty.wav", to_wav_bytes(Audio(np.zeros(0, dtype=np.int16), 8000))
    zero_ch = bytearray(valid)
    zero_ch[22:24] = b"\x00\x00"
    yield "zero_channels.wav", bytes(zero_ch)
    yield (
        "adpcm.wav",
        pack_wav(b"\x00" * 256, rate=8000, channels=1, bits=4, format_tag=0x0002, block_align=256),
    )


def write_format_files(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in format_files():
        (out / name).write_bytes(data)
        print(out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("full", "committed"), default="full")
    parser.add_argument("--out", type=Path, help="output folder (default by --set)")
    parser.add_argument("--voices", nargs="+", help="espeak-ng voices")
    parser.add_argument("--rates", nargs="+", type=int, help="speaking rates, words per minute")
    parser.add_argument("--sample-rates", nargs="+", type=int, default=[8000, 16000])
    parser.add_argument(
        "--check-asr",
        action="store_true",
        help="transcribe each file with viet-asr into the manifest",
    )
    args = parser.parse_args(argv)
    listener = Listener() if args.check_asr else None
    if args.set == "committed":
        base = args.out or ROOT / "tests" / "fixtures"
        manifest = write_turns(
            committed_turns(),
            base / "speech",
            voices=args.voices or ["vi"],
            wpms=args.rates or [130],
            rates=args.sample_rates,
            listener=listener,
            name_suffix=False,
            only_8k=COMMITTED_8K_ONLY,
        )
        write_format_files(base / "wav")
    else:
        out = args.out or ROOT / "tests" / "fixtures" / "generated"
        manifest = write_turns(
            full_turns(),
            out,
            voices=args.voices or ["vi", "vi-vn-x-south"],
            wpms=args.rates or [130, 160, 190],
            rates=args.sample_rates,
            listener=listener,
            name_suffix=True,
        )
    print(f"manifest: {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
