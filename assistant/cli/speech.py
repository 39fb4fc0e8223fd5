"""Speech commands: ``replay`` and ``hear`` (testers), ``replay-batch`` (reports), ``mic``
(developers), ``sip`` (the phone line)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.accounts.store import default_db_url
from assistant.core.errors import ConfigError
from assistant.core.settings import (
    ASR_ENGINES,
    DEFAULT_ASR,
    DEFAULT_VOICE,
    VAD_ENGINES,
    VOICES,
    SpeechSettings,
)
from assistant.telephony.sip.rtprio import DEFAULT_PRIORITY

if TYPE_CHECKING:
    from assistant.audio.vad import VoiceActivity

PHONE_RATE = 8000


def add_speech_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--asr",
        choices=ASR_ENGINES,
        default=DEFAULT_ASR,
        help="speech recogniser (default: %(default)s)",
    )
    parser.add_argument("--asr-model", type=Path, help="model directory (vosk)")
    parser.add_argument("--asr-threads", type=int, default=1, help="recogniser threads")
    parser.add_argument(
        "--asr-unfolded",
        action="store_true",
        help="onnx: run the model as shipped, its weights dequantised on every step (slower; "
        "for comparisons)",
    )


def add_voice_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--voice",
        choices=VOICES,
        default=DEFAULT_VOICE,
        help="syllables: the recorded speaker (espeak-ng for words it lacks); espeak: espeak-ng "
        "(default: %(default)s)",
    )
    parser.add_argument("--voice-pack", type=Path, help="syllable voice pack folder")
    parser.add_argument(
        "--tts-rate", type=int, default=160, help="espeak speech rate, words/minute"
    )
    parser.add_argument(
        "--prompt-pack",
        type=Path,
        help="folder of recorded prompts (<prompt_id>.wav, digit_0.wav ...)",
    )


def speech_settings(args: argparse.Namespace) -> SpeechSettings:
    return SpeechSettings(
        asr=args.asr,
        asr_model=args.asr_model,
        asr_threads=args.asr_threads,
        asr_fold=not getattr(args, "asr_unfolded", False),
        tts_rate_wpm=getattr(args, "tts_rate", 160),
        prompt_pack=getattr(args, "prompt_pack", None),
        voice=getattr(args, "voice", DEFAULT_VOICE),
        voice_pack=getattr(args, "voice_pack", None),
    )


# -- replay ------------------------------------------------------------------------------------


def _replay_db(args: argparse.Namespace, command: str) -> str:
    """Replays reset real accounts: the database must be named, never the default one."""
    if not args.db:
        raise ConfigError(
            f"{command} can reset accounts: name its database with --db (the default "
            "database is never used by a replay)",
            code="replay_db_required",
        )
    return str(args.db)


def _replay_vad(args: argparse.Namespace) -> Callable[[int], VoiceActivity] | None:
    """The detector replayed turns are heard with (loaded once, checked at the recogniser's
    16 kHz): the phone line's own by default."""
    from assistant.audio.vad import make_vad

    return make_vad(args.vad, 16000)


