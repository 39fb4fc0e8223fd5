"""The one place a call is built: every command (chat, demo, replay, hear, batch, mic, sip) uses it.

A :class:`Box` holds what all calls of one process share: the prompts, the number reader, the
reset dialog (a pure transition function, so one serves every call), the account store, the
recogniser (one model) and the prompt voice (fixed prompts rendered once). :meth:`Box.run_call`
opens one recogniser session for the call, lets the command build its channel over it, runs
the :class:`~assistant.call.runtime.CallRuntime` (which owns the call summary and hands its
timing sink to the channel) and closes the session whatever happens.

Engines are passed in (tests give fakes from :mod:`assistant.testing`) or, with
:meth:`Box.open`, made from typed :class:`BoxSettings`; the box closes only what it made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from assistant.call.channels.live import GrammarJudge
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallRuntime, CallSummary, Channel
from assistant.core.dialog import Dialog
from assistant.core.errors import ConfigError
from assistant.core.ports import (
    AccountStore,
    CallerId,
    CallerSource,
    Recognizer,
    RecognizerSession,
    Synthesizer,
)
from assistant.core.settings import SpeechSettings
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from dialogs.reset import ResetDialog

#: Builds the call's channel over its recogniser session (``None`` when the box has no ears).
ChannelFactory = Callable[[RecognizerSession | None], Channel]


@dataclass(frozen=True)
class BoxSettings:
    """What a command asks of the box, validated at start-up.

    ``voice_rate`` is the rate the box speaks at (8000 on the phone line, the sound card's rate
    for the microphone, the recording's rate for ``replay --out-audio``); ``None`` for a box that
    only types. ``recognizer`` loads the recogniser chosen by ``speech``.
    """

    db_url: str
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    recognizer: bool = False
    voice_rate: int | None = None

    def __post_init__(self) -> None:
        if not self.db_url.strip():
            raise ConfigError("a database URL is needed")
        if self.voice_rate is not None and not 4000 <= self.voice_rate <= 96000:
            raise ConfigError(f"voice rate {self.voice_rate} Hz is outside 4000..96000")


def cli_caller(number: str | None) -> CallerId:
    """The caller of a command-line call: the number given, else a withheld number."""
    return CallerId(number or None, CallerSource.CLI if number else CallerSource.NONE)


class Box:
    """The shared parts of every call of one process, and the one way to run a call."""

    def __init__(
        self,
        *,
        store: AccountStore,
        prompts: Prompts | None = None,
        reader: NumberReader | None = None,
        recognizer: Recognizer | None = None,
        voice: PromptVoice | None = None,
        closers: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self.prompts = prompts or Prompts.load()
        self.reader = reader or NumberReader.load()
        self.dialog = ResetDialog(self.reader)
        self.store = store
        self.recognizer = recognizer
        self.voice = voice
        self._closers = closers

    @classmethod
    def open(
        cls,
        settings: BoxSettings,
        *,
        recognizer: Recognizer | None = None,
        synthesizer: Synthesizer | None = None,
        store: AccountStore | None = None,
        prompts: Prompts | None = None,
    ) -> Box:
        """Make the engines ``settings`` ask for (those passed in are used as they are)."""
        from assistant.accounts.store import SqlAccountStore

        closers: list[Callable[[], None]] = []
        try:
            if store is None:
                sql = SqlAccountStore(settings.db_url)
                closers.append(sql.close)
                store = sql
            if recognizer is None and settings.recognizer:
                from assistant.asr.factory import make_recognizer

                recognizer = make_recognizer(settings.speech)
                closers.append(recognizer.close)
            prompts = prompts or Prompts.load()
            voice = None
            if settings.voice_rate is not None:
                if synthesizer is None:
                    from assistant.tts.factory import make_synthesizer

                    synthesizer = make_synthesizer(settings.speech, output_rate=settings.voice_rate)
                    closers.append(synthesizer.close)
                voice = PromptVoice(
                    prompts, synthesizer, settings.voice_rate, settings.speech.prompt_pack
                )
        except BaseException:
            for close in reversed(closers):
                close()
            raise
        return cls(
            store=store,
            prompts=prompts,
            recognizer=recognizer,
            voice=voice,
            closers=tuple(closers),
        )

    def judge(self) -> GrammarJudge:
        """What ends a live turn early: the dialog's own reader, at the dialog's threshold."""
        return GrammarJudge(self.reader, low_confidence=self.dialog.settings.low_confidence)

    def run_call(
        self,
        make_channel: ChannelFactory,
        *,
        caller: CallerId,
        call_id: str | None = None,
        reveal_password: bool = False,
        reveal_codes: bool = False,
        dialog: Dialog[Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> tuple[CallSummary, Channel]:
        """One call: a recogniser session, the command's channel over it, the runtime."""
        session = self.recognizer.open_session() if self.recognizer is not None else None
        try:
            channel = make_channel(session)
            runtime = CallRuntime(
                dialog or self.dialog,
                self.store,
                channel,
                self.prompts,
                caller=caller,
                call_id=call_id,
                reveal_password=reveal_password,
                reveal_codes=reveal_codes,
                clock=clock,
            )
            summary = runtime.run()
        finally:
            if session is not None:
                session.close()
        return summary, channel

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers = ()

    def __enter__(self) -> Box:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
