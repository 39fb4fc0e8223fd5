"""Choosing the recogniser by configuration (:class:`~assistant.core.settings.SpeechSettings`).

Engines are imported only when chosen, so a typed chat never loads a speech model.
"""

from __future__ import annotations

from assistant.core.ports import Recognizer
from assistant.core.settings import DEFAULT_VOSK_MODEL, SpeechSettings

__all__ = ["SpeechSettings", "make_recognizer"]


def make_recognizer(settings: SpeechSettings) -> Recognizer:
    if settings.asr == "onnx":
        from assistant.asr.engine import OnnxRecognizer

        return OnnxRecognizer.load(threads=settings.asr_threads, fold_weights=settings.asr_fold)
    if settings.asr == "vietasr":
        from assistant.asr.vietasr import VietAsrRecognizer

        return VietAsrRecognizer()
    from assistant.asr.vosk import VoskRecognizer
    from assistant.core.paths import models_dir

    model = settings.asr_model or models_dir() / DEFAULT_VOSK_MODEL
    return VoskRecognizer(model)
