"""Command line: ``python -m assistant <command>`` (or the ``vssid-assistant`` script).

Each command module registers its own sub-commands; heavy engines (recognisers, the synthesiser,
the SIP stack) are imported only by the commands that use them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from assistant.accounts.store import default_db_url
from assistant.cli import accounts as accounts_cli
from assistant.core.dialog import Say
from assistant.core.errors import AssistantError

DEMO_CALLER = "0912345678"
DEMO_AUDIO = Path("var") / "demo_call.wav"


def run_text_call(
    db_url: str,
    caller: str | None,
    infile: TextIO,
    outfile: TextIO,
    *,
    interactive: bool,
    record: list[Say] | None = None,
) -> dict[str, object]:
    """One typed conversation; returns the call summary (password never included).
    ``record`` receives every prompt the box said."""
    from assistant.call.channels.text import TextChannel
    from assistant.call.runtime import Channel
    from assistant.call.wiring import Box, BoxSettings, cli_caller
    from assistant.cli.voice import SayRecorder

    with Box.open(BoxSettings(db_url=db_url)) as box:
        prompts = box.prompts

        def channel(_session: object) -> Channel:
            text = TextChannel(prompts, infile, outfile, interactive=interactive)
            return text if record is None else SayRecorder(text, record)

        summary, _ = box.run_call(channel, caller=cli_caller(caller))
    out = summary.as_dict()  # never holds the password unless asked to reveal it
    for detail in ("turns", "stages"):
        del out[detail]
    return out


def cmd_chat(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty()
    result = run_text_call(args.db, args.caller, sys.stdin, sys.stdout, interactive=interactive)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the demo accounts (if needed) and play a scripted call from a demo caller."""
    import io

    from assistant.accounts.store import SqlAccountStore
    from assistant.core.paths import data_file

    store = SqlAccountStore(args.db)
    try:
        store.create_schema()
        accounts_cli.add_demo_accounts(store, out=sys.stdout)
    finally:
        store.close()
    script = data_file("demo_call.txt").read_text(encoding="utf-8")
    lines = [ln for ln in script.splitlines() if not ln.startswith(";")]
    print(f"\n--- Cuộc gọi mẫu từ số {args.caller} ---")
    says: list[Say] = []
    script_in = io.StringIO("\n".join(lines) + "\n")
    result = run_text_call(
        args.db, args.caller, script_in, sys.stdout, interactive=False, record=says
    )
    print(json.dumps(result, ensure_ascii=False))
    if not args.no_audio:
        from assistant.cli.voice import write_call_audio

        seconds = write_call_audio(says, args.out_audio)
        print(f"\nÂm thanh cuộc gọi mẫu ({seconds:.0f} s): {args.out_audio.absolute()}")
    print(
        f"\nThử tiếp: python -m assistant chat --caller {args.caller}   "
        "(gõ mã số, '#' + phím bấm, dòng trống = im lặng, Ctrl-D = gác máy)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant",
        description="Offline Vietnamese voice assistant that resets VssID passwords by phone.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="create demo accounts and play a scripted demo call")
    demo.add_argument(
        "--db", default=default_db_url(), help="SQLAlchemy URL (default: %(default)s)"
    )
    demo.add_argument("--caller", default=DEMO_CALLER, help="demo caller number")
    demo.add_argument(
        "--out-audio",
        type=Path,
        default=DEMO_AUDIO,
        help="write what the box says, in its voice, to this WAV (default: %(default)s)",
    )
    demo.add_argument("--no-audio", action="store_true", help="print only, write no WAV")
    demo.set_defaults(func=cmd_demo)

    chat = sub.add_parser("chat", help="the whole conversation typed in the terminal")
    chat.add_argument(
        "--db", default=default_db_url(), help="SQLAlchemy URL (default: %(default)s)"
    )
    chat.add_argument("--caller", help="the caller's phone number (omit: withheld number)")
    chat.set_defaults(func=cmd_chat)

    accounts_cli.register(sub)
    from assistant.cli import speech as voice_cli
    from assistant.cli import voice as say_cli

    voice_cli.register(sub)
    say_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except AssistantError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
