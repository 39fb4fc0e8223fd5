"""Frozen settings, validated at start-up (a bad value stops the box before the first call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import ConfigError


@dataclass(frozen=True)
class DialogSettings:
    """Limits of the password-reset conversation."""

    code_length: int = 10
    max_attempts: int = 3  # code attempts per call
    max_reprompts: int = 2  # re-prompts after silence before giving up
    max_unclear: int = 2  # re-asks after an unclear yes/no before the attempt counts as failed
    max_unusable: int = 2  # re-asks after speech with no digits before the attempt fails
    code_groups: tuple[int, ...] = (4, 3, 3)
    password_groups: tuple[int, ...] = (4, 4)
    low_confidence: float = 0.5  # a digit below this is read back as uncertain
    rival_confidence: float = 0.1  # an alternative this likely makes the digits it changes unsure
    #: from this many spoken readings of the wrong length on, ask to read slowly or key in
    hint_after_miscounts: int = 2
    #: from this many rejected read-backs on, ask for the code on the keypad first
    keypad_after_rejections: int = 2

    def __post_init__(self) -> None:
        if not 4 <= self.code_length <= 20:
            raise ConfigError(f"code_length must be 4..20, got {self.code_length}")
        for name in ("max_attempts", "hint_after_miscounts", "keypad_after_rejections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("max_reprompts", "max_unclear", "max_unusable"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if sum(self.code_groups) != self.code_length or min(self.code_groups, default=0) < 1:
            raise ConfigError(f"code_groups {self.code_groups} must add up to {self.code_length}")
        for name in ("low_confidence", "rival_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be within 0..1")


ASR_ENGINES = ("onnx", "vietasr", "vosk")
DEFAULT_ASR = "onnx"
DEFAULT_VOSK_MODEL = "vosk-model-small-vn-0.4"
#: Voice-activity detectors; ``energy`` is the endpointer's own frame energy (no detector).
VAD_ENGINES = ("silero", "webrtc", "energy")
VOICES = ("syllables", "espeak")  # the recorded speaker's syllables; espeak-ng (pyttsx3)
DEFAULT_VOICE = "syllables"


@dataclass(frozen=True)
class SpeechSettings:
    """Validated at start-up: a wrong engine name or model path stops the box at once."""

    asr: str = DEFAULT_ASR
    asr_model: Path | None = None  # Vosk: the model directory
    asr_threads: int = 1
    #: onnx: the weights the model dequantises on every step dequantised once (assistant.asr.fold)
    asr_fold: bool = True
    tts_voice: str = "vi"
    tts_rate_wpm: int = 160
    prompt_pack: Path | None = None
    voice: str = DEFAULT_VOICE
    voice_pack: Path | None = None  # syllables: the pack folder (default voices/lephuong)

    def __post_init__(self) -> None:
        if self.asr not in ASR_ENGINES:
            raise ConfigError(
                f"unknown recogniser {self.asr!r}; choose one of {', '.join(ASR_ENGINES)}"
            )
        if self.asr_model is not None and self.asr != "vosk":
            raise ConfigError("--asr-model is only used by the vosk recogniser")
        if not self.asr_fold and self.asr != "onnx":
            raise ConfigError("--asr-unfolded is only used by the onnx recogniser")
        if not 1 <= self.asr_threads <= 16:
            raise ConfigError("asr_threads must be within 1..16")
        if not 80 <= self.tts_rate_wpm <= 300:
            raise ConfigError("tts_rate_wpm must be within 80..300")
        if self.prompt_pack is not None and not self.prompt_pack.is_dir():
            raise ConfigError(f"prompt pack folder {self.prompt_pack} does not exist")
        if self.voice not in VOICES:
            raise ConfigError(f"unknown voice {self.voice!r}; choose one of {', '.join(VOICES)}")
        if self.voice_pack is not None and self.voice != "syllables":
            raise ConfigError("--voice-pack is only used by the syllables voice")
        if self.voice_pack is not None and not self.voice_pack.is_dir():
            raise ConfigError(f"voice pack folder {self.voice_pack} does not exist")


def check_vad(name: str) -> str:
    """``name`` if it is one of :data:`VAD_ENGINES`, else :class:`ConfigError`."""
    if name not in VAD_ENGINES:
        raise ConfigError(f"unknown VAD {name!r}; choose one of {', '.join(VAD_ENGINES)}")
    return name
