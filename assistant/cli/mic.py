"""``mic``: talk to the box through the microphone and the speaker (developers).

:func:`run_mic` opens the sound card (:class:`~assistant.telephony.sounddevice.
SoundDeviceMedia`), loads the recogniser and the synthesiser and runs one call, the same
conversation as on the phone line (:class:`~assistant.call.channels.live.LiveChannel` over the
media):
the box's sentences are printed on stderr as they are said, with the recogniser's live partial
results on one line. Ctrl-C ends the call as a caller hang-up (``hung_up``): the streams are
closed and the summary is returned as usual; a second Ctrl-C aborts.

:func:`run_mic_with` is the same call over any media, recogniser and synthesiser (the tests
use a scripted caller and fakes, no sound card).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

from assistant.asr.factory import make_recognizer
from assistant.audio.vad import make_vad
from assistant.call.channels.live import LiveChannel, LiveSettings
from assistant.call.runtime import SayResult, StageSink
from assistant.call.wiring import Box, BoxSettings
from assistant.core.dialog import Event, Heard, HungUp, Keypad, Listen, NoInput, Outcome, Say
from assistant.core.errors import ConfigError
from assistant.core.ports import (
    PCM,
    CallerId,
    CallerSource,
    CallMedia,
    MediaEvent,
    Recognizer,
    RecognizerSession,
    RemoteHangup,
    Synthesizer,
)
from assistant.core.settings import SpeechSettings, check_vad
from assistant.language.prompts import Prompts
from assistant.tts.factory import make_synthesizer

BOX = "Trợ lý"
CALLER = "Quý khách"
INTERRUPT_REASON = "interrupted (Ctrl-C)"


class Console:
    """What the developer sees on stderr: prompts, live partials (one line, ``\\r``), turns."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._partial_len = 0
        self._partial = ""

    def partial(self, text: str) -> None:
        if text == self._partial:
            return
        self._partial = text
        line = f"… {text}"
        pad = max(0, self._partial_len - len(line))
        print("\r" + line + " " * pad, end="", file=self.out, flush=True)
        self._partial_len = len(line)

    def line(self, text: str) -> None:
        if self._partial_len:
            print("\r" + " " * self._partial_len + "\r", end="", file=self.out)
            self._partial_len = 0
            self._partial = ""
        print(text, file=self.out, flush=True)


