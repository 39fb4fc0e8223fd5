"""The viet-asr package (PyPI ``viet-asr==0.1.0.dev11``) behind the :class:`Recognizer` port.

One :class:`VietAsrRecognizer` loads the package's ``transcribe`` pipeline once (1-3 s here,
~200 MB peak RSS after loading) and shares it between calls; each call opens a
:class:`VietAsrSession` over its own engine stream.

The engine's quirks this adapter absorbs:

* **Segments drop off.** The engine commits a segment after about 1 s of silence and its text
  (one line per segment, the last line possibly still a partial) keeps only the last
  :data:`ENGINE_KEEPS` committed lines, so the early digits of a slowly read code vanish. The
  session polls the engine's text every :data:`POLL_S` of audio and keeps every line that drops
  off the front, so :meth:`VietAsrSession.end` returns everything heard since ``begin``.
* **No end of speech.** ``accept`` never reports an endpoint: the runtime's endpointer decides
  when the turn is over and calls :meth:`VietAsrSession.end`, which asks the engine for its final.
* **No scores.** The API gives neither N-best nor confidences: one hypothesis, confidence None.
* **No grammar.** Hot words and grammars are accepted by the engine and ignored, so the listening
  mode changes nothing here; the number reader interprets the text.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant.asr.session import LoadInfo, SessionGuard
from assistant.asr.session import peak_rss_mb as _peak_rss_mb
from assistant.core.errors import RecognizerError
from assistant.core.ports import PCM, Hypothesis, ListenSpec, Recognition

log = logging.getLogger(__name__)

#: Committed segments the engine keeps in its text (verified on 0.1.0.dev11).
ENGINE_KEEPS = 4
#: Audio fed to the engine between two looks at its text, in seconds. A segment needs about a
#: second of silence to be committed, so at most one line can drop off between two looks.
POLL_S = 0.1
#: Native log levels of the engine: 0 trace, 1 debug, 2 info, 3 warnings, 4 errors, 5 nothing.
LOG_WARNINGS = 3
SUPPORTED_RATES = (8000, 16000)


def _engine_error(what: str, exc: BaseException, code: str) -> RecognizerError:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return RecognizerError(f"viet-asr {what}: {type(exc).__name__}: {detail}", code=code)


def _lines(payload: Any) -> list[str]:
    """The engine's current text as lines (segments); empty lines dropped."""
    text = payload.get("text", "") if isinstance(payload, dict) else ""
    if not isinstance(text, str):
        raise RecognizerError(
            f"viet-asr returned a {type(text).__name__} as text", code="asr_decode_failed"
        )
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def dropped_lines(old: Sequence[str], new: Sequence[str], keeps: int = ENGINE_KEEPS) -> int:
    """How many lines fell off the front of the engine's text between two looks.

    ``old`` and ``new`` are consecutive views: committed lines (at most ``keeps``), then maybe
    one partial line. Every line of ``old`` but its last is settled, so after ``s`` lines dropped
    ``new`` starts with ``old[s:-1]``; the last line may have been revised, may have vanished
    (a partial that came to nothing), and a new partial line may follow.

    Repeated lines ("một", "một", "một") make several shifts fit the text; the engine's cap then
    decides: a line drops only when the view was full (``keeps`` committed lines and a partial)
    and its partial was committed, which shortens the view by one. Returns the first fitting
    shift that is both natural and allowed by that rule, else allowed, else natural, else any.
    """
    n, m = len(old), len(new)
    if n == 0:
        return 0

    def fits(s: int) -> bool:
        settled = list(old[s : n - 1])
        return list(new[: len(settled)]) == settled

    def natural(s: int) -> bool:  # the last line kept (revised or not), maybe a new partial
        return m in (n - s, n - s + 1)

    def capped(s: int) -> bool:  # lines drop only from a full view
        return s == 0 or (n == keeps + 1 and s == 1)

    candidates = [s for s in range(n + 1) if fits(s)]
    for rule in (
        lambda s: natural(s) and capped(s),
        capped,
        natural,
        lambda s: True,
    ):
        chosen = [s for s in candidates if rule(s)]
        if chosen:
            return chosen[0]
    return n  # nothing fits: the whole old view is gone


class SegmentCollector:
    """Every segment the engine showed since the start of an utterance, in order."""

    def __init__(self, keeps: int = ENGINE_KEEPS) -> None:
        self.keeps = keeps
        self.dropped: list[str] = []
        self.view: list[str] = []

    def observe(self, lines: Sequence[str]) -> None:
        shift = dropped_lines(self.view, lines, self.keeps)
        self.dropped.extend(self.view[:shift])
        self.view = list(lines)

    @property
    def segments(self) -> list[str]:
        return [*self.dropped, *self.view]

    @property
    def text(self) -> str:
        return " ".join(s for s in self.segments if s)


