"""The sound card as a call: a :class:`~assistant.core.ports.CallMedia` over ``sounddevice``.

It is long because the device checks, the two PortAudio callbacks and the error mapping all touch
the same stream state under one lock.

Two PortAudio streams run on PortAudio's own threads:

* the input stream's callback cuts the microphone's audio into 20 ms
  :class:`~assistant.core.ports.AudioFrame` s and puts them on a thread-safe queue (bounded: when
  the
  voice loop stops reading, the oldest frames are dropped and counted) that :meth:`receive`
  reads;
* the output stream's callback pulls the box's audio from a thread-safe playback buffer filled
  by :meth:`play` (silence when it is empty). :meth:`queued_seconds` is what is still buffered;
  once the buffer has run dry it is the device's output latency counting down, so a prompt
  counts as said once it has reached the speaker (the latency is not added while audio is
  buffered: that would starve the write-ahead of a high-latency device).

The ``sounddevice`` module is the *backend*, passed in through the constructor (tests pass a
fake with the same ``query_devices``/``InputStream``/``OutputStream`` surface). Every PortAudio
failure becomes a :class:`~assistant.core.errors.TransportError`: ``audio_device_missing``
(PortAudio
not installed, no input/output device, a device that cannot be opened), ``audio_device_not_found``
(``--input-device``/``--output-device`` matches nothing), ``audio_rate_unsupported``, or
``audio_device_error`` (a stream failing while the call runs).
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from assistant.audio.txbuffer import TransmitBuffer, checked_play_samples
from assistant.core.errors import TransportError
from assistant.core.ports import PCM, AudioFrame, CallerId, MediaEvent, RemoteHangup

log = logging.getLogger("assistant.audio.device")

FRAME_S = 0.02
_RX_QUEUE_S = 10.0  # microphone audio kept for a voice loop that is busy (TTS, decoding)

PORTAUDIO_HINT = (
    "install the PortAudio library (Debian/Ubuntu: sudo apt-get install libportaudio2; "
    "Fedora: sudo dnf install portaudio; macOS: brew install portaudio)"
)
DEVICE_HINT = (
    "connect a microphone and a speaker or headset, check that this user may use them "
    "(Linux: the 'audio' group, or a running PulseAudio/PipeWire session), list what PortAudio "
    "sees with `mic --list-devices` and pick one with --input-device/--output-device"
)


class AudioStream(Protocol):
    """What we use of a ``sounddevice`` stream."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class AudioBackend(Protocol):
    """What we use of the ``sounddevice`` module (a fake in tests)."""

    def query_devices(self, device: int | str | None = None, kind: str | None = None) -> Any: ...

    def InputStream(self, **kwargs: Any) -> AudioStream: ...

    def OutputStream(self, **kwargs: Any) -> AudioStream: ...


def load_sounddevice(
    import_module: Callable[[str], Any] = importlib.import_module,
) -> AudioBackend:
    """The real backend. ``sounddevice`` raises OSError at import when PortAudio is missing
    (``import_module`` is injectable for tests)."""
    try:
        sounddevice = import_module("sounddevice")
    except OSError as exc:
        raise TransportError(
            f"the PortAudio library could not be loaded ({exc}); {PORTAUDIO_HINT}",
            code="audio_device_missing",
        ) from exc
    except ImportError as exc:
        raise TransportError(
            "the sounddevice package is not installed: pip install 'sounddevice>=0.4.6'",
            code="audio_device_missing",
        ) from exc
    backend: AudioBackend = sounddevice
    return backend


def parse_device(text: str | int | None) -> int | str | None:
    """A ``--input-device`` value: an index (``"3"``) or a (part of a) device name."""
    if text is None or isinstance(text, int):
        return text
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def backend_errors(backend: AudioBackend) -> tuple[type[BaseException], ...]:
    """The exceptions a backend raises: PortAudioError (when it has one) and the usual ones."""
    errors: list[type[BaseException]] = [OSError, ValueError, RuntimeError]
    pa_error = getattr(backend, "PortAudioError", None)
    if isinstance(pa_error, type) and issubclass(pa_error, BaseException):
        errors.insert(0, pa_error)
    return tuple(errors)


def list_devices(backend: AudioBackend) -> list[dict[str, Any]]:
    """Every device PortAudio sees, as plain data (index, name, channels, default rate)."""
    out: list[dict[str, Any]] = []
    try:
        devices = backend.query_devices()
    except backend_errors(backend) as exc:
        raise TransportError(
            f"cannot list audio devices: {exc}", code="audio_device_missing"
        ) from exc
    for index, dev in enumerate(devices):
        out.append(
            {
                "index": int(dev.get("index", index)),
                "name": str(dev.get("name", "")),
                "inputs": int(dev.get("max_input_channels", 0)),
                "outputs": int(dev.get("max_output_channels", 0)),
                "default_rate": float(dev.get("default_samplerate", 0.0)),
            }
        )
    return out


