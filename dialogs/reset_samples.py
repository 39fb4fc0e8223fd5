"""Sample events that exercise every branch of the reset dialog (graph test, Mermaid docs)."""

from __future__ import annotations

from dataclasses import replace

from assistant.core.dialog import (
    CallStarted,
    EngineFailed,
    Event,
    Heard,
    HungUp,
    Keypad,
    LookupResult,
    NoInput,
    PasswordIssued,
)
from assistant.core.ports import Hypothesis, Recognition
from assistant.core.settings import DialogSettings
from dialogs.reset import ResetState

CODE_WORDS = " ".join(["không"] * 10)


def canonical_state(state: ResetState, settings: DialogSettings | None = None) -> ResetState:
    """Which digits were collected never changes the flow, only how many: map every digit to
    0 so the explored graph stays finite and small. The way-through counters matter only up to
    their thresholds, so they are capped there."""
    settings = settings or DialogSettings()

    def zeros(value: str) -> str:
        return "0" * len(value)

    return replace(
        state,
        digits=zeros(state.digits),
        candidate=zeros(state.candidate),
        confirmed=zeros(state.confirmed),
        miscounts=min(state.miscounts, settings.hint_after_miscounts),
        rejections=min(state.rejections, settings.keypad_after_rejections),
    )


def sample_events() -> list[tuple[str, Event]]:
    unsure = Recognition(
        (Hypothesis(CODE_WORDS, 0.6), Hypothesis("không " * 5 + "hai " + "không " * 4, 0.4))
    )
    return [
        ("call", CallStarted("c1", "0912345678")),
        ("call withheld", CallStarted("c1", None)),
        ("4 digits", Heard.text("không không không không")),
        ("3 digits", Heard.text("không không không")),
        ("10 digits", Heard.text(CODE_WORDS)),
        ("10 digits, unsure", Heard(unsure)),
        ("11 digits", Heard.text(CODE_WORDS + " không")),
        ("start again", Heard.text("đọc lại từ đầu")),
        ("junk", Heard.text("xin chào cảm ơn")),
        ("yes", Heard.text("đúng rồi")),
        ("no", Heard.text("không")),
        ("keys 10", Keypad("0000000000")),
        ("key 1", Keypad("1")),
        ("key 2", Keypad("2")),
        ("silence", NoInput()),
        ("hang-up", HungUp()),
        ("match", LookupResult(True)),
        ("no match", LookupResult(False)),
        ("throttled", LookupResult(False, throttled=True)),
        ("engine failed", EngineFailed("asr_decode_failed")),
        ("password", PasswordIssued("12345678")),
    ]
