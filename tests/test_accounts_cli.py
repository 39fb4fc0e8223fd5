"""The operator commands, end to end through argparse and ``args.func``."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore
from assistant.cli import accounts as accounts_cli

CODE = "0123456789"
PHONE = "0912345678"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vssid-assistant")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    accounts_cli.register(sub)
    return p


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url(db_url: str) -> str:
    """An empty database, SQLite or PostgreSQL (``tests/conftest.py``): every command that
    takes it runs on both."""
    return db_url


@pytest.fixture
def ready(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(["init-db", "--db", url], capsys)[0] == 0
    return url


def issue_password(url: str, phone: str = PHONE, code: str = CODE) -> str:
    with SqlAccountStore(url, scrypt_params=ScryptParams(n=2**6)) as store:
        password = store.reset_password(phone, code, call_id="t", caller_source="command-line")
    assert password is not None
    return password


def test_every_command_has_db_and_func() -> None:
    p = parser()
    for argv in (
        ["init-db"],
        ["accounts", "add", "--code", CODE, "--phone", PHONE],
        ["accounts", "import", "f.csv"],
        ["accounts", "check", "--code", CODE, "--password", "1"],
        ["accounts", "audit"],
        ["health"],
    ):
        args = p.parse_args([*argv, "--db", "sqlite:///x.db"])
        assert args.db == "sqlite:///x.db"
        assert callable(args.func)
        assert p.parse_args(argv).db is None  # resolved when the command runs


def test_accounts_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["accounts"])
    capsys.readouterr()


def test_init_db_demo_is_idempotent(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["init-db", "--db", url, "--demo"], capsys)
    assert (code, err) == (0, "")
    for demo_code, demo_phone in accounts_cli.DEMO_ACCOUNTS:
        assert f"phone {demo_phone}  code {demo_code}  (added)" in out
    code, out, _ = run(["init-db", "--db", url, "--demo"], capsys)
    assert code == 0
    assert out.count("(already present)") == 3
    with SqlAccountStore(url) as store:
        assert store.health()["accounts"] == 3
        assert store.matches("0912345678", "0123456789")
        assert store.matches("0987654321", "7912345680")
        assert store.matches("0358246813", "4801357924")


def test_default_db_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VSSID_DB", raising=False)
    assert run(["init-db"], capsys)[0] == 0
    assert (tmp_path / "var" / "vssid.sqlite3").is_file()
    monkeypatch.setenv("VSSID_DB", str(tmp_path / "elsewhere.db"))
    assert run(["init-db"], capsys)[0] == 0
    assert (tmp_path / "elsewhere.db").is_file()


def test_add_then_duplicate(ready: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["accounts", "add", "--db", ready, "--code", CODE, "--phone", "+84 912 345 678"], capsys
    )
    assert (code, err) == (0, "")
    assert "*******789" in out and CODE not in out and "912345678" not in out
    code, out, err = run(
        ["accounts", "add", "--db", ready, "--code", CODE, "--phone", PHONE], capsys
    )
    assert code == 2
    assert err.startswith("error [store_duplicate]: ")
    assert err.count("\n") == 1
    assert CODE not in err


@pytest.mark.parametrize(
    ("argv", "error_code"),
    [
        (["--code", "12345", "--phone", PHONE], "code_invalid"),
        (["--code", CODE, "--phone", "12345"], "phone_invalid"),
    ],
)
def test_add_invalid(
    ready: str, capsys: pytest.CaptureFixture[str], argv: list[str], error_code: str
) -> None:
    code, _, err = run(["accounts", "add", "--db", ready, *argv], capsys)
    assert code == 2
    assert err.startswith(f"error [{error_code}]: ")


def test_add_without_schema_says_init_db(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["accounts", "add", "--db", url, "--code", CODE, "--phone", PHONE], capsys)
    assert code == 2
    assert err.startswith("error [store_unavailable]: ") and "init-db" in err


def test_import_all_good(ready: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "ok.csv"
    f.write_text("ma_so_bhxh,so_dien_thoai\n0123456789,0912345678\n7912345680,0987654321\n")
    code, out, err = run(["accounts", "import", "--db", ready, str(f)], capsys)
    assert (code, err) == (0, "")
    assert "2 account(s) added, 0 row(s) rejected" in out


def test_import_some_bad(ready: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "mixed.csv"
    f.write_text("code,phone\n0123456789,0912345678\n123,0912345678\n0123456789,0912345678\n")
    code, out, err = run(["accounts", "import", "--db", ready, str(f)], capsys)
    assert code == 1
    assert "1 account(s) added, 2 row(s) rejected of 3" in out
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{f}: line 3: bad code")
    assert lines[1].startswith(f"{f}: line 4: duplicate code")
    assert CODE not in err


def test_import_unreadable(ready: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["accounts", "import", "--db", ready, str(tmp_path / "none.csv")], capsys)
    assert code == 2
    assert err.startswith("error [csv_unreadable]: ")
    f = tmp_path / "noheader.csv"
    f.write_text("0123456789,0912345678\n")
    code, _, err = run(["accounts", "import", "--db", ready, str(f)], capsys)
    assert code == 2
    assert "header" in err


def test_check_password(
    ready: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["accounts", "add", "--db", ready, "--code", CODE, "--phone", PHONE], capsys)
    password = issue_password(ready)
    code, out, _ = run(
        ["accounts", "check", "--db", ready, "--code", CODE, "--password", password], capsys
    )
    assert code == 3  # valid, but an issued password: a change is due (must_change)
    assert "valid" in out and "change is due" in out
    assert password not in out and CODE not in out
    wrong = "1" * 8 if password != "1" * 8 else "2" * 8
    code, out, _ = run(
        ["accounts", "check", "--db", ready, "--code", CODE, "--password", wrong], capsys
    )
    assert code == 1
    assert "not valid" in out and wrong not in out
    code, _, _ = run(
        ["accounts", "check", "--db", ready, "--code", "5555555555", "--password", password],
        capsys,
    )
    assert code == 1
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code, out, _ = run(
        ["accounts", "check", "--db", ready, "--code", CODE, "--password", "-"], capsys
    )
    assert code == 3


def test_audit_prints_masked_rows(ready: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["accounts", "audit", "--db", ready], capsys)
    assert (code, out.strip()) == (0, "(no audit rows)")
    run(["accounts", "add", "--db", ready, "--code", CODE, "--phone", PHONE], capsys)
    password = issue_password(ready)
    with SqlAccountStore(ready) as store:
        store.record(
            call_id="m1",
            phone="0987654321",
            code=CODE,
            outcome="mismatch",
            caller_source="from-header",
        )
    code, out, _ = run(["accounts", "audit", "--db", ready, "--limit", "1"], capsys)
    assert code == 0
    assert "mismatch" in out and "password_issued" not in out
    code, out, _ = run(["accounts", "audit", "--db", ready], capsys)
    lines = out.splitlines()
    assert len(lines) == 3  # header + 2 rows
    assert "mismatch" in lines[1] and "password_issued" in lines[2]
    assert "*******321" in lines[1] and "*******789" in lines[1]
    for secret in (CODE, PHONE, "0987654321", password):
        assert secret not in out


def test_audit_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["accounts", "audit", "--limit", "0"])
    capsys.readouterr()


def test_health(ready: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["health", "--db", ready], capsys)
    assert code == 0
    shown = make_url(ready).render_as_string(hide_password=True)  # as SQLAlchemy prints it
    assert json.loads(out) == {"ok": True, "db": shown, "accounts": 0, "audit_rows": 0}

    code, out, err = run(["health", "--db", f"sqlite:///{tmp_path / 'empty.db'}"], capsys)
    assert code == 1
    assert json.loads(out)["error"] == "store_unavailable"
    assert err.startswith("error [store_unavailable]: ")

    code, out, _ = run(["health", "--db", "nosuchdialect://x"], capsys)
    assert code == 1
    assert json.loads(out) == {
        "ok": False,
        "error": "store_unavailable",
        "message": json.loads(out)["message"],
    }


def test_real_process_exit_codes(tmp_path: Path) -> None:
    """The same commands in a fresh interpreter: exit codes and the one-line error."""
    url = f"sqlite:///{tmp_path / 'proc.sqlite3'}"
    script = (
        "import argparse, sys\n"
        "from assistant.cli import accounts as accounts_cli\n"
        "p = argparse.ArgumentParser()\n"
        "accounts_cli.register(p.add_subparsers(required=True))\n"
        "args = p.parse_args(sys.argv[1:])\n"
        "sys.exit(args.func(args))\n"
    )
    root = Path(__file__).resolve().parent.parent

    def call(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *argv],
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
            timeout=120,
        )

    assert call("init-db", "--demo", "--db", url).returncode == 0
    dup = call("accounts", "add", "--db", url, "--code", CODE, "--phone", PHONE)
    assert dup.returncode == 2
    assert dup.stderr.startswith("error [store_duplicate]: ") and dup.stderr.count("\n") == 1
    health = call("health", "--db", url)
    assert health.returncode == 0
    assert json.loads(health.stdout)["accounts"] == 3