def _stream_error(
    kind: str, device: int | str | None, rate: int, exc: BaseException
) -> TransportError:
    which = "default" if device is None else repr(device)
    if "sample rate" in str(exc).lower():
        return TransportError(
            f"the {kind} device ({which}) cannot run at {rate} Hz ({exc}); try --rate 48000 or "
            "44100, or another device",
            code="audio_rate_unsupported",
        )
    return TransportError(
        f"cannot open the {kind} device ({which}): {exc}; {DEVICE_HINT}",
        code="audio_device_missing",
    )


class SoundDeviceMedia:
    """A call through the sound card (``ports.CallMedia``); used by ``mic``.

    Construction checks the devices (fast, before any model is loaded); :meth:`open` (or
    ``with``) starts the streams and :meth:`close` stops them. ``end(reason)`` ends the call as
    if the caller hung up (Ctrl-C): :meth:`receive` then returns a :class:`RemoteHangup`. After
    the box's own :meth:`hangup`, queued audio is dropped and ``receive`` returns what was already
    received, then ``None``.
    """

    def __init__(
        self,
        *,
        caller: CallerId,
        sample_rate: int = 16000,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        backend: AudioBackend | None = None,
        call_id: str | None = None,
        frame_s: float = FRAME_S,
        rx_queue_s: float = _RX_QUEUE_S,
    ) -> None:
        if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
            raise TransportError(
                f"device sample rate must be 8000..192000 Hz, got {sample_rate!r}",
                code="audio_rate_unsupported",
            )
        self.backend = backend if backend is not None else load_sounddevice()
        self._errors = backend_errors(self.backend)
        self.call_id = call_id or "mic-" + uuid.uuid4().hex[:8]
        self.caller = caller
        self.sample_rate = sample_rate
        self.frame_samples = max(1, round(frame_s * sample_rate))
        self.input_device = parse_device(input_device)
        self.output_device = parse_device(output_device)
        self.input_info = self._check_device(self.input_device, "input")
        self.output_info = self._check_device(self.output_device, "output")
        max_frames = max(1, round(rx_queue_s / frame_s))
        self._rx: queue.Queue[AudioFrame] = queue.Queue(maxsize=max_frames)
        self._rx_partial = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._tx = TransmitBuffer()
        self._tail = 0  # samples still inside the device after the buffer ran dry
        self._latency_samples = 0
        self._ended: RemoteHangup | None = None
        self._hung_up_locally = False
        self._closing = False
        self._in: AudioStream | None = None
        self._out: AudioStream | None = None
        self.rx_dropped_frames = 0
        self.input_status_count = 0
        self.output_status_count = 0

    def __repr__(self) -> str:
        return (
            f"<SoundDeviceMedia {self.call_id} rate={self.sample_rate} "
            f"open={self._in is not None} ended={self.ended}>"
        )

    # -- devices -------------------------------------------------------------------------------

    def _check_device(self, device: int | str | None, kind: str) -> dict[str, Any]:
        channels_key = f"max_{kind}_channels"
        try:
            devices = list(self.backend.query_devices())
        except self._errors as exc:
            raise TransportError(
                f"cannot list audio devices: {exc}; {DEVICE_HINT}", code="audio_device_missing"
            ) from exc
        if not any(int(d.get(channels_key, 0)) > 0 for d in devices):
            raise TransportError(
                f"no audio {kind} device found ({len(devices)} device(s) in all); {DEVICE_HINT}",
                code="audio_device_missing",
            )
        try:
            info = self.backend.query_devices(device, kind=kind)
        except self._errors as exc:
            if device is None:
                raise TransportError(
                    f"there is no default audio {kind} device ({exc}); {DEVICE_HINT}",
                    code="audio_device_missing",
                ) from exc
            raise TransportError(
                f"no audio {kind} device matches {device!r} ({exc}); see `mic --list-devices`",
                code="audio_device_not_found",
            ) from exc
        return dict(info)

    # -- life cycle ----------------------------------------------------------------------------

    def open(self) -> SoundDeviceMedia:
        """Start the streams (input first: nothing is played before the microphone runs)."""
        if self._in is not None:
            return self
        try:
            self._in = self.backend.InputStream(
                samplerate=self.sample_rate,
                blocksize=self.frame_samples,
                device=self.input_device,
                channels=1,
                dtype="int16",
                callback=self._on_input,
                finished_callback=self._on_finished,
            )
        except self._errors as exc:
            raise _stream_error("input", self.input_device, self.sample_rate, exc) from exc
        try:
            self._out = self.backend.OutputStream(
                samplerate=self.sample_rate,
                blocksize=self.frame_samples,
                device=self.output_device,
                channels=1,
                dtype="int16",
                callback=self._on_output,
                finished_callback=self._on_finished,
            )
        except self._errors as exc:
            self._close_streams()
            raise _stream_error("output", self.output_device, self.sample_rate, exc) from exc
        latency = getattr(self._out, "latency", 0.0)
        if isinstance(latency, int | float) and latency > 0:
            self._latency_samples = round(float(latency) * self.sample_rate)
        try:
            self._in.start()
            self._out.start()
        except self._errors as exc:
            self._close_streams()
            raise TransportError(
                f"cannot start the audio streams: {exc}; {DEVICE_HINT}", code="audio_device_missing"
            ) from exc
        log.info(
            "sound card open at %d Hz (input %s, output %s)",
            self.sample_rate,
            self.input_info.get("name", "?"),
            self.output_info.get("name", "?"),
        )
        return self

    def close(self) -> None:
        """Stop and close both streams (idempotent). Errors are logged, not raised: the call is
        over and the other stream must still be closed."""
        self._close_streams()
        if self.rx_dropped_frames:
            log.warning(
                "%s: %d microphone frame(s) dropped (the voice loop fell behind)",
                self.call_id,
                self.rx_dropped_frames,
            )

    def _close_streams(self) -> None:
        self._closing = True
        for stream in (self._in, self._out):
            if stream is None:
                continue
            try:
                stream.stop()
            except self._errors as exc:
                log.warning("%s: stopping an audio stream failed: %s", self.call_id, exc)
            try:
                stream.close()
            except self._errors as exc:
                log.warning("%s: closing an audio stream failed: %s", self.call_id, exc)
        self._in = self._out = None

    def __enter__(self) -> SoundDeviceMedia:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._in is not None

    @property
    def ended(self) -> bool:
        with self._lock:
            return self._ended is not None or self._hung_up_locally

    def end(self, reason: str) -> None:
        """The call is over from the caller's side (Ctrl-C, the device went away). Safe to call
        from any thread; ``receive`` returns ``RemoteHangup(reason)`` from now on."""
        with self._lock:
            if self._ended is None:
                self._ended = RemoteHangup(reason)
                self._tx.clear()
                self._tail = 0

    # -- CallMedia -----------------------------------------------------------------------------

    def receive(self, timeout: float) -> MediaEvent | None:
        ended = self._remote_end()
        if ended is not None:
            return ended
        try:
            frame = (
                self._rx.get(timeout=max(0.0, timeout)) if timeout > 0 else self._rx.get_nowait()
            )
        except queue.Empty:
            return self._remote_end()
        return self._remote_end() or frame

    def _remote_end(self) -> RemoteHangup | None:
        with self._lock:
            return None if self._hung_up_locally else self._ended

    def play(self, pcm: PCM) -> None:
        samples = checked_play_samples(pcm, self.sample_rate)
        if samples.size == 0:
            return
        with self._lock:
            if self._ended is not None or self._hung_up_locally:
                return
            self._tx.push(samples)

    def queued_seconds(self) -> float:
        with self._lock:
            if self._ended is not None or self._hung_up_locally:
                return 0.0
            return (len(self._tx) + self._tail) / self.sample_rate

    def flush(self) -> None:
        with self._lock:
            self._tx.clear()
            self._tail = 0

    def hangup(self) -> None:
        with self._lock:
            self._hung_up_locally = True
            self._tx.clear()
            self._tail = 0

    # -- PortAudio threads ---------------------------------------------------------------------

    def _on_input(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.input_status_count += 1
        data = np.asarray(indata, dtype=np.int16)
        mono = data[:, 0] if data.ndim == 2 else data.reshape(-1)
        buf = np.concatenate([self._rx_partial, mono]) if len(self._rx_partial) else mono
        n = self.frame_samples
        whole = len(buf) - len(buf) % n
        for start in range(0, whole, n):
            self._put(AudioFrame(buf[start : start + n].copy()))
        self._rx_partial = buf[whole:].copy()

    def _put(self, frame: AudioFrame) -> None:
        while True:
            try:
                self._rx.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._rx.get_nowait()  # keep the newest audio
                    self.rx_dropped_frames += 1
                except queue.Empty:
                    pass

    def _on_output(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.output_status_count += 1
        out = np.zeros(frames, dtype=np.int16)
        with self._lock:
            filled = self._tx.take_into(out)
            if filled and not len(self._tx):  # ran dry: the last samples are now inside the device
                self._tail = self._latency_samples
            elif not filled:
                self._tail = max(0, self._tail - frames)
        outdata[:] = out.reshape(-1, 1) if np.ndim(outdata) == 2 else out

    def _on_finished(self) -> None:
        """A stream stopped: on purpose (close) or because the device went away."""
        if not self._closing:
            log.warning("%s: the audio stream stopped unexpectedly", self.call_id)
            self.end("audio device stopped")