class InterruptibleMedia:
    """``media`` whose call can be ended from a signal handler: :meth:`interrupt` only sets a
    flag (no lock is taken, so it is safe in a handler), and the next :meth:`receive` returns a
    :class:`RemoteHangup`. ``receive`` waits at most ``poll_s`` (it may return ``None`` before
    ``timeout``, as the port allows), so an interrupt is noticed quickly."""

    def __init__(
        self,
        media: CallMedia,
        *,
        poll_s: float = 0.1,
        on_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.media = media
        self.call_id = media.call_id
        self.caller = media.caller
        self.sample_rate = media.sample_rate
        self.poll_s = poll_s
        self.on_interrupt = on_interrupt
        self.interrupted = False
        self._reported = False

    def interrupt(self) -> None:
        self.interrupted = True

    def receive(self, timeout: float) -> MediaEvent | None:
        if not self.interrupted:
            event = self.media.receive(min(max(0.0, timeout), self.poll_s))
            if not self.interrupted:
                return event
        if not self._reported:  # in the call's thread, not in the signal handler
            self._reported = True
            if self.on_interrupt is not None:
                self.on_interrupt()
        return RemoteHangup(INTERRUPT_REASON)

    def play(self, pcm: PCM) -> None:
        self.media.play(pcm)

    def queued_seconds(self) -> float:
        return self.media.queued_seconds()

    def flush(self) -> None:
        self.media.flush()

    def hangup(self) -> None:
        self.media.hangup()


class EchoChannel:
    """A channel that prints the conversation on the console as it happens."""

    def __init__(self, inner: LiveChannel, prompts: Prompts, console: Console) -> None:
        self.inner = inner
        self.prompts = prompts
        self.console = console

    def attach(self, stage: StageSink) -> None:
        self.inner.attach(stage)

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        self.console.line(f"{BOX}: {self.prompts.text(say, reveal=False)}")
        result = self.inner.say(say, interruptible=interruptible)
        if result is SayResult.INTERRUPTED:
            self.console.line("   (ngắt lời)")
        return result

    def listen(self, listen: Listen) -> Event:
        event = self.inner.listen(listen)
        self.console.line(f"{CALLER}: {describe(event)}")
        return event

    def close(self, outcome: Outcome) -> None:
        self.inner.close(outcome)
        self.console.line(f"({BOX} kết thúc cuộc gọi: {outcome.value})")


def describe(event: Event) -> str:
    if isinstance(event, Heard):
        return event.recognition.text or "(không rõ)"
    if isinstance(event, Keypad):
        return f"[phím] {event.keys}"
    if isinstance(event, NoInput):
        return "(im lặng)"
    if isinstance(event, HungUp):
        return "(gác máy)"
    return type(event).__name__


@contextlib.contextmanager
def ctrl_c_hangs_up(line: InterruptibleMedia) -> Iterator[None]:
    """While the call runs, the first Ctrl-C is the caller hanging up; the second aborts.

    Signal handlers can only be set from the main thread; elsewhere Ctrl-C keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if line.interrupted:
            raise KeyboardInterrupt
        line.interrupt()  # only a flag: printing here could re-enter a print in progress

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def caller_id(number: str | None) -> CallerId:
    return CallerId(number or None, CallerSource.CLI)


@dataclass(frozen=True)
class MicSettings:
    """The ``mic`` command's settings (typed; the parser builds them)."""

    db_url: str
    caller: str | None = None
    barge_in: bool = False
    input_device: int | str | None = None
    output_device: int | str | None = None
    rate: int = 16000
    list_devices: bool = False
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    vad: str = "silero"  # as on the phone line; turns end early on a complete reading too

    def __post_init__(self) -> None:
        if not 8000 <= self.rate <= 96000:
            raise ConfigError(f"--rate {self.rate} Hz is outside 8000..96000")
        check_vad(self.vad)


def run_mic_with(
    media: CallMedia,
    recognizer: Recognizer,
    synthesizer: Synthesizer | None,
    settings: MicSettings,
    *,
    prompts: Prompts | None = None,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """One call over ``media`` (already open). Returns the call summary, never the password."""
    console = Console(out if out is not None else sys.stderr)
    line = InterruptibleMedia(
        media, on_interrupt=lambda: console.line("(Ctrl-C: gác máy; nhấn lần nữa để thoát ngay)")
    )
    box_settings = BoxSettings(
        db_url=settings.db_url, speech=settings.speech, voice_rate=media.sample_rate
    )
    with Box.open(
        box_settings, recognizer=recognizer, synthesizer=synthesizer, prompts=prompts
    ) as box:
        assert box.voice is not None and box.recognizer is not None
        voice, asr_rate = box.voice, box.recognizer.sample_rate
        vad = make_vad(settings.vad, media.sample_rate)
        judge = box.judge()

        def channel(session: RecognizerSession | None) -> EchoChannel:
            assert session is not None
            live = LiveChannel(
                line,
                session,
                asr_rate,
                voice,
                settings=LiveSettings(barge_in_speech=settings.barge_in),
                on_partial=console.partial,
                clock=clock,
                vad=vad,
                judge=judge,
            )
            return EchoChannel(live, box.prompts, console)

        with ctrl_c_hangs_up(line):
            summary, _ = box.run_call(
                channel, caller=caller_id(settings.caller), call_id=media.call_id, clock=clock
            )
    result = summary.as_dict()  # never the password
    if line.interrupted:
        result["interrupted"] = True
    return result


def run_mic(settings: MicSettings) -> dict[str, Any]:
    """The ``mic`` command. ``--list-devices``: the device table on stderr, and the devices as
    data in the result (stdout stays one JSON object)."""
    from assistant.telephony.sounddevice import (
        SoundDeviceMedia,
        list_devices,
        load_sounddevice,
    )

    backend = load_sounddevice()
    if settings.list_devices:
        devices = list_devices(backend)
        print(
            backend.query_devices() if devices else "(PortAudio sees no audio device)",
            file=sys.stderr,
        )
        return {"devices": devices}
    # Devices are checked before any model is loaded: a missing microphone fails at once.
    media = SoundDeviceMedia(
        caller=caller_id(settings.caller),
        sample_rate=settings.rate,
        input_device=settings.input_device,
        output_device=settings.output_device,
        backend=backend,
    )
    recognizer = make_recognizer(settings.speech)
    try:
        synthesizer = make_synthesizer(settings.speech, output_rate=settings.rate)
        try:
            with media:
                return run_mic_with(media, recognizer, synthesizer, settings)
        finally:
            synthesizer.close()
    finally:
        recognizer.close()
