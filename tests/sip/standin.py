"""A stand-in for the lead's voice loop, driving a ``ports.CallMedia`` the same way.

Per call, in the transport's worker thread: play a prompt, then loop on
``receive(timeout)``: keep the caller's audio, log keypad digits, and end on a condition
(a digit such as ``#`` after the prompt has drained, a length of caller audio, or the
caller hanging up). Results go to a thread-safe queue for the test to assert on.

It mirrors what the real voice loop does with the port: time counted in received samples,
``queued_seconds()`` to know when a prompt is finished, ``flush()`` for barge-in and
``hangup()`` to end the call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.core.ports import AudioFrame, CallerId, CallMedia, DtmfDigit, RemoteHangup

from .audio import I16


@dataclass
class CallRecord:
    call_id: str
    caller: CallerId
    sample_rate: int
    frames: list[I16] = field(default_factory=list)
    digits: str = ""
    remote_hangup: RemoteHangup | None = None
    box_hung_up: bool = False
    prompt_drained_s: float | None = None  # received-audio time when queued_seconds hit 0
    info: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0

    @property
    def audio(self) -> I16:
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.frames).astype(np.int16)

    @property
    def received_s(self) -> float:
        return sum(len(f) for f in self.frames) / float(self.sample_rate)


class StandInHandler:
    """``handler(media)`` for ``BaresipTransport.serve``.

    ``hangup_on``: hang up when this digit arrives (after the prompt has been sent).
    ``hangup_after_s``: hang up after this much caller audio. ``barge_in``: digit → audio
    to play after flushing the current prompt (the voice loop's barge-in).
    """

    def __init__(
        self,
        prompt: I16,
        *,
        hangup_on: str | None = "#",
        hangup_after_s: float | None = None,
        max_call_s: float = 30.0,
        barge_in: Mapping[str, I16] | None = None,
        heard_signal_s: float = 0.5,
    ) -> None:
        self.prompt = prompt
        self.hangup_on = hangup_on
        self.hangup_after_s = hangup_after_s
        self.max_call_s = max_call_s
        self.barge_in = dict(barge_in or {})
        self.heard_signal_s = heard_signal_s
        self.records: queue.Queue[CallRecord] = queue.Queue()
        self.started = threading.Semaphore(0)  # released once per call, when it starts
        self.heard = threading.Event()  # set once a call has heard heard_signal_s of audio

    def __call__(self, media: CallMedia) -> None:
        cpu0 = time.thread_time()
        rec = CallRecord(media.call_id, media.caller, media.sample_rate)
        self.started.release()
        try:
            self._converse(media, rec)
        finally:
            rec.info = dict(getattr(media, "info", {}))
            rec.cpu_s = time.thread_time() - cpu0
            self.records.put(rec)

    def _converse(self, media: CallMedia, rec: CallRecord) -> None:
        media.play(self.prompt)
        heard = 0
        while True:
            event = media.receive(0.1)
            if rec.prompt_drained_s is None and media.queued_seconds() == 0.0:
                rec.prompt_drained_s = heard / media.sample_rate
            if isinstance(event, AudioFrame):
                rec.frames.append(event.samples)
                heard += len(event.samples)
                if heard >= self.heard_signal_s * media.sample_rate:
                    self.heard.set()
            elif isinstance(event, DtmfDigit):
                rec.digits += event.digit
                if event.digit in self.barge_in:
                    media.flush()  # barge-in: drop the rest of the prompt
                    media.play(self.barge_in[event.digit])
                if event.digit == self.hangup_on:
                    self._wait_prompt(media)
                    media.hangup()
                    rec.box_hung_up = True
                    return
            elif isinstance(event, RemoteHangup):
                rec.remote_hangup = event
                return
            seconds = heard / media.sample_rate
            if (
                self.hangup_after_s is not None and seconds >= self.hangup_after_s
            ) or seconds >= self.max_call_s:
                media.hangup()
                rec.box_hung_up = True
                return

    @staticmethod
    def _wait_prompt(media: CallMedia) -> None:
        """Let the prompt finish, counting time in received audio (as the voice loop does)."""
        while media.queued_seconds() > 0:
            event = media.receive(0.1)
            if isinstance(event, RemoteHangup):
                return
