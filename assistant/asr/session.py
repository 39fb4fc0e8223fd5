"""What every recogniser shares: session guards (one utterance at a time, closed means closed)
and how loading went.

:class:`SessionGuard` keeps the session's state (the current :class:`ListenSpec` or none, and
whether it is closed) and raises the same :class:`RecognizerError` (``asr_decode_failed``) for
the same misuse in every engine: use after ``close``, ``feed``/``end`` outside an utterance,
samples that are not int16. Its ``repr`` never shows what was heard (it may hold a code).
The engines (ONNX, viet-asr, Vosk) and the fake recogniser subclass it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from assistant.core.errors import RecognizerError
from assistant.core.ports import PCM, ListenSpec


@dataclass(frozen=True)
class LoadInfo:
    """How loading a recogniser went (for reports)."""

    seconds: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (NaN where it cannot be read)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except ImportError:  # pragma: no cover
        return float("nan")


class SessionGuard:
    """The lifecycle guards of a recogniser session (see the module doc)."""

    #: How the engine is named in error messages ("the viet-asr session is closed").
    engine_label: ClassVar[str] = "recogniser"

    def __init__(self) -> None:
        self._spec: ListenSpec | None = None
        self._closed = False

    @property
    def spec(self) -> ListenSpec | None:
        """How the current utterance is heard; ``None`` between utterances."""
        return self._spec

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RecognizerError(
                f"the {self.engine_label} session is closed", code="asr_decode_failed"
            )

    def _require_spec(self) -> ListenSpec:
        self._check_open()
        if self._spec is None:
            raise RecognizerError(
                "feed/end called outside an utterance (call begin first)",
                code="asr_decode_failed",
            )
        return self._spec

    def _mark_closed(self) -> bool:
        """Close the session; ``False`` when it was already closed (``close`` is idempotent)."""
        if self._closed:
            return False
        self._closed = True
        self._spec = None
        return True

    def _samples(self, pcm: PCM, rate: int) -> npt.NDArray[np.int16]:
        """``pcm`` as a flat int16 array, or the engine's clear error."""
        samples = np.asarray(pcm)
        if samples.dtype != np.int16:
            raise RecognizerError(
                f"the {self.engine_label} takes int16 samples at {rate} Hz, got {samples.dtype}",
                code="asr_decode_failed",
            )
        flat: npt.NDArray[np.int16] = samples.reshape(-1)
        return flat

    def __repr__(self) -> str:  # never the text heard: it may hold a code
        state = "closed" if self._closed else (self._spec.mode.value if self._spec else "idle")
        return f"<{type(self).__name__} {state}>"
