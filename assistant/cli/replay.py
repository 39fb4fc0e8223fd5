"""Replaying recorded caller turns through the real conversation (testers' commands)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.accounts.store import SqlAccountStore
from assistant.asr.factory import SpeechSettings, make_recognizer, make_synthesizer
from assistant.audio.resample import resample_audio
from assistant.audio.wav import read_wav, write_wav
from assistant.call.channels.live import ReplayChannel, recognize_turn
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallRuntime, CallSummary
from assistant.core.ports import Audio, CallerId, CallerSource, ListenMode, ListenSpec, Recognizer
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
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


def load_turns(paths: Sequence[Path], rate: int) -> list[Audio]:
    """Read and convert every turn first: an unreadable file stops before the call starts."""
    return [read_wav(p, rate) for p in paths]


def replay_call(
    request: ReplayRequest,
    recognizer: Recognizer,
    *,
    dialog: ResetDialog | None = None,
    prompts: Prompts | None = None,
    voice: PromptVoice | None = None,
) -> tuple[CallSummary, ReplayChannel]:
    """One replayed call with an already loaded recogniser (the batch runner shares one)."""
    turns = load_turns(request.turns, recognizer.sample_rate)
    prompts = prompts or Prompts.load()
    dialog = dialog or ResetDialog(NumberReader.load())
    store = SqlAccountStore(request.db_url)
    session = recognizer.open_session()
    try:
        caller = CallerId(request.caller, CallerSource.CLI if request.caller else CallerSource.NONE)
        runtime: CallRuntime | None = None

        def stage(name: str, seconds: float) -> None:
            assert runtime is not None
            runtime.summary.add_stage(name, seconds)

        channel = ReplayChannel(turns, session, voice, stage=stage)
        runtime = CallRuntime(
            dialog, store, channel, prompts, caller=caller, reveal_password=request.reveal_password
        )
        summary = runtime.run()
    finally:
        session.close()
        store.close()
    return summary, channel


def run_replay(request: ReplayRequest) -> dict[str, Any]:
    recognizer = make_recognizer(request.speech)
    voice = None
    try:
        if request.out_audio is not None:
            synth = make_synthesizer(request.speech)
            voice = PromptVoice(Prompts.load(), synth, request.out_rate, request.speech.prompt_pack)
        summary, channel = replay_call(request, recognizer, voice=voice)
    finally:
        recognizer.close()
    if request.out_audio is not None:
        audio = channel.recording()
        assert audio is not None
        write_wav(request.out_audio, audio)
    result = summary.as_dict(reveal_password=request.reveal_password)
    out: dict[str, Any] = {"outcome": result["outcome"], "turns": result["turns"]}
    if request.reveal_password:
        out["password"] = result.get("password")
    out["call_id"] = result["call_id"]
    out["stages"] = result["stages"]
    if "error" in result:
        out["error"] = result["error"]
    return out


def hear_files(
    paths: Sequence[Path], mode: str, speech: SpeechSettings, *, expected: int = 10
) -> Iterator[dict[str, Any]]:
    """Each file through exactly the path the dialog uses in that listening state."""
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
            event = recognize_turn(session, audio, spec)
            text = getattr(event, "recognition", None)
            parsed = dialog.interpret(listen_mode, event)
            yield {"file": str(path), "text": text.text if text is not None else ""} | parsed
        session.close()
    finally:
        recognizer.close()
