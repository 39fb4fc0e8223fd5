"""Build the syllable voice pack from the speaker's full inventory of isolated syllables.

    PYTHONPATH=. python scripts/build_voice.py --from ../shared/voice/lephuong

Takes every syllable the box can say (every prompt of data/prompts.toml, the digit words,
ordinals and count words, the spoken forms of data/spoken_forms.toml), prepares each clip once
(assistant/tts/clips.py: trim, level, fade, checks) and writes voices/lephuong/ (syllables.wav,
index.tsv, ATTRIBUTION, LICENSE). Fails, naming the words and the prompts that use them, when a
syllable is neither recorded nor derivable: so editing a prompt text and re-running this is all
it takes to change what the box says. Clips flagged by the checks (clipped onset or tail, bad
level, ...) are listed; ``--strict`` makes them an error. ``--check voices/lephuong`` checks a
built pack (complete for the prompts, levelled, faded) and lists its flagged clips.
``--words FILE`` adds words (one text per line), ``--all`` takes the whole inventory (for a
listening pack outside the repository: ``--out /tmp/lephuong-all``; it does not fit 3 MB).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import unicodedata
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.core.errors import AssistantError
from assistant.core.paths import PROJECT_ROOT
from assistant.language.prompts import Prompts
from assistant.tts.clips import (
    ClipError,
    PrepSettings,
    drop_onset,
    fade,
    prepare,
    speech_level_db,
    to_pcm16,
)
from assistant.tts.pack import PackClip, VoicePack, write_pack
from assistant.tts.spoken import Normaliser, SpokenForms
from assistant.tts.syllables import DEFAULT_VOICE, needed_syllables

SOURCE_REPO = "https://github.com/lephuongbg/words"
LICENSE_TEXT = Path("/usr/share/common-licenses/GPL-3")
RATE = 16000


def _inventory(folder: Path) -> dict[str, Path]:
    return {unicodedata.normalize("NFC", p.stem).lower(): p for p in folder.glob("*.wav")}


def _manifest(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {
            unicodedata.normalize("NFC", row["word"]): row["source"]
            for row in csv.DictReader(fh, delimiter="\t")
        }


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
            raise ClipError(f"{path.name}: not 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def _commit(manifest: dict[str, str]) -> str:
    commits = {src.rsplit("@", 1)[-1] for src in manifest.values() if "@" in src}
    return ", ".join(sorted(commits)) or "unknown"


def check_pack(folder: Path, *, level_tolerance_db: float = 3.0) -> int:
    """Check a built pack: every syllable the prompts need is there, clips start and end at
    zero, levels are within ``level_tolerance_db`` of the target; list the flagged clips."""
    try:
        pack = VoicePack(folder)
        normaliser = Normaliser(SpokenForms.load())
        prompts = Prompts.load()
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems: list[str] = []
    needed = needed_syllables(prompts.templates, prompts.digit_words, prompts.ordinals, normaliser)
    for syl, where in sorted(needed.items()):
        if syl not in pack:
            problems.append(f"{syl!r} is missing (needed by {', '.join(where)})")
    target = PrepSettings().target_db
    for word, clip in sorted(pack.clips.items()):
        level = speech_level_db(clip.samples, pack.rate)
        if abs(level - target) > level_tolerance_db:
            problems.append(f"{word!r}: level {level:.1f} dB, target {target:.1f} dB")
        if clip.samples[0] != 0 or clip.samples[-1] != 0:
            problems.append(f"{word!r}: does not start and end at zero (not faded)")
        flags = [f for f in clip.flags if not f.startswith("derived_from_")]
        if flags:
            print(f"flagged: {word} ({', '.join(flags)})")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    print(f"{folder}: {len(pack.clips)} clips, {pack.seconds():.1f} s, {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--from", dest="source", type=Path, help="folder of <word>.wav")
    ap.add_argument(
        "--check", type=Path, metavar="PACK", help="only check a built pack (no --from needed)"
    )
    ap.add_argument("--manifest", type=Path, help="source manifest (default: FROM/../manifest.tsv)")
    ap.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "voices" / DEFAULT_VOICE, help="pack folder"
    )
    ap.add_argument("--words", type=Path, help="extra texts to cover, one per line")
    ap.add_argument("--all", action="store_true", help="every syllable of the inventory")
    ap.add_argument("--budget-mb", type=float, default=3.0, help="size budget (default 3 MB)")
    ap.add_argument("--strict", action="store_true", help="flagged clips are an error")
    ap.add_argument("--license", type=Path, default=LICENSE_TEXT, help="GPL-3.0 text to ship")
    args = ap.parse_args(argv)
    if args.check is not None:
        return check_pack(args.check)
    if args.source is None:
        ap.error("--from is required (or --check PACK)")
    if not args.source.is_dir():
        print(f"error: {args.source} is not a folder", file=sys.stderr)
        return 2
    try:
        forms = SpokenForms.load()
        normaliser = Normaliser(forms)
        prompts = Prompts.load()
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inventory = _inventory(args.source)
    manifest = _manifest(args.manifest or args.source.parent / "manifest.tsv")
    needed = needed_syllables(prompts.templates, prompts.digit_words, prompts.ordinals, normaliser)
    for written, said in forms.words.items():
        for syl in said.split():
            needed.setdefault(syl, []).append(f"spoken form of {written!r}")
    if args.words:
        for line in args.words.read_text(encoding="utf-8").splitlines():
            for syl in normaliser.syllables(line):
                needed.setdefault(syl, []).append(f"{args.words.name}")
    if args.all:
        for word in inventory:
            needed.setdefault(word, []).append("--all")

    missing = {
        s: where
        for s, where in needed.items()
        if s not in inventory and forms.derived.get(s) not in inventory
    }
    if missing:
        print(f"error: {len(missing)} syllable(s) have no recording:", file=sys.stderr)
        for syl, where in sorted(missing.items()):
            print(f"  {syl!r}: needed by {', '.join(where)}", file=sys.stderr)
        print(
            "  add a spoken form (data/spoken_forms.toml [words]) or a derived clip "
            "([derived]), or change the prompt text",
            file=sys.stderr,
        )
        return 1

    clips: list[PackClip] = []
    flagged: list[str] = []
    for syl in sorted(needed):
        derived_from = None if syl in inventory else forms.derived[syl]
        path = inventory[derived_from or syl]
        try:
            prep = prepare(_read(path), RATE)
            samples = prep.samples
            flags = prep.flags
            if derived_from is not None:
                samples = to_pcm16(fade(drop_onset(samples, RATE), RATE, 0.008))
                flags = (*flags, f"derived_from_{derived_from}")
        except ClipError as exc:
            print(f"error: {path.name}: {exc}", file=sys.stderr)
            return 1
        source = manifest.get(derived_from or syl, path.name)
        clips.append(PackClip(syl, samples, prep.source_level_db, prep.gain_db, flags, source))
        bad = [f for f in flags if not f.startswith("derived_from_")]
        if bad:
            flagged.append(f"{syl} ({', '.join(bad)}; {prep.source_level_db:.1f} dB)")

    size = write_pack(args.out, clips, RATE)
    derived = sorted(
        f"{c.word} (from {forms.derived[c.word]})" for c in clips if c.word not in inventory
    )
    (args.out / "ATTRIBUTION").write_text(
        f'Voice pack "{args.out.name}": {len(clips)} recordings of isolated Vietnamese '
        "syllables by one Northern speaker (lephuong),\n"
        "prepared by scripts/build_voice.py (trimmed, levelled, faded; findings in index.tsv).\n\n"
        f"Source: {SOURCE_REPO} (folder wav/lephuong/), commit {_commit(manifest)}.\n"
        "Licence: GPL-3.0, the source repository's licence (LICENSE). These files are derived\n"
        "from the source recordings and are distributed under the same licence.\n"
        + (
            f"Clips cut from another recording (unvoiced onset removed): {', '.join(derived)}.\n"
            if derived
            else ""
        ),
        encoding="utf-8",
    )
    if not (args.out / "LICENSE").is_file():
        if not args.license.is_file():
            print(f"error: no GPL-3.0 text at {args.license} (--license)", file=sys.stderr)
            return 1
        shutil.copyfile(args.license, args.out / "LICENSE")
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    seconds = sum(len(c.samples) for c in clips) / RATE
    print(f"{args.out}: {len(clips)} clips, {seconds:.1f} s of audio, {total / 1e6:.2f} MB")
    if flagged:
        print(f"flagged by the checks ({len(flagged)}; listen to these):")
        for line in flagged:
            print(f"  {line}")
    if total > args.budget_mb * 1e6 and not args.all:
        print(f"error: the pack is over its {args.budget_mb} MB budget", file=sys.stderr)
        return 1
    if flagged and args.strict:
        return 1
    return 0 if size > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
