"""The typed conversation end to end: CLI, runtime, dialog, store, audit trail."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.cli.main import main, run_text_call

CODE = "0123456789"
PHONE = "0912345678"


@pytest.fixture()
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'box.sqlite3'}"
    store = SqlAccountStore(url)
    store.create_schema()
    store.add_account(CODE, PHONE)
    store.close()
    return url


def chat(db: str, caller: str | None, script: str) -> tuple[dict[str, object], str]:
    out = io.StringIO()
    result = run_text_call(db, caller, io.StringIO(script), out, interactive=False)
    return result, out.getvalue()


def box_lines(transcript: str) -> list[str]:
    return [ln for ln in transcript.splitlines() if ln.startswith("Trợ lý")]


def test_password_issued_and_valid(db: str) -> None:
    result, transcript = chat(
        db,
        "+84 912 345 678",
        "mã số của tôi là không một hai ba\nbốn lăm sáu bảy tám chín\nđúng rồi\n\n",
    )
    assert result["outcome"] == "password_issued"
    lines = box_lines(transcript)
    password_line = next(ln for ln in lines if "Mật khẩu mới của quý khách là" in ln)
    spoken = password_line.split(":", 2)[2]
    words = {
        "không": "0",
        "một": "1",
        "hai": "2",
        "ba": "3",
        "bốn": "4",
        "năm": "5",
        "sáu": "6",
        "bảy": "7",
        "tám": "8",
        "chín": "9",
    }
    password = "".join(words[w] for w in spoken.replace(",", " ").replace(".", " ").split())
    assert len(password) == 8
    store = SqlAccountStore(db)
    assert store.check_password(CODE, password)
    rows = store.audit_rows(5)
    assert rows[0].outcome == "password_issued"
    assert CODE not in repr(rows) and PHONE not in repr(rows) and password not in repr(rows)
    # said twice
    assert sum(spoken.strip() in ln for ln in lines) == 2


def test_mismatch_words_are_the_same_for_unknown_code_and_other_number(db: str) -> None:
    _, unknown = chat(db, PHONE, "#9999999999\n#1\n")
    _, other = chat(db, "0987654321", f"#{CODE}\n#1\n")
    tail_unknown = box_lines(unknown)[-2:]
    tail_other = box_lines(other)[-2:]
    assert tail_unknown == tail_other
    assert "không khớp" in tail_unknown[0]


def test_withheld_number(db: str) -> None:
    result, transcript = chat(db, None, "")
    assert result["outcome"] == "no_caller_id"
    assert "số điện thoại" in transcript


def test_silence_and_hang_up(db: str) -> None:
    assert chat(db, PHONE, "\n\n\n")[0]["outcome"] == "gave_up"
    assert chat(db, PHONE, "không một\n")[0]["outcome"] == "hung_up"


def test_locked_database_gives_a_polite_end_and_loses_nothing(db: str, tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "box.sqlite3"
    lock = sqlite3.connect(path, timeout=0.1)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        store = SqlAccountStore(db, busy_timeout=0.2)
        from assistant.call.channels.text import TextChannel
        from assistant.call.runtime import CallRuntime
        from assistant.core.ports import CallerId
        from assistant.language.numbers import NumberReader
        from assistant.language.prompts import Prompts
        from dialogs.reset import ResetDialog

        out = io.StringIO()
        prompts = Prompts.load()
        channel = TextChannel(prompts, io.StringIO(f"#{CODE}\n#1\n"), out, interactive=False)
        summary = CallRuntime(
            ResetDialog(NumberReader.load()), store, channel, prompts, caller=CallerId(PHONE)
        ).run()
    finally:
        lock.rollback()
        lock.close()
    assert summary.error == "store_locked"
    assert "sự cố" in out.getvalue()
    # The account is untouched and a later call works.
    assert chat(db, PHONE, f"#{CODE}\n#1\n")[0]["outcome"] == "password_issued"


def test_chat_command_prints_a_json_summary_last(db: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "chat", "--db", db, "--caller", PHONE],
        input=f"#{CODE}\nđúng\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["outcome"] == "password_issued"
    assert summary["caller"] == "*******678"
    assert "password" not in summary


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in (
        "demo",
        "chat",
        "init-db",
        "accounts",
        "replay",
        "hear",
        "replay-batch",
        "mic",
        "sip",
    ):
        assert command in text
