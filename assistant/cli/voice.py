"""Voice commands: ``say`` renders any text with the box's voice to a WAV a person can open;
:func:`write_call_audio` renders what the box said in a (typed) call, for the demo."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from assistant.audio.resample import resample_audio
from assistant.audio.wav import write_wav
from assistant.call.runtime import Channel, SayResult, StageSink
from assistant.core.dialog import Event, Listen, Outcome, Say
from assistant.core.ports import Audio
from assistant.core.settings import DEFAULT_VOICE, VOICES, SpeechSettings

LISTEN_RATE = 16000  # for people: wide band
DEMO_AUDIO = Path("var") / "demo_call.wav"


class SayRecorder:
    """A channel that keeps every :class:`Say` it passes on (to render the call afterwards)."""

    def __init__(self, channel: Channel, says: list[Say]) -> None:
        self.channel = channel
        self.says = says

    def attach(self, stage: StageSink) -> None:
        self.channel.attach(stage)

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        self.says.append(say)
        return self.channel.say(say, interruptible=interruptible)

    def listen(self, listen: Listen) -> Event:
        return self.channel.listen(listen)

    def close(self, outcome: Outcome) -> None:
        self.channel.close(outcome)


def write_call_audio(
    says: Sequence[Say],
    path: Path,
    speech: SpeechSettings | None = None,
    *,
    rate: int = LISTEN_RATE,
    gap_s: float = 0.8,
) -> float:
    """Render ``says`` with the voice ``speech`` chooses (default: the syllable voice) through
    the box's prompt voice, ``gap_s`` apart, into ``path``; returns the duration in seconds."""
    from assistant.call.prompt_voice import PromptVoice
    from assistant.language.prompts import Prompts
    from assistant.tts.factory import make_synthesizer

    speech = speech or SpeechSettings()
    synth = make_synthesizer(speech, output_rate=rate)
    try:
        voice = PromptVoice(Prompts.load(), synth, rate, speech.prompt_pack)
        gap = np.zeros(round(gap_s * rate), dtype=np.int16)
        parts: list[Any] = []
        for say in says:
            parts += [voice.render(say).samples, gap]
    finally:
        synth.close()
    audio = Audio(np.concatenate(parts) if parts else gap, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, audio)
    return audio.duration


def cmd_say(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from assistant.tts.factory import make_synthesizer

    speech = SpeechSettings(voice=args.voice, voice_pack=args.voice_pack)
    synth = make_synthesizer(speech, output_rate=args.rate)
    try:
        audio = resample_audio(synth.synthesize(args.text), args.rate)
        name = synth.name
    finally:
        synth.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_wav(args.out, audio)
    result = {"out": str(args.out), "seconds": round(audio.duration, 3), "rate": audio.rate}
    print(json.dumps({**result, "voice": name}, ensure_ascii=False), file=out)
    return 0


def register(sub: Any) -> None:
    say = sub.add_parser(
        "say",
        help="render Vietnamese text with the box's voice to a WAV file",
        description="Numbers and codes are read as the box reads them (10 → mười, 0912 → "
        "không chín một hai); words the voice pack lacks are said by espeak-ng (logged).",
    )
    say.add_argument("text", help="the text to say")
    say.add_argument("--out", type=Path, required=True, help="WAV file to write")
    say.add_argument("--voice", choices=VOICES, default=DEFAULT_VOICE, help="default: %(default)s")
    say.add_argument("--voice-pack", type=Path, help="syllable voice pack folder")
    say.add_argument(
        "--rate", type=int, default=LISTEN_RATE, help="sample rate (8000: the phone line)"
    )
    say.set_defaults(func=cmd_say)
