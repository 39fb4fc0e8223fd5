"""Choosing engines by configuration: recognisers and the synthesiser behind their ports.

Engines are imported only when chosen, so a typed chat never loads a speech model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import ConfigError
from assistant.core.ports import Recognizer, Synthesizer

ASR_ENGINES = ("onnx", "vietasr", "vosk")
DEFAULT_ASR = "onnx"
DEFAULT_VOSK_MODEL = "vosk-model-small-vn-0.4"


@dataclass(frozen=True)
class SpeechSettings:
    """Validated at start-up: a wrong engine name or model path stops the box at once."""

    asr: str = DEFAULT_ASR
    asr_model: Path | None = None  # Vosk: the model directory
    asr_threads: int = 1
    tts_voice: str = "vi"
    tts_rate_wpm: int = 160
    prompt_pack: Path | None = None

    def __post_init__(self) -> None:
        if self.asr not in ASR_ENGINES:
            raise ConfigError(
                f"unknown recogniser {self.asr!r}; choose one of {', '.join(ASR_ENGINES)}"
            )
        if self.asr_model is not None and self.asr != "vosk":
            raise ConfigError("--asr-model is only used by the vosk recogniser")
        if not 1 <= self.asr_threads <= 16:
            raise ConfigError("asr_threads must be within 1..16")
        if not 80 <= self.tts_rate_wpm <= 300:
            raise ConfigError("tts_rate_wpm must be within 80..300")
        if self.prompt_pack is not None and not self.prompt_pack.is_dir():
            raise ConfigError(f"prompt pack folder {self.prompt_pack} does not exist")


def make_recognizer(settings: SpeechSettings) -> Recognizer:
    if settings.asr == "onnx":
        from assistant.asr.engine import OnnxRecognizer

        return OnnxRecognizer.load(threads=settings.asr_threads)
    if settings.asr == "vietasr":
        from assistant.asr.vietasr import VietAsrRecognizer

        return VietAsrRecognizer()
    from assistant.asr.vosk import VoskRecognizer
    from assistant.core.paths import models_dir

    model = settings.asr_model or models_dir() / DEFAULT_VOSK_MODEL
    return VoskRecognizer(model)


def make_synthesizer(settings: SpeechSettings) -> Synthesizer:
    from assistant.tts.pyttsx3 import Pyttsx3Synthesizer

    return Pyttsx3Synthesizer(voice=settings.tts_voice, rate_wpm=settings.tts_rate_wpm)
