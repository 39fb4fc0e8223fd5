"""Replaying recorded caller turns through the real conversation (testers' commands)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.asr.factory import make_recognizer
from assistant.audio.resample import resample_audio
from assistant.audio.vad import VoiceActivity
from assistant.audio.wav import read_wav, write_wav
from assistant.call.channels.replay import ReplayChannel, recognize_turn
from assistant.call.runtime import CallSummary
from assistant.call.wiring import Box, BoxSettings, cli_caller
from assistant.core.dialog import Dialog
from assistant.core.ports import Audio, ListenMode, ListenSpec, RecognizerSession
from assistant.core.settings import SpeechSettings
from assistant.language.numbers import NumberReader
from dialogs.reset import ResetDialog


@dataclass(frozen=True)
class ReplayRequest:
    db_url: str
    caller: str | None
    turns: Sequence[Path]
    speech: SpeechSettings
    out_audio: Path | None = None
    out_rate: int = 8000
    reveal_password: bool = False
    reveal_codes: bool = False  # heard digits, keys and read-backs in the clear (testers)
    #: each turn's voice-activity detector, as on the phone line (:func:`make_vad`; None: energy)
    vad: Callable[[int], VoiceActivity] | None = None


def load_turns(paths: Sequence[Path], rate: int) -> list[Audio]:
    """Read and convert every turn first: an unreadable file stops before the call starts."""
    return [read_wav(p, rate) for p in paths]


def replay_call(
    request: ReplayRequest,
    box: Box,
    *,
    dialog: Dialog[Any] | None = None,
) -> tuple[CallSummary, ReplayChannel]:
    """One replayed call on an open box (the batch runner shares one box for every scenario)."""
    assert box.recognizer is not None
    turns = load_turns(request.turns, box.recognizer.sample_rate)
    voice = box.voice

    def channel(session: RecognizerSession | None) -> ReplayChannel:
        assert session is not None
        return ReplayChannel(turns, session, voice, vad=request.vad)

    summary, used = box.run_call(
        channel,
        caller=cli_caller(request.caller),
        reveal_password=request.reveal_password,
        reveal_codes=request.reveal_codes,
        dialog=dialog,
    )
    assert isinstance(used, ReplayChannel)
    return summary, used


def run_replay(request: ReplayRequest) -> dict[str, Any]:
    settings = BoxSettings(
        db_url=request.db_url,
        speech=request.speech,
        recognizer=True,
        voice_rate=request.out_rate if request.out_audio is not None else None,
    )
    with Box.open(settings) as box:
        summary, channel = replay_call(request, box)
    if request.out_audio is not None:
        audio = channel.recording()
        assert audio is not None
        write_wav(request.out_audio, audio)
    result = summary.as_dict(reveal_password=request.reveal_password)
    out: dict[str, Any] = {"codes_revealed": request.reveal_codes}
    out |= {"outcome": result["outcome"], "turns": result["turns"]}
    if request.reveal_password:
        out["password"] = result.get("password")
    out["call_id"] = result["call_id"]
    out["stages"] = result["stages"]
    if "error" in result:
        out["error"] = result["error"]
    return out


def hear_files(
    paths: Sequence[Path],
    mode: str,
    speech: SpeechSettings,
    *,
    expected: int = 10,
    vad: Callable[[int], VoiceActivity] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each file through exactly the path the dialog uses in that listening state (speech
    detected by a fresh detector from ``vad``, as on the phone line; ``None``: frame energy)."""
    listen_mode = ListenMode(mode)
    spec = ListenSpec(listen_mode, expected if listen_mode is ListenMode.DIGITS else None)
    audios = load_turns(paths, 16000)  # validate every file before loading a model
    recognizer = make_recognizer(speech)
    dialog = ResetDialog(NumberReader.load())
    try:
        session = recognizer.open_session()
        for path, loaded in zip(paths, audios, strict=True):
            audio = (
                loaded
                if loaded.rate == recognizer.sample_rate
                else resample_audio(loaded, recognizer.sample_rate)
            )
            event = recognize_turn(
                session, audio, spec, vad=vad(audio.rate) if vad is not None else None
            )
            text = getattr(event, "recognition", None)
            parsed = dialog.interpret(listen_mode, event)
            yield {"file": str(path), "text": text.text if text is not None else ""} | parsed
        session.close()
    finally:
        recognizer.close()
