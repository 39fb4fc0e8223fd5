"""Choosing the synthesiser by configuration (:class:`~assistant.core.settings.SpeechSettings`).

``voice = "syllables"`` (the default): the recorded speaker (:mod:`assistant.tts.syllables`),
with espeak-ng as the fallback for a word the pack cannot say, loaded only if one comes up;
``voice = "espeak"``: espeak-ng through pyttsx3 (:mod:`assistant.tts.pyttsx3`). Engines are
imported only when chosen, so a typed chat never loads either.
"""

from __future__ import annotations

from assistant.core.ports import Synthesizer
from assistant.core.settings import SpeechSettings


def make_espeak(settings: SpeechSettings) -> Synthesizer:
    from assistant.tts.pyttsx3 import Pyttsx3Synthesizer

    return Pyttsx3Synthesizer(voice=settings.tts_voice, rate_wpm=settings.tts_rate_wpm)


def make_synthesizer(settings: SpeechSettings, *, output_rate: int | None = None) -> Synthesizer:
    """The voice ``settings`` choose; ``output_rate``: the rate it renders at (the call's), else
    its own (espeak always renders at its own: the prompt voice resamples)."""
    if settings.voice == "espeak":
        return make_espeak(settings)
    from assistant.tts.pack import VoicePack
    from assistant.tts.syllables import SyllableSynthesizer, default_pack_dir

    pack = VoicePack(settings.voice_pack or default_pack_dir())
    return SyllableSynthesizer(
        pack, fallback=lambda: make_espeak(settings), output_rate=output_rate
    )
