"""Errors with stable codes.

Every error the box raises on purpose is an :class:`AssistantError` (or a subclass) carrying a
stable, machine-readable ``code``. Messages are for people and never contain a full
social-insurance code, a password or a full phone number.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base error: ``code`` is stable across releases, ``message`` is for people."""

    code: str = "assistant_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(AssistantError):
    """Invalid settings, detected at start-up."""

    code = "config_invalid"


class DataFileError(AssistantError):
    """A table or prompt file under data/ is missing or malformed."""

    code = "data_invalid"


class StoreError(AssistantError):
    """The account store failed (locked database, bad URL, constraint violation...)."""

    code = "store_error"


class AudioError(AssistantError):
    """Audio could not be read, converted or played."""

    code = "audio_error"


class RecognizerError(AssistantError):
    """A speech recogniser engine failed to load or to decode."""

    code = "asr_error"


class SynthesizerError(AssistantError):
    """The speech synthesiser failed."""

    code = "tts_error"


class TransportError(AssistantError):
    """The call transport (SIP stack, sound device) failed."""

    code = "transport_error"


class ThrottledError(AssistantError):
    """A limit that spans calls was reached (too many lookups or issued passwords for a number,
    a code or an account in the window). Not a failure: the caller hears the throttled prompt."""

    code = "throttled"
