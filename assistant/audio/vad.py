"""Voice-activity detectors for the endpointer: Silero VAD (ONNX, default) and WebRTC VAD.

A :class:`VoiceActivity` is one call's detector stream: it takes frames of exactly
``frame_samples`` int16 samples at ``rate`` and returns the probability that the frame is
speech. The :class:`~assistant.audio.endpoint.Endpointer` turns those probabilities into
speech starts and ends (thresholds with hysteresis in its settings).

* :class:`SileroModel` loads ``silero_vad.onnx`` (Silero VAD v5, MIT) from the files of the
  installed ``silero-vad`` wheel and runs it on onnxruntime, without importing the wheel's
  Python package (which imports torch): install the wheel with ``pip install --no-deps``. One
  model is shared by every call (``run`` is thread-safe); each call gets a
  :class:`SileroStream` holding the model's recurrent state and the 32/64-sample context the
  model expects before each 256/512-sample window (8/16 kHz, 32 ms).
* :class:`WebRtcVad` wraps ``webrtcvad`` (``webrtcvad-wheels``): 10/20/30 ms frames, a yes/no
  answer given as probability 1 or 0.

Which one the box uses, and why, is measured by ``scripts/bench_vad.py`` (see the README).
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assistant.core.errors import AudioError, ConfigError
from assistant.core.ports import PCM
from assistant.core.settings import check_vad

#: Rate → (window, context) samples of Silero VAD v5.
SILERO_WINDOWS = {8000: (256, 32), 16000: (512, 64)}
SILERO_FILE = "silero_vad/data/silero_vad.onnx"
SILERO_DIST = "silero-vad"


class VoiceActivity(Protocol):
    """One stream of a voice-activity detector (one per call, one thread)."""

    rate: int
    frame_samples: int

    def probability(self, frame: PCM) -> float: ...

    def reset(self) -> None: ...


def _check_frame(frame: PCM, size: int, what: str) -> npt.NDArray[np.int16]:
    x = np.asarray(frame)
    if x.dtype != np.int16 or x.ndim != 1 or len(x) != size:
        raise AudioError(
            f"{what} takes frames of {size} int16 samples, got {x.dtype} {x.shape}",
            code="vad_frame",
        )
    return x


class _OnnxSession(Protocol):
    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


def silero_model_path() -> Path:
    """Where the installed ``silero-vad`` wheel keeps ``silero_vad.onnx``."""
    try:
        dist = importlib.metadata.distribution(SILERO_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "silero-vad is not installed: pip install --no-deps silero-vad==6.2.3",
            code="vad_model_missing",
        ) from None
    path = Path(str(dist.locate_file(SILERO_FILE)))
    if not path.is_file():
        raise ConfigError(
            f"silero-vad {dist.version} has no {SILERO_FILE}", code="vad_model_missing"
        )
    return path


@dataclass
class SileroModel:
    """The Silero VAD ONNX model on onnxruntime (CPU, one thread), shared by every call."""

    session: _OnnxSession
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> SileroModel:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(
                f"onnxruntime is not installed: {exc}", code="vad_model_missing"
            ) from exc
        where = path or silero_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(where), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(
                f"onnxruntime cannot load {where.name}: {type(exc).__name__}: {str(exc)[:200]}",
                code="vad_model_invalid",
            ) from exc
        return cls(session, where)

    def stream(self, rate: int) -> SileroStream:
        return SileroStream(self, rate)


class SileroStream:
    """One call's Silero VAD state at 8 or 16 kHz: 32 ms windows."""

    def __init__(self, model: SileroModel, rate: int) -> None:
        if rate not in SILERO_WINDOWS:
            raise ConfigError(f"Silero VAD runs at 8000 or 16000 Hz, not {rate!r}")
        self.model = model
        self.rate = rate
        self.frame_samples, self._context_samples = SILERO_WINDOWS[rate]
        self._sr = np.array(rate, dtype=np.int64)
        self._lock = threading.Lock()  # a stream is one call's; the lock only guards misuse
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, self._context_samples), dtype=np.float32)

    def probability(self, frame: PCM) -> float:
        x = _check_frame(frame, self.frame_samples, "Silero VAD")
        window = np.concatenate([self._context, (x.astype(np.float32) / 32768.0)[None]], axis=1)
        with self._lock:
            try:
                out, state = self.model.session.run(
                    None, {"input": window, "state": self._state, "sr": self._sr}
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise AudioError(
                    f"Silero VAD failed: {type(exc).__name__}: {str(exc)[:200]}",
                    code="vad_failed",
                ) from exc
            self._state = np.asarray(state, dtype=np.float32)
            self._context = window[:, -self._context_samples :]
        return float(np.asarray(out).reshape(-1)[0])


class WebRtcVad:
    """WebRTC's VAD (``webrtcvad-wheels``): ``mode`` 0 (lenient) to 3 (strict)."""

    def __init__(self, rate: int, *, mode: int = 2, frame_ms: int = 20) -> None:
        try:
            import webrtcvad
        except ImportError as exc:
            raise ConfigError(
                f"webrtcvad is not installed (pip install webrtcvad-wheels): {exc}",
                code="vad_model_missing",
            ) from exc
        if rate not in (8000, 16000, 32000, 48000) or frame_ms not in (10, 20, 30):
            raise ConfigError(f"WebRTC VAD cannot run {frame_ms} ms frames at {rate} Hz")
        if mode not in (0, 1, 2, 3):
            raise ConfigError(f"WebRTC VAD mode must be 0-3, got {mode!r}")
        self.rate = rate
        self.mode = mode
        self.frame_samples = rate * frame_ms // 1000
        self._vad = webrtcvad.Vad(mode)

    def reset(self) -> None:
        return None  # WebRTC VAD adapts its noise model continuously; nothing per turn

    def probability(self, frame: PCM) -> float:
        x = _check_frame(frame, self.frame_samples, "WebRTC VAD")
        return 1.0 if self._vad.is_speech(x.tobytes(), self.rate) else 0.0


def make_vad(name: str, rate: int = 8000) -> Callable[[int], VoiceActivity] | None:
    """The per-call detector factory for ``name``, checked at ``rate`` at start-up (the Silero
    model is loaded once, here); ``None`` for ``energy``. :class:`ConfigError` for an unknown
    name or a rate the detector cannot run at."""
    if check_vad(name) == "silero":
        if rate not in SILERO_WINDOWS:
            raise ConfigError(f"Silero VAD runs at 8000 or 16000 Hz, not {rate}; use energy")
        return SileroModel.load().stream
    if name == "webrtc":
        WebRtcVad(rate)  # fail at start-up, not on the first caller
        return lambda r: WebRtcVad(r, mode=3)
    return None
