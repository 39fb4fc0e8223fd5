"""The voice pack format: prepared syllable clips in one WAV, with an index.

A pack is a folder (``voices/<name>/``) holding

* ``syllables.wav``: every clip, one after the other, mono 16-bit PCM;
* ``index.tsv``: one row per clip: ``word``, ``offset`` and ``length`` (samples into
  ``syllables.wav``), ``level_db`` (speech level of the source clip), ``gain_db`` (applied),
  ``flags`` (comma-separated findings of :func:`assistant.tts.clips.prepare`, or ``-``) and
  ``source`` (where the clip came from);
* ``LICENSE`` and ``ATTRIBUTION``: the recordings' licence and origin.

:func:`write_pack` is used by ``scripts/build_voice.py``; :class:`VoicePack` loads a pack once
(about 60 s of audio, 2 MB) and hands out clips by word.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from assistant.audio.wav import read_wav, wav_info, write_wav
from assistant.core.errors import SynthesizerError
from assistant.core.ports import PCM, Audio

AUDIO_FILE = "syllables.wav"
INDEX_FILE = "index.tsv"
COLUMNS = ("word", "offset", "length", "level_db", "gain_db", "flags", "source")


@dataclass(frozen=True)
class PackClip:
    """One prepared clip (as written by the builder, or as indexed in a pack)."""

    word: str
    samples: PCM
    level_db: float
    gain_db: float
    flags: tuple[str, ...]
    source: str


def _bad_pack(folder: Path, why: str) -> SynthesizerError:
    return SynthesizerError(f"voice pack {folder} is unusable: {why}", code="voice_pack_invalid")


def write_pack(folder: Path, clips: Iterable[PackClip], rate: int) -> int:
    """Write ``syllables.wav`` and ``index.tsv`` into ``folder``; returns their size in bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO()
    writer = csv.writer(rows, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    parts: list[PCM] = []
    offset = 0
    for clip in sorted(clips, key=lambda c: c.word):
        n = len(clip.samples)
        writer.writerow(
            [
                clip.word,
                offset,
                n,
                f"{clip.level_db:.2f}",
                f"{clip.gain_db:.2f}",
                ",".join(clip.flags) or "-",
                clip.source,
            ]
        )
        parts.append(np.asarray(clip.samples, dtype=np.int16))
        offset += n
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    write_wav(folder / AUDIO_FILE, Audio(audio, rate))
    (folder / INDEX_FILE).write_text(rows.getvalue(), encoding="utf-8")
    return (folder / AUDIO_FILE).stat().st_size + (folder / INDEX_FILE).stat().st_size


class VoicePack:
    """A loaded pack: clips by word (NFC, lower case), at the pack's own rate. Immutable."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        audio_path, index_path = self.folder / AUDIO_FILE, self.folder / INDEX_FILE
        if not audio_path.is_file() or not index_path.is_file():
            raise SynthesizerError(
                f"no voice pack in {self.folder} (needs {AUDIO_FILE} and {INDEX_FILE}; "
                "build one with scripts/build_voice.py)",
                code="voice_pack_missing",
            )
        try:
            self.rate = wav_info(audio_path).rate
            samples = read_wav(audio_path, self.rate).samples
            text = index_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad_pack(self.folder, str(exc)) from exc
        samples.flags.writeable = False
        clips: dict[str, PackClip] = {}
        reader = csv.reader(io.StringIO(text), delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise _bad_pack(self.folder, f"{INDEX_FILE} must start with {'/'.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise _bad_pack(self.folder, f"{INDEX_FILE} line {line} has {len(row)} fields")
            try:
                offset, length = int(row[1]), int(row[2])
                level, gain = float(row[3]), float(row[4])
            except ValueError:
                raise _bad_pack(self.folder, f"{INDEX_FILE} line {line}: bad number") from None
            if offset < 0 or length <= 0 or offset + length > len(samples):
                raise _bad_pack(self.folder, f"{INDEX_FILE} line {line}: clip outside the audio")
            word = unicodedata.normalize("NFC", row[0]).lower()
            if word in clips:
                raise _bad_pack(self.folder, f"{INDEX_FILE} line {line}: {word!r} twice")
            flags = tuple(f for f in row[5].split(",") if f and f != "-")
            clips[word] = PackClip(
                word, samples[offset : offset + length], level, gain, flags, row[6]
            )
        if not clips:
            raise _bad_pack(self.folder, "no clips")
        self.clips: Mapping[str, PackClip] = MappingProxyType(clips)

    def __contains__(self, word: object) -> bool:
        return word in self.clips

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.clips)

    def clip(self, word: str) -> PCM:
        try:
            return self.clips[word].samples
        except KeyError:
            raise SynthesizerError(
                f"the voice pack {self.name} has no clip for {word!r}", code="voice_word_missing"
            ) from None

    def seconds(self) -> float:
        return sum(len(c.samples) for c in self.clips.values()) / self.rate

    def __repr__(self) -> str:
        return f"VoicePack({self.name!r}, {len(self.clips)} clips, {self.rate} Hz)"
