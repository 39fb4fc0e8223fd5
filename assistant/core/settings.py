"""Frozen settings, validated at start-up (a bad value stops the box before the first call)."""

from __future__ import annotations

from dataclasses import dataclass

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

    def __post_init__(self) -> None:
        if not 4 <= self.code_length <= 20:
            raise ConfigError(f"code_length must be 4..20, got {self.code_length}")
        for name in ("max_attempts",):
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
