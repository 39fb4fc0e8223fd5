"""Benchmark the box's voices through telephone codecs, with an untuned machine listener.

    PYTHONPATH=. python scripts/bench_voice.py                      # small: 10 passwords, μ-law
    PYTHONPATH=. python scripts/bench_voice.py --passwords 50 --codecs ulaw,alaw,gsm   # full

For each voice (``syllables``: the recorded speaker, ``espeak``: espeak-ng through pyttsx3) the
box's own prompt path renders, at 8 kHz as on a SIP call (:class:`PromptVoice`): every prompt of
data/prompts.toml (placeholders filled with sample values), and the password prompt for N random
8-digit passwords (seeded; grouped 4+4 as the dialog reads them). Each rendering goes through a
codec round trip with sox (G.711 μ-law, A-law, GSM 06.10; decoded to 16 kHz with sox's default
dither) and is transcribed by viet-asr's own pipeline through the project's adapter in free mode
(:class:`assistant.asr.vietasr.VietAsrRecognizer`): not our tuned decoder, no grammar.

Figures per voice and codec:

* password digits right: 1 - (digit edits / 8), the digits read by the dialog's number reader
  from the transcript after its first "là" (the whole transcript when there is none); whole
  passwords: all 8 digits right and nothing extra;
* prompt CER: character edits / reference length, the reference being what the voice was asked
  to say (the normaliser's syllables: "VssID" is "vê ét ét ai đi"), both NFC, lower case, no
  punctuation;
* synthesis time per sentence (median and worst; a fresh synthesiser, its caches filling as it
  goes) and
  first-audio time once cached (the worst over every prompt of ``PromptVoice.render`` after
  ``preload``, with a new password each time for the password prompts).

Not a test: it prints figures. Needs sox and the viet-asr wheel; espeak needs espeak-ng.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.asr.vietasr import VietAsrRecognizer
from assistant.audio.wav import read_wav, write_wav
from assistant.call.prompt_voice import PromptVoice
from assistant.core.dialog import Digits, Say
from assistant.core.ports import Audio, ListenMode, ListenSpec, Synthesizer
from assistant.core.settings import DialogSettings
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from assistant.tts.spoken import Normaliser, SpokenForms

PHONE_RATE = 8000
ASR_RATE = 16000
CODECS = {
    "ulaw": ["-e", "u-law", "-b", "8", "-t", "wav"],
    "alaw": ["-e", "a-law", "-b", "8", "-t", "wav"],
    "gsm": ["-t", "gsm"],
}


def make_voice(name: str) -> Synthesizer:
    """The voice as the box makes it for a SIP call (the syllable voice renders at 8 kHz)."""
    if name == "syllables":
        from assistant.tts.syllables import SyllableSynthesizer

        return SyllableSynthesizer(output_rate=PHONE_RATE)
    from assistant.tts.pyttsx3 import Pyttsx3Synthesizer

    return Pyttsx3Synthesizer()


def codec_round_trip(audio: Audio, codec: str, tmp: Path) -> Audio:
    src, coded, out = tmp / "in.wav", tmp / "coded", tmp / "out.wav"
    write_wav(src, audio)
    subprocess.run(
        ["sox", "-R", str(src), "-r", "8000", "-c", "1", *CODECS[codec], str(coded)], check=True
    )
    subprocess.run(
        [
            "sox",
            "-R",
            "-t",
            CODECS[codec][-1],
            str(coded),
            "-r",
            str(ASR_RATE),
            "-c",
            "1",
            "-e",
            "signed-integer",
            "-b",
            "16",
            str(out),
        ],
        check=True,
    )
    return read_wav(out, ASR_RATE)


def transcribe(asr: VietAsrRecognizer, audio: Audio) -> str:
    session = asr.open_session()
    try:
        session.begin(ListenSpec(ListenMode.FREE))
        tail = np.zeros(ASR_RATE, dtype=np.int16)  # a second of silence: the last segment ends
        session.feed(np.concatenate([audio.samples, tail]))
        return session.end().text
    finally:
        session.close()


def plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()))


def edits(a: str, b: str) -> int:
    """Character edits between ``a`` and ``b`` (rapidfuzz, already a dependency)."""
    return int(Levenshtein.distance(a, b))


def sample_says(prompts: Prompts, rng: random.Random, settings: DialogSettings) -> list[Say]:
    code = "".join(rng.choice("0123456789") for _ in range(settings.code_length))
    values: dict[str, object] = {
        "count": 4,
        "remaining": 6,
        "ordinal": 2,
        "code": Digits(code, settings.code_groups),
    }
    says = []
    for prompt_id, template in prompts.templates.items():
        if "{password}" in template:
            continue  # the password prompts are measured with the passwords
        names = re.findall(r"\{(\w+)\}", template)
        params = {n: values[n] for n in names}
        if prompt_id == "too_many_digits":
            params["count"] = 12
        says.append(Say(prompt_id, params))  # type: ignore[arg-type]
    return says


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--voices", default="syllables,espeak")
    ap.add_argument("--codecs", default="ulaw", help="any of ulaw,alaw,gsm")
    ap.add_argument("--passwords", type=int, default=10, help="random 8-digit passwords")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--keep", type=Path, help="write every rendering (before the codec) here")
    ap.add_argument("--verbose", action="store_true", help="print prompt transcripts")
    args = ap.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    for c in codecs:
        if c not in CODECS:
            ap.error(f"unknown codec {c!r}")

    prompts = Prompts.load()
    reader = NumberReader.load()
    normaliser = Normaliser(SpokenForms.load())
    settings = DialogSettings()
    rng = random.Random(args.seed)
    says = sample_says(prompts, rng, settings)
    passwords = ["".join(rng.choice("0123456789") for _ in range(8)) for _ in range(args.passwords)]
    asr = VietAsrRecognizer(sample_rate=ASR_RATE)
    print(f"n: {len(says)} prompts, {len(passwords)} passwords; codecs {', '.join(codecs)}")

    for voice_name in args.voices.split(","):
        # synthesis time per sentence, nothing cached: a fresh synthesiser per pass
        synth = make_voice(voice_name)
        texts = [prompts.text(s) for s in says]
        times = []
        for text in texts:
            t0 = time.perf_counter()
            synth.synthesize(text)
            times.append(time.perf_counter() - t0)
        synth.close()
        synth = make_voice(voice_name)
        voice = PromptVoice(prompts, synth, PHONE_RATE)
        voice.preload()
        first = []
        rendered: list[tuple[str, Audio, str]] = []  # kind, audio, reference
        for say in says:
            voice.render(say)  # the literal text around parameters is cached on first use
            t0 = time.perf_counter()
            audio = voice.render(say)
            first.append(time.perf_counter() - t0)
            rendered.append(("prompt", audio, " ".join(normaliser.syllables(prompts.text(say)))))
        for pw in passwords:
            say = Say("password", {"password": Digits(pw, settings.password_groups, secret=True)})
            t0 = time.perf_counter()
            audio = voice.render(say)
            first.append(time.perf_counter() - t0)
            rendered.append(("password", audio, pw))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for i, (kind, audio, _ref) in enumerate(rendered):
                write_wav(args.keep / f"{voice_name}_{i:03d}_{kind}.wav", audio)
        worst = max(range(len(first)), key=first.__getitem__)
        worst_id = says[worst].prompt if worst < len(says) else "password"
        print(
            f"\n{voice_name}: synthesis per sentence median {statistics.median(times) * 1e3:.1f} "
            f"ms, worst {max(times) * 1e3:.1f} ms; first audio once cached: median "
            f"{statistics.median(first) * 1e3:.2f} ms, worst {first[worst] * 1e3:.2f} ms "
            f"({worst_id})"
        )
        for codec in codecs:
            char_err = char_total = 0
            digit_err = whole = 0
            with tempfile.TemporaryDirectory() as tmp:
                for kind, audio, ref in rendered:
                    heard = transcribe(asr, codec_round_trip(audio, codec, Path(tmp)))
                    if kind == "prompt":
                        e = edits(ref, plain(heard))
                        char_err += e
                        char_total += len(ref)
                        if args.verbose and e:
                            print(f"    {e / len(ref):.2f} {plain(heard)}")
                    else:
                        # the digits after "... là" (the text before it is not the password)
                        tail = heard.split(" là ", 1)[-1] if " là " in heard else heard
                        got = reader.read_digits(tail).digits
                        if args.verbose and got != ref:
                            print(f"    password: {edits(ref, got)} digit edit(s)")
                        digit_err += min(len(ref), edits(ref, got))
                        whole += got == ref
            n = max(1, len(passwords))
            print(
                f"  {codec:5s} password digits right {1 - digit_err / (8 * n):.3f}, whole "
                f"{whole}/{len(passwords)}, prompt CER {char_err / max(1, char_total):.3f}"
            )
        synth.close()
    asr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
