"""What the audio channels share: the timing sink and how long a turn may pause."""

from __future__ import annotations

from assistant.audio.endpoint import EndpointSettings
from assistant.call.runtime import StageSink
from assistant.core.ports import ListenMode, ListenSpec

__all__ = ["StageSink", "endpoint_settings", "no_stage"]


def no_stage(_name: str, _seconds: float) -> None:
    return None


def endpoint_settings(spec: ListenSpec) -> EndpointSettings:
    """How long a turn may pause before it is over depends on what the caller is saying."""
    return EndpointSettings.digits() if spec.mode is ListenMode.DIGITS else EndpointSettings.yesno()
