"""Synthesizer adapter: pyttsx3 2.99 over espeak-ng, Vietnamese voice, rendered in memory.

pyttsx3 (espeak driver) has traps, all verified on this machine (docs: ../shared/notes/tts.md),
and this adapter works around each of them:

* ``runAndWait()`` returns before the WAV is written (espeak synthesises asynchronously): we
  wait for the ``finished-utterance`` event with a timeout.
* several ``save_to_file`` calls queued before one ``runAndWait`` write only the last file: one
  utterance per ``runAndWait``.
* the engine is one per process (``pyttsx3.init`` caches it and espeak initialises once), and two
  threads using it at once silently lose output: every use holds one process-wide lock.
* a wrong voice name does not raise; espeak keeps the previous voice (English on a fresh engine)
  and pyttsx3 only fires an ``error`` event: we resolve the name against the voice list, watch
  the ``error`` event and check the selected voice after each utterance.
* the driver prints "Audio saved to ..." from its callback thread: silenced.
* after ``fork`` a child using an engine made by its parent hangs: we refuse (error
  ``tts_forked``) instead; create synthesizers after forking.
* (found here) espeak runs property changes through its asynchronous command queue, so right
  after ``setProperty`` it reports "playing"; the ``stop()`` that ``runAndWait`` performs then
  cancels, which can drop the property change and leaves the driver's ``_stopping`` flag set,
  so the *next* utterance comes out empty (seen on ~1 in 3 property changes). We wait until
  espeak is idle after changing properties and after each utterance, check the ``completed``
  flag, voice and rate afterwards, and retry once on an empty or cancelled utterance.

Output is the engine's 22050 Hz (or ``output_rate``), mono int16, with ``headroom_db`` (3 dB) of
headroom so later resampling and filtering do not clip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio.resample import to_pcm
from assistant.audio.wav import read_wav, wav_info
from assistant.core.errors import AudioError, SynthesizerError
from assistant.core.ports import Audio

INSTALL_HINT = "install espeak-ng (apt-get install espeak-ng) and pyttsx3==2.99"
DEFAULT_VOICE = "vi"  # Vietnamese (Northern): the most intelligible of espeak-ng's three
DEFAULT_RATE_WPM = 160  # pyttsx3's default of 200 measured clearly less intelligible


@dataclass
class _Engine:
    """The process-wide pyttsx3 engine and what its callbacks report (guarded by _LOCK)."""

    engine: Any
    pid: int
    finished: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    voices: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    applied: tuple[str, int, float] | None = None  # voice id, rate, volume last queued
    completed: list[bool] = field(default_factory=list)  # finished-utterance flags
    is_playing: Any = None  # pyttsx3.drivers._espeak.IsPlaying


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _quiet(*_args: object, **_kwargs: object) -> None:
    """Replaces ``print`` inside pyttsx3's espeak driver ("Audio saved to ...")."""


def _create_engine() -> _Engine:
    try:
        import pyttsx3
    except ImportError as exc:
        raise SynthesizerError(
            f"pyttsx3 is not installed: {INSTALL_HINT}", code="tts_unavailable"
        ) from exc
    try:
        engine = pyttsx3.init("espeak")
        # the driver modules exist only once init() has loaded libespeak-ng
        import pyttsx3.drivers._espeak as espeak_lib
        import pyttsx3.drivers.espeak as espeak_driver

        espeak_driver.print = _quiet  # the driver's module-level print, used from its thread
    except Exception as exc:  # pyttsx3 raises RuntimeError/OSError when libespeak-ng is absent
        raise SynthesizerError(
            f"espeak-ng is not available ({exc}): {INSTALL_HINT}", code="tts_unavailable"
        ) from exc
    state = _Engine(engine, os.getpid(), is_playing=espeak_lib.IsPlaying)

    def on_finished(completed: bool = True, **_kwargs: object) -> None:
        state.completed.append(bool(completed))
        state.finished.set()

    def on_error(exception: BaseException | None = None, **_kwargs: object) -> None:
        state.errors.append(exception or RuntimeError("unknown pyttsx3 error"))

    engine.connect("finished-utterance", on_finished)
    engine.connect("error", on_error)
    for v in engine.getProperty("voices"):
        state.voices.append((str(v.id), str(v.name), tuple(str(x) for x in v.languages or ())))
    return state


