"""The thread-side half of a SIP call: a :class:`~assistant.core.ports.CallMedia` for the
voice loop.

The voice loop runs in its own worker thread and blocks; the SIP stack lives on an asyncio
loop. This object is the bridge, and it never touches the stack itself:

* the loop side (one pump task per call, see :mod:`assistant.telephony.sip.transport`) pushes
  received PCM, keypad digits and the end of the call in (:meth:`push_rx`,
  :meth:`push_digit`, :meth:`end`), and takes audio to transmit out (:meth:`take_tx`);
* the worker side uses the ``CallMedia`` methods (``receive``, ``play``, ``flush``,
  ``queued_seconds``, ``hangup``).

Both sides may call at any time, so everything shared is behind one lock; ``receive``
waits on a :class:`queue.Queue`. Nothing here is specific to baresip, so it is unit-tested
without a stack.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from assistant.audio.txbuffer import TransmitBuffer, checked_play_samples
from assistant.core.ports import PCM, AudioFrame, CallerId, DtmfDigit, MediaEvent, RemoteHangup

logger = logging.getLogger("assistant.sip")

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the size of every AudioFrame we deliver
_BYTES_PER_SAMPLE = 2
_DIGITS = frozenset("0123456789*#")
#: Received audio kept for a voice loop that stopped reading (60 s); older frames are dropped.
_RX_QUEUE_FRAMES = 3000


def wall_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class BaresipCallMedia:
    """One live call as the voice loop sees it (``ports.CallMedia``).

    ``info`` holds the per-call facts for the summary (no caller number, no audio): call
    id, SIP Call-ID, remote address, codec, start/answer/end times (monotonic and wall),
    who ended the call and why, and media counters once the call is over.
    """

    def __init__(
        self,
        call_id: str,
        caller: CallerId,
        *,
        on_hangup: Callable[[], None],
        on_wake: Callable[[], None] = lambda: None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.call_id = call_id
        self.caller = caller
        self.sample_rate = sample_rate
        self._on_hangup = on_hangup
        self._on_wake = on_wake
        self._events: queue.Queue[MediaEvent] = queue.Queue(maxsize=_RX_QUEUE_FRAMES)
        self._guard = threading.Lock()
        self._rx_partial = b""
        self._tx = TransmitBuffer()
        self._flush_seq = 0
        self._flush_done = 0
        self._stack_buffered = 0  # bytes the stack holds, as of the last pump tick
        self._ended: RemoteHangup | None = None  # set once the call is over
        self._hung_up_locally = False
        self._info: dict[str, Any] = {"call_id": call_id, "sample_rate": sample_rate}
        self.rx_dropped_frames = 0

    def __repr__(self) -> str:
        return (
            f"<BaresipCallMedia {self.call_id} source={self.caller.source.value} "
            f"ended={self._ended is not None}>"
        )

    # ------------------------------------------------------------------ facts

    @property
    def info(self) -> dict[str, Any]:
        """A snapshot of the per-call facts."""
        with self._guard:
            return dict(self._info)

    def set_info(self, **facts: Any) -> None:
        with self._guard:
            self._info.update(facts)

    def mark(self, name: str) -> None:
        """Record ``<name>_mono`` and ``<name>_at`` (ISO wall clock, UTC) now."""
        self.set_info(**{f"{name}_mono": time.monotonic(), f"{name}_at": wall_now()})

    @property
    def ended(self) -> bool:
        with self._guard:
            return self._ended is not None

    @property
    def hung_up_locally(self) -> bool:
        with self._guard:
            return self._hung_up_locally

    # ------------------------------------------------------------ worker side

    def receive(self, timeout: float) -> MediaEvent | None:
        """The next event, waiting at most ``timeout`` seconds.

        Once the caller (or the network) has ended the call and every event before that
        has been read, every call returns the same :class:`RemoteHangup` at once. After
        the box's own :meth:`hangup`, it returns what was already queued, then ``None``
        after ``timeout``.
        """
        try:
            return self._events.get_nowait()
        except queue.Empty:
            pass
        ended = self._remote_end()
        if ended is not None or timeout <= 0:
            return ended
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return self._remote_end()

    def _remote_end(self) -> RemoteHangup | None:
        with self._guard:
            return None if self._hung_up_locally else self._ended

    def play(self, pcm: PCM) -> None:
        """Queue 8 kHz mono int16 samples for the caller (after what is already queued)."""
        samples = checked_play_samples(pcm, self.sample_rate)
        if samples.size == 0:
            return
        with self._guard:
            if self._ended is not None or self._hung_up_locally:
                logger.debug("%s: play() after the call ended; dropped", self.call_id)
                return
            self._tx.push(samples)
        self._on_wake()

    def queued_seconds(self) -> float:
        """Audio given to :meth:`play` and not yet sent (our buffer plus the stack's)."""
        with self._guard:
            if self._ended is not None:
                return 0.0
            pending = len(self._tx) * _BYTES_PER_SAMPLE + self._stack_buffered
        return pending / float(_BYTES_PER_SAMPLE * self.sample_rate)

    def flush(self) -> None:
        """Drop everything queued for the caller, ours and the stack's (barge-in)."""
        with self._guard:
            self._tx.clear()
            self._stack_buffered = 0
            self._flush_seq += 1
        self._on_wake()

    def hangup(self) -> None:
        """End the call from the box.

        Audio not yet handed to the stack is dropped; what the stack already holds (at
        most the transport's ``tx_ahead_s``) still plays, and the BYE follows it after a
        short tail. To let a prompt finish, wait for ``queued_seconds() == 0`` first.
        """
        with self._guard:
            if self._hung_up_locally or self._ended is not None:
                return
            self._hung_up_locally = True
            self._tx.clear()
            self._stack_buffered = 0
        self._on_hangup()

    # -------------------------------------------------------------- loop side

    def push_rx(self, data: bytes) -> None:
        """Received PCM (native-endian s16), in any size; delivered as 20 ms frames."""
        if not data:
            return
        frame_bytes = FRAME_SAMPLES * _BYTES_PER_SAMPLE
        buf = self._rx_partial + data
        whole = len(buf) - len(buf) % frame_bytes
        self._rx_partial = buf[whole:]
        for offset in range(0, whole, frame_bytes):
            chunk = np.frombuffer(buf, dtype=np.int16, count=FRAME_SAMPLES, offset=offset)
            self._put(AudioFrame(chunk.copy()))

    def push_digit(self, digit: str) -> None:
        if digit in _DIGITS:
            self._put(DtmfDigit(digit))
        else:
            logger.debug("%s: keypad event %r ignored", self.call_id, digit)

    def _put(self, event: MediaEvent) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self.rx_dropped_frames += 1
            if self.rx_dropped_frames in (1, 100) or self.rx_dropped_frames % 1000 == 0:
                logger.warning(
                    "%s: the voice loop is not reading; %d event(s) dropped",
                    self.call_id,
                    self.rx_dropped_frames,
                )

    def take_tx(self, max_bytes: int) -> tuple[bool, bytes, int]:
        """(flush the stack first?, up to ``max_bytes`` of audio, flush generation).

        Atomic, so a ``flush()`` racing the pump either drops this chunk too (next tick)
        or happened before it; audio played after a flush is never flushed by it.
        """
        with self._guard:
            need_flush = self._flush_seq != self._flush_done
            self._flush_done = self._flush_seq
            chunk = self._tx.take(max(0, max_bytes) // _BYTES_PER_SAMPLE)
            return need_flush, chunk.astype("<i2", copy=False).tobytes(), self._flush_done

    def give_back(self, data: bytes, generation: int) -> None:
        """Return audio the stack did not accept, unless a flush came in between."""
        if not data:
            return
        with self._guard:
            if generation == self._flush_seq and self._ended is None:
                usable = len(data) - len(data) % _BYTES_PER_SAMPLE
                self._tx.give_back(np.frombuffer(data[:usable], dtype="<i2").astype(np.int16))

    def set_stack_buffered(self, nbytes: int, generation: int) -> None:
        with self._guard:
            if generation == self._flush_seq:
                self._stack_buffered = max(0, nbytes)

    def end(self, reason: str) -> None:
        """The call is over (any side). Unblocks ``receive`` with a RemoteHangup."""
        with self._guard:
            if self._ended is not None:
                return
            self._ended = RemoteHangup(reason)
            self._tx.clear()
            self._stack_buffered = 0
            local = self._hung_up_locally
        if not local:
            self._put(self._ended)
