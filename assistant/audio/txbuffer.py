"""The audio a call has queued for the caller and not yet sent: one FIFO of int16 samples.

Every :class:`~assistant.core.ports.CallMedia` (the SIP call, the sound card, the scripted test
line) keeps what :meth:`play` was given in a :class:`TransmitBuffer` and drains it at its own
pace: the SIP pump in byte chunks, PortAudio's output callback and the scripted line's clock in
sample blocks. ``flush`` (barge-in) and hang-up clear it. Not thread-safe by itself: each media
class guards it with the lock it already holds for its other state.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from assistant.core.errors import AudioError
from assistant.core.ports import PCM


def checked_play_samples(pcm: PCM, rate: int) -> npt.NDArray[np.int16]:
    """``pcm`` as given to ``play``: 1-D int16 at the line's ``rate``, else ``audio_format``."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise AudioError(
            f"play() takes 1-D int16 samples at {rate} Hz, "
            f"got {samples.dtype} with shape {samples.shape}",
            code="audio_format",
        )
    return samples


class TransmitBuffer:
    """A FIFO of int16 samples: ``push`` at the back, ``take`` from the front."""

    def __init__(self) -> None:
        self._chunks: deque[npt.NDArray[np.int16]] = deque()
        self._samples = 0

    def __len__(self) -> int:
        """Samples queued."""
        return self._samples

    def push(self, samples: npt.NDArray[np.int16]) -> None:
        """Queue a copy of ``samples`` after what is already queued."""
        if samples.size:
            self._chunks.append(samples.astype(np.int16, copy=True).reshape(-1))
            self._samples += samples.size

    def give_back(self, samples: npt.NDArray[np.int16]) -> None:
        """Put ``samples`` back at the front (a sink that could not take them)."""
        if samples.size:
            self._chunks.appendleft(samples.astype(np.int16, copy=True).reshape(-1))
            self._samples += samples.size

    def take_into(self, out: npt.NDArray[np.int16]) -> int:
        """Fill ``out`` from the front; returns how many samples it holds now (the rest of
        ``out`` is left as it was)."""
        filled = 0
        while filled < len(out) and self._chunks:
            head = self._chunks[0]
            take = min(len(out) - filled, len(head))
            out[filled : filled + take] = head[:take]
            filled += take
            if take == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[take:]
        self._samples -= filled
        return filled

    def take(self, max_samples: int) -> npt.NDArray[np.int16]:
        """Up to ``max_samples`` from the front."""
        out = np.zeros(max(0, min(max_samples, self._samples)), dtype=np.int16)
        self.take_into(out)
        return out

    def clear(self) -> None:
        self._chunks.clear()
        self._samples = 0