def _engine() -> _Engine:
    """The process's engine (call with _LOCK held)."""
    global _ENGINE  # noqa: PLW0603 - espeak can only be initialised once per process
    if _ENGINE is None:
        _ENGINE = _create_engine()
    if _ENGINE.pid != os.getpid():
        raise SynthesizerError(
            "the pyttsx3 engine was created in a parent process and hangs after fork; "
            "create the synthesizer in the process that uses it (or use the spawn start method)",
            code="tts_forked",
        )
    return _ENGINE


def _resolve_voice(state: _Engine, wanted: str) -> str:
    """The voice id (e.g. ``aav/vi``) for a name, id, id tail or language code."""
    low = wanted.strip().lower()
    for vid, name, _langs in state.voices:
        if low in (vid.lower(), name.lower()) or vid.lower().endswith("/" + low):
            return vid
    for vid, _name, langs in state.voices:
        if low in (lang.lower() for lang in langs):
            return vid
    viet = ", ".join(f"{vid} ({name})" for vid, name, _ in state.voices if "vi" in vid) or "none"
    raise SynthesizerError(
        f"espeak-ng has no voice {wanted!r} (Vietnamese voices here: {viet}); "
        "install espeak-ng-data or fix the voice setting",
        code="tts_voice_missing",
    )