def add_vad_arg(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--vad``: the voice-activity detector, Silero by default (the phone line's)."""
    parser.add_argument("--vad", choices=VAD_ENGINES, default="silero", help=help_text)


_REPLAY_VAD = (
    "voice-activity detector a turn is heard with, as on the phone line (default: %(default)s)"
)


def cmd_replay(args: argparse.Namespace) -> int:
    from assistant.cli.replay import ReplayRequest, run_replay

    request = ReplayRequest(
        db_url=_replay_db(args, "replay"),
        caller=args.caller,
        turns=[Path(p) for p in args.turns],
        speech=speech_settings(args),
        out_audio=args.out_audio,
        out_rate=args.out_rate,
        reveal_password=args.reveal_password,
        reveal_codes=args.reveal_codes,
        vad=_replay_vad(args),
    )
    result = run_replay(request)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def cmd_hear(args: argparse.Namespace) -> int:
    from assistant.cli.replay import hear_files

    for line in hear_files(
        [Path(p) for p in args.files],
        args.mode,
        speech_settings(args),
        expected=args.expected,
        vad=_replay_vad(args),
    ):
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def cmd_replay_batch(args: argparse.Namespace) -> int:
    from assistant.batch.runner import run_batch

    report = run_batch(
        Path(args.scenarios),
        db_url=_replay_db(args, "replay-batch"),
        speech=speech_settings(args),
        report_path=args.report,
        fmt=args.format,
        progress=not args.no_progress,
        reveal_codes=args.reveal_codes,
        vad=_replay_vad(args),
    )
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["failed"] == 0 else 1


# -- live ----------------------------------------------------------------------------------------


def cmd_mic(args: argparse.Namespace) -> int:
    from assistant.cli.mic import MicSettings, run_mic
    from assistant.telephony.sounddevice import parse_device

    settings = MicSettings(
        db_url=args.db,
        caller=args.caller,
        barge_in=args.barge_in,
        input_device=parse_device(args.input_device),
        output_device=parse_device(args.output_device),
        rate=args.rate,
        list_devices=args.list_devices,
        speech=speech_settings(args),
        vad=args.vad,
    )
    summary: dict[str, Any] = run_mic(settings)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def cmd_sip(args: argparse.Namespace) -> int:
    from assistant.telephony.sip.box import SipSettings, run_sip

    settings = SipSettings(
        listen=args.listen,
        db_url=args.db,
        log_dir=args.log_dir,
        max_calls=args.max_calls,
        trusted_peers=tuple(args.trusted_peer),
        rtp_ports=args.rtp_ports,
        rtp_timeout_s=args.rtp_timeout,
        ready_file=args.ready_file,
        speech=speech_settings(args),
        metrics_listen=args.metrics,
        log_format=args.log_format,
        vad=args.vad,
        caller_trust=args.caller_trust,
        max_calls_per_source=args.max_calls_per_source,
        limits=args.limits,
        ready_passwords=args.ready_passwords,
        media_priority=args.media_priority,
    )
    return run_sip(settings)


_REVEAL_CODES = "show the codes heard, keyed and read back (masked by default; the output says so)"


def register(sub: Any) -> None:
    replay = sub.add_parser(
        "replay",
        help="replay a call from WAV files, one per caller turn; prints one JSON object",
        description="Each TURN.wav is what the caller says at the box's next listening turn "
        "(any WAV format; converted). When the turns run out the caller is silent.",
    )
    replay.add_argument("--db", help="SQLAlchemy URL (required: a replay can reset accounts)")
    replay.add_argument("--caller", help="caller phone number (omit: withheld)")
    add_speech_args(replay)
    add_voice_args(replay)
    replay.add_argument("--out-audio", type=Path, help="write what the box said to this WAV")
    replay.add_argument(
        "--out-rate",
        type=int,
        default=PHONE_RATE,
        help="sample rate of --out-audio (default: %(default)s, the phone line)",
    )
    replay.add_argument(
        "--reveal-password",
        action="store_true",
        help="include the issued password in the JSON (testers only)",
    )
    replay.add_argument("--reveal-codes", action="store_true", help=_REVEAL_CODES)
    add_vad_arg(replay, _REPLAY_VAD)
    replay.add_argument("turns", nargs="+", metavar="TURN.wav")
    replay.set_defaults(func=cmd_replay)

    hear = sub.add_parser("hear", help="recognise WAV files as the dialog would in a state")
    hear.add_argument("--mode", choices=("digits", "yesno"), required=True)
    hear.add_argument(
        "--expected",
        type=int,
        default=10,
        help="digits still expected (digits mode; default: %(default)s)",
    )
    add_speech_args(hear)
    add_vad_arg(hear, _REPLAY_VAD)
    hear.add_argument("files", nargs="+", metavar="FILE.wav")
    hear.set_defaults(func=cmd_hear)

    batch = sub.add_parser(
        "replay-batch",
        help="replay a folder or CSV of scenarios and write a report",
        description="SCENARIOS is a CSV (name,caller,turns,expect[,expect_digits]; turns are "
        "';'-separated WAV paths relative to the CSV) or a folder with one sub-folder per "
        "scenario (turn WAVs in name order, scenario.json with caller and expect).",
    )
    batch.add_argument("scenarios", metavar="SCENARIOS")
    batch.add_argument("--db", help="SQLAlchemy URL (required: a replay can reset accounts)")
    batch.add_argument("--reveal-codes", action="store_true", help=_REVEAL_CODES)
    add_speech_args(batch)
    add_vad_arg(batch, _REPLAY_VAD)
    batch.add_argument("--report", type=Path, default=Path("replay-report.md"))
    batch.add_argument("--format", choices=("md", "html"), help="default: from --report's suffix")
    batch.add_argument("--no-progress", action="store_true")
    batch.set_defaults(func=cmd_replay_batch)

    mic = sub.add_parser("mic", help="talk to the box through the microphone and speaker")
    mic.add_argument("--db", default=default_db_url(), help="SQLAlchemy URL")
    mic.add_argument("--caller", help="caller phone number (omit: withheld)")
    mic.add_argument("--input-device", help="input device name or index")
    mic.add_argument("--output-device", help="output device name or index")
    mic.add_argument("--rate", type=int, default=16000, help="device sample rate")
    mic.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    mic.add_argument(
        "--barge-in",
        action="store_true",
        help="let speech interrupt prompts (use with a headset; keys always can)",
    )
    add_vad_arg(mic, "voice-activity detector, as on the phone line (silero: --rate 8000 or 16000)")
    add_speech_args(mic)
    add_voice_args(mic)
    mic.set_defaults(func=cmd_mic)

    sip = sub.add_parser("sip", help="answer SIP calls (G.711) and run the conversation")
    sip.add_argument("--listen", default="127.0.0.1:5070", help="HOST:PORT (default: %(default)s)")
    sip.add_argument("--db", default=default_db_url(), help="SQLAlchemy URL")
    sip.add_argument("--log-dir", type=Path, help="one JSON summary per call goes here")
    sip.add_argument("--max-calls", type=int, default=4, help="simultaneous calls; more get busy")
    sip.add_argument(
        "--trusted-peer",
        action="append",
        default=[],
        metavar="ADDR",
        help="peer address whose P-Asserted-Identity is trusted (repeatable)",
    )
    sip.add_argument("--rtp-ports", default="40000-40999", help="RTP port range")
    sip.add_argument("--rtp-timeout", type=int, default=15, help="seconds without RTP: hang up")
    sip.add_argument("--ready-file", type=Path, help="touch this file once listening")
    sip.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics here")
    sip.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="logs: one JSON object a line, numbers masked (default), or plain text",
    )
    add_vad_arg(sip, "voice-activity detector (default: %(default)s; see scripts/bench_vad.py)")
    sip.add_argument(
        "--caller-trust",
        choices=("strict", "trunk", "open"),
        default="trunk",
        help="strict: the number only from P-Asserted-Identity of a trusted peer (else "
        "withheld); trunk: that, else the From header, reason logged; open: lab softphone, "
        "PAI from anyone (default: %(default)s)",
    )
    sip.add_argument(
        "--max-calls-per-source",
        type=int,
        default=2,
        help="calls at once from one untrusted address; more get busy (default: %(default)s)",
    )
    sip.add_argument(
        "--limits",
        metavar="SPEC",
        help="limits across calls, e.g. phone_lookups=5,phone_issues=1,code_lookups=5,"
        "account_issues=1,window_h=24 (default: $VSSID_LIMITS, else these)",
    )
    sip.add_argument(
        "--ready-passwords",
        type=int,
        metavar="N",
        help="new passwords hashed ahead in a low-priority thread, so a reset does not wait "
        "for scrypt (default: one per call slot, --max-calls; 0: hash on demand)",
    )
    sip.add_argument(
        "--media-priority",
        type=int,
        default=DEFAULT_PRIORITY,
        metavar="P",
        help="real-time priority (SCHED_FIFO) of the SIP stack's pacing threads, so fewer RTP "
        "packets slip by 20 ms under load; needs CAP_SYS_NICE or LimitRTPRIO, else the box "
        "says so and runs them at normal priority (default: %(default)s; 0: off)",
    )
    add_speech_args(sip)
    add_voice_args(sip)
    sip.set_defaults(func=cmd_sip)