class VietAsrRecognizer:
    """viet-asr's ``transcribe`` pipeline, loaded once, shared by every call's session."""

    name = "vietasr"

    def __init__(
        self,
        *,
        preset: str = "transcribe",
        sample_rate: int = 16000,
        native_log_level: int = LOG_WARNINGS,
        pipeline: Any = None,
    ) -> None:
        """Load the pipeline (or use ``pipeline``, an already built one: tests).

        ``sample_rate`` is what sessions are fed: 16000 (default) or 8000 (the engine takes
        telephone audio directly with the same accuracy; the runtime resamples to this rate).
        """
        if sample_rate not in SUPPORTED_RATES:
            raise RecognizerError(
                f"viet-asr sessions take {SUPPORTED_RATES} Hz audio, not {sample_rate}",
                code="asr_load_failed",
            )
        self.sample_rate = sample_rate
        self.preset = preset
        started = time.perf_counter()
        if pipeline is None:
            pipeline = self._load(preset, native_log_level)
        self._pipeline: Any = pipeline
        self.load_info = LoadInfo(time.perf_counter() - started, _peak_rss_mb())
        self._lock = threading.Lock()
        self._sessions: weakref.WeakSet[VietAsrSession] = weakref.WeakSet()
        self._closed = False

    @staticmethod
    def _load(preset: str, native_log_level: int) -> Any:
        try:
            import vietasr
            from vietasr.ffi import native

            native.lib.vietasr_set_log_level(native_log_level)
            return vietasr.Pipeline.preset(preset)
        except Exception as exc:  # ImportError, OSError from dlopen, the package's errors
            raise _engine_error(
                f"could not load the {preset!r} pipeline (pip install viet-asr==0.1.0.dev11)",
                exc,
                "asr_load_failed",
            ) from exc

    def open_session(self) -> VietAsrSession:
        with self._lock:
            if self._closed:
                raise RecognizerError("the viet-asr recogniser is closed", code="asr_decode_failed")
            try:
                stream = self._pipeline.stream(float(self.sample_rate))
            except Exception as exc:
                raise _engine_error("could not open a stream", exc, "asr_decode_failed") from exc
            session = VietAsrSession(stream, self.sample_rate)
            self._sessions.add(session)
            return session

    def close(self) -> None:
        """Close every open session, then free the pipeline. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for session in list(self._sessions):
                session.close()
            try:
                self._pipeline.close()
            except Exception as exc:
                raise _engine_error(
                    "could not free the pipeline", exc, "asr_decode_failed"
                ) from exc

    def __repr__(self) -> str:
        return f"<VietAsrRecognizer {self.preset} {self.sample_rate} Hz>"


class VietAsrSession(SessionGuard):
    """One call's stream: ``begin`` / ``feed`` / ``end``, one utterance at a time."""

    engine_label = "viet-asr"

    def __init__(self, stream: Any, sample_rate: int) -> None:
        super().__init__()
        self._stream: Any = stream
        self.sample_rate = sample_rate
        self._poll = max(1, round(POLL_S * sample_rate))
        self._spec: ListenSpec | None = None
        self._collector = SegmentCollector()
        self._fresh = True  # nothing fed since the last reset

    @property
    def segments_dropped(self) -> int:
        """Segments of the current (or last) utterance that fell off the engine's own text and
        were kept by this session (a count: the text itself may hold a code)."""
        return len(self._collector.dropped)

    def begin(self, spec: ListenSpec) -> None:
        """Start an utterance; an unfinished one is dropped."""
        self._check_open()
        if not self._fresh:
            self._call("reset the stream", self._stream.reset)
            self._fresh = True
        self._collector = SegmentCollector()
        self._spec = spec

    def feed(self, pcm: PCM) -> str:
        """Take audio at :attr:`sample_rate`; return everything heard so far (partial)."""
        self._require_spec()
        samples = np.ascontiguousarray(self._samples(pcm, self.sample_rate))
        for i in range(0, len(samples), self._poll):
            self._fresh = False
            self._call("failed while decoding", self._stream.accept, samples[i : i + self._poll])
            self._collector.observe(self._view(self._stream.partial))
        return self._collector.text

    def end(self) -> Recognition:
        """Finish the utterance: the engine's final, with every segment dropped on the way."""
        self._require_spec()
        try:
            self._collector.observe(self._view(self._stream.final))
            text = self._collector.text
        finally:
            self._spec = None
            if not self._fresh:
                self._call("reset the stream", self._stream.reset)
                self._fresh = True
        return Recognition((Hypothesis(text),)) if text else Recognition()

    def close(self) -> None:
        """Free the engine stream. Idempotent."""
        if not self._mark_closed():
            return
        stream, self._stream = self._stream, None
        try:
            stream.close()
        except Exception as exc:
            raise _engine_error("could not free a stream", exc, "asr_decode_failed") from exc

    # -- internals -----------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RecognizerError:
            raise
        except Exception as exc:
            raise _engine_error(what, exc, "asr_decode_failed") from exc

    def _view(self, getter: Any) -> list[str]:
        result = self._call("failed while decoding", getter)
        return _lines(getattr(result, "payload", None))
