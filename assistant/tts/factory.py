"""Choosing the synthesiser by configuration (:class:`~assistant.core.settings.SpeechSettings`).

The engine is imported only when chosen, so a typed chat never loads espeak-ng.
"""

from __future__ import annotations

from assistant.core.ports import Synthesizer
from assistant.core.settings import SpeechSettings


def make_synthesizer(settings: SpeechSettings) -> Synthesizer:
    from assistant.tts.pyttsx3 import Pyttsx3Synthesizer

    return Pyttsx3Synthesizer(voice=settings.tts_voice, rate_wpm=settings.tts_rate_wpm)