class Pyttsx3Synthesizer:
    """:class:`~assistant.core.ports.Synthesizer` over pyttsx3 + espeak-ng (thread-safe).

    Construction loads the engine, resolves ``voice`` and renders a short probe, so a missing
    espeak-ng (``tts_unavailable``) or voice (``tts_voice_missing``) fails at start-up.
    """

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        rate_wpm: int = DEFAULT_RATE_WPM,
        *,
        volume: float = 1.0,
        headroom_db: float = 3.0,
        output_rate: int | None = None,
        timeout_s: float = 10.0,
        probe: bool = True,
    ) -> None:
        if not 80 <= rate_wpm <= 450:
            raise SynthesizerError(
                f"speech rate {rate_wpm} wpm is outside 80-450", code="tts_config_invalid"
            )
        if not 0.0 < volume <= 1.0 or headroom_db < 0 or timeout_s <= 0:
            raise SynthesizerError(
                "volume must be in (0, 1], headroom_db >= 0, timeout_s > 0",
                code="tts_config_invalid",
            )
        self.rate_wpm = int(rate_wpm)
        self.volume = float(volume)
        self.gain = 10.0 ** (-headroom_db / 20.0)
        self.output_rate = output_rate
        self.timeout_s = timeout_s
        self._closed = False
        self._tmpdir = Path(tempfile.mkdtemp(prefix="vssid-tts-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        self._counter = 0
        try:
            with _LOCK:
                self.voice_id = _resolve_voice(_engine(), voice)
            self.name = f"pyttsx3:{self.voice_id}@{self.rate_wpm}"
            if probe:
                self.synthesize("a")
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise

    def synthesize(self, text: str) -> Audio:
        if self._closed:
            raise SynthesizerError("synthesizer is closed", code="tts_closed")
        if not text.strip():
            raise SynthesizerError("nothing to synthesise (empty text)", code="tts_empty_text")
        with _LOCK:
            state = _engine()
            self._counter += 1
            path = self._tmpdir / f"u{self._counter}.wav"
            try:
                return self._render(state, text, path)
            finally:
                path.unlink(missing_ok=True)

    def _render(self, state: _Engine, text: str, path: Path) -> Audio:
        """One utterance, retried once when espeak returns it cancelled or empty."""
        for attempt in (1, 2):
            completed = self._utter(state, text, path)
            audio = self._load(path, allow_empty=attempt == 1)
            if completed and audio is not None:
                return audio
            state.applied = None  # re-apply properties before the retry
        raise SynthesizerError("espeak-ng cancelled the utterance twice", code="tts_failed")

    def _wait_idle(self, state: _Engine, deadline: float) -> None:
        """Wait (briefly, polling) until espeak's asynchronous queue is empty."""
        while state.is_playing():
            if time.monotonic() > deadline:
                state.engine.stop()
                raise SynthesizerError("espeak-ng stayed busy", code="tts_timeout")
            time.sleep(0.0005)

    def _utter(self, state: _Engine, text: str, path: Path) -> bool:
        engine = state.engine
        timeout = self.timeout_s + 0.02 * len(text)
        deadline = time.monotonic() + timeout
        path.unlink(missing_ok=True)
        state.errors.clear()
        state.completed.clear()
        state.finished.clear()
        wanted = (self.voice_id, self.rate_wpm, self.volume)
        if state.applied != wanted:
            engine.setProperty("voice", self.voice_id)
            engine.setProperty("rate", self.rate_wpm)
            engine.setProperty("volume", self.volume)
            state.applied = wanted
            self._wait_idle(state, deadline)  # else runAndWait's stop() cancels (see above)
        engine.save_to_file(text, str(path))
        engine.runAndWait()  # returns before espeak has finished: wait for the event
        finished = state.finished.wait(max(0.0, deadline - time.monotonic()))
        if state.errors:
            state.applied = None
            first = state.errors[0]
            code = "tts_voice_missing" if "SetVoiceByName" in str(first) else "tts_failed"
            raise SynthesizerError(f"espeak-ng failed: {first}", code=code)
        if not finished:
            engine.stop()
            state.applied = None
            raise SynthesizerError(
                f"espeak-ng did not finish within {timeout:.1f} s", code="tts_timeout"
            )
        self._wait_idle(state, deadline)
        current = str(engine.getProperty("voice") or "")
        if current.lower() != self.voice_id.lower():
            state.applied = None
            raise SynthesizerError(
                f"espeak-ng spoke with voice {current!r} instead of {self.voice_id!r}",
                code="tts_voice_missing",
            )
        rate_ok = engine.getProperty("rate") == self.rate_wpm
        return all(state.completed) and rate_ok

    def _load(self, path: Path, *, allow_empty: bool) -> Audio | None:
        """The utterance's audio; ``None`` if empty or missing and ``allow_empty``."""
        if not path.is_file():
            if allow_empty:
                return None
            raise SynthesizerError("espeak-ng finished but wrote no audio file", code="tts_failed")
        try:
            rate = self.output_rate or wav_info(path).rate
            audio = read_wav(path, rate)
        except AudioError as exc:
            if exc.code == "audio_empty" and allow_empty:
                return None
            code = "tts_empty_output" if exc.code == "audio_empty" else "tts_failed"
            raise SynthesizerError(f"espeak-ng output unusable: {exc.message}", code=code) from exc
        samples = (
            audio.samples
            if self.gain == 1.0
            else to_pcm(audio.samples.astype(np.float64) * self.gain)
        )
        return Audio(samples, audio.rate)

    def close(self) -> None:
        """Release this synthesizer's temp folder (the process-wide engine stays loaded)."""
        self._closed = True
        self._cleanup()


def measure(synth: Pyttsx3Synthesizer, texts: list[str]) -> tuple[float, float]:
    """(median ms per text, real-time factor) over ``texts``: for reports and benchmarks."""
    times: list[float] = []
    audio_s = 0.0
    for text in texts:
        t0 = time.perf_counter()
        audio = synth.synthesize(text)
        times.append(time.perf_counter() - t0)
        audio_s += audio.duration
    times.sort()
    return times[len(times) // 2] * 1000.0, sum(times) / max(audio_s, 1e-9)
