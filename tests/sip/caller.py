"""A caller that listens before it talks, on top of :class:`~sip.softphone.SoftphoneCaller`.

What the caller hears is baresip's ``sndfile`` decoder dump, which grows while the call is up:
:class:`ListeningCaller` re-reads it to wait for what the box has said (digit tones from the
tone prompt pack, then a pause). What the caller says is switched mid-call with ctrl_tcp's
``ausrc aufile,<wav>`` (each WAV ends in long silence: baresip 1.0.0 hangs up when its source
ends). So the test follows the conversation instead of guessing its timing.

Speech comes from the real recordings in ``../shared/corpus/real_vi_dev/lephuongbg_words``
(single words, one speaker), never copied into the repository.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .audio import I16, RATE, silence, write_wav
from .softphone import SoftphoneCaller
from .tones import DigitSequence, digit_sequences

T = TypeVar("T")

#: Digit -> clip name in lephuongbg_words/lephuong (see the corpus manifest.tsv).
DIGIT_CLIPS = {
    "0": "khong",
    "1": "mot",
    "2": "hai",
    "3": "ba",
    "4": "bon",
    "5": "nam",
    "6": "sau",
    "7": "bay",
    "8": "tam",
    "9": "chin",
}
QUIET_RMS = 200.0


def corpus_words_dir(corpus: Path | None) -> Path | None:
    if corpus is None:
        return None
    folder = corpus / "lephuongbg_words" / "lephuong"
    needed = [*DIGIT_CLIPS.values(), "dung", "roi"]
    return folder if all((folder / f"{n}.wav").is_file() for n in needed) else None


def _clip(folder: Path, name: str) -> I16:
    from assistant.audio.wav import read_wav  # converts any WAV to 8 kHz mono int16

    return read_wav(folder / f"{name}.wav", RATE).samples.astype(np.int16)


def spoken_words(folder: Path, names: list[str], *, gap_s: float = 0.15) -> I16:
    parts: list[I16] = []
    for i, name in enumerate(names):
        if i:
            parts.append(silence(gap_s))
        parts.append(_clip(folder, name))
    return np.concatenate(parts).astype(np.int16)


def spoken_code(folder: Path, code: str) -> I16:
    return spoken_words(folder, [DIGIT_CLIPS[d] for d in code])


def utterance_wav(path: Path, speech: I16, *, lead_s: float = 0.3, tail_s: float = 60.0) -> Path:
    """``speech`` with a short lead-in and a long silent tail (the call must not end)."""
    return write_wav(path, np.concatenate([silence(lead_s), speech, silence(tail_s)]))


def quiet_tail_s(samples: I16, *, frame: int = 160, block_s: float = 4.0) -> float:
    """Seconds of quiet at the end of ``samples`` (the box is waiting for the caller).

    Looks back one ``block_s`` at a time, so a long recording costs only its last seconds."""
    usable = len(samples) - len(samples) % frame
    if usable == 0:
        return 0.0
    n_frames = usable // frame
    step = max(1, round(block_s * RATE / frame))
    end = n_frames
    while end > 0:
        start = max(0, end - step)
        block = samples[start * frame : end * frame].astype(np.float64).reshape(-1, frame)
        loud = np.flatnonzero(np.sqrt(np.mean(block**2, axis=1)) >= QUIET_RMS)
        if len(loud):
            return (n_frames - (start + int(loud[-1]) + 1)) * frame / RATE
        end = start
    return n_frames * frame / RATE


class ListeningCaller:
    """Poll what ``phone`` has heard so far; switch what it says."""

    def __init__(self, phone: SoftphoneCaller) -> None:
        self.phone = phone

    def heard(self) -> I16:
        try:
            return self.phone.received_wav()
        except (FileNotFoundError, ValueError):
            return np.zeros(0, dtype=np.int16)

    def wait(self, predicate: Callable[[I16], T | None], timeout: float, what: str) -> T:
        """Poll the recording until ``predicate(samples)`` returns something not None."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.heard()
            value = predicate(samples)
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                found = [s.digits for s in digit_sequences(samples)]
                raise AssertionError(
                    f"caller: timed out after {timeout} s waiting for {what}; heard "
                    f"{len(samples) / RATE:.1f} s, digit read-outs {found}\n"
                    + self.phone.log_text()
                )
            time.sleep(0.1)

    def wait_readouts(
        self, done: Callable[[list[str]], bool], timeout: float, what: str, *, pause_s: float = 0.6
    ) -> list[DigitSequence]:
        """Wait until the digit read-outs heard satisfy ``done`` and the box has then gone
        quiet for ``pause_s`` (its prompt is over and it is listening)."""

        # The tone analysis of the whole recording is the expensive part (16 callers polling
        # it ten times a second took more CPU than the box): redo it only when the box has
        # said something since the last one.
        analysed: dict[str, Any] = {}

        def check(samples: I16) -> list[DigitSequence] | None:
            tail = quiet_tail_s(samples)
            if tail < pause_s:  # cheap: the box is still talking
                return None
            loud_end = len(samples) - round(tail * RATE)
            if analysed.get("loud_end") != loud_end:
                analysed["loud_end"] = loud_end
                analysed["seqs"] = digit_sequences(samples[: loud_end + round(pause_s * RATE)])
            seqs: list[DigitSequence] = analysed["seqs"]
            return seqs if done([s.digits for s in seqs]) else None

        return self.wait(check, timeout, what)

    def say(self, wav: Path) -> None:
        """From now on the caller's microphone plays ``wav``."""
        reply = self.phone.ctrl.command("ausrc", f"aufile,{wav}")
        if not reply.get("ok", False):
            raise AssertionError(f"baresip refused ausrc: {reply}")
