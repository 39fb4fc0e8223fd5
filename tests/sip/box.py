"""The real box (``python -m assistant sip``) as a subprocess, and its operator commands.

:class:`BoxProcess` starts the box on a free 127.0.0.1 port with a temporary SQLite database,
log directory and RTP range, waits for its ``--ready-file``, reads the per-call JSON summaries
it writes, and stops it with SIGTERM (drain) at the end. :class:`AccountsCli` runs the
``init-db`` / ``accounts`` commands against the same database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netports import HOST, free_port, free_port_range

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_assistant(
    *args: str, stdin: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=PROJECT_ROOT,
        env=_env(),
    )


@dataclass(frozen=True)
class AuditRow:
    at: str
    outcome: str
    caller: str
    code: str
    caller_source: str
    peer_class: str
    call_id: str


class AccountsCli:
    """``init-db``, ``accounts add|check|audit`` on one database URL."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def init_db(self) -> None:
        proc = run_assistant("init-db", "--db", self.db_url)
        assert proc.returncode == 0, proc.stderr

    def import_accounts(self, csv_path: Path, accounts: Sequence[tuple[str, str]]) -> None:
        """``accounts import`` of ``(code, phone)`` pairs (one command for all of them)."""
        csv_path.write_text(
            "code,phone\n" + "".join(f"{c},{p}\n" for c, p in accounts), encoding="utf-8"
        )
        proc = run_assistant("accounts", "import", "--db", self.db_url, str(csv_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def check(self, code: str, password: str) -> int:
        """Exit code of ``accounts check`` (0: valid, 3: valid and a change is due); the
        password goes through stdin."""
        proc = run_assistant(
            "accounts",
            "check",
            "--db",
            self.db_url,
            "--code",
            code,
            "--password",
            "-",
            stdin=password + "\n",
        )
        assert proc.returncode in (0, 1, 3), proc.stderr
        return proc.returncode

    def audit(self, limit: int = 200) -> list[AuditRow]:
        proc = run_assistant("accounts", "audit", "--db", self.db_url, "--limit", str(limit))
        assert proc.returncode == 0, proc.stderr
        rows = []
        for line in proc.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) == 7:
                rows.append(AuditRow(*parts))
        return rows


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, *, every: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class BoxProcess:
    """One ``python -m assistant sip`` process on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        *,
        prompt_pack: Path | None,
        trusted_peers: Sequence[str] = (),
        max_calls: int = 4,
        rtp_timeout_s: int = 3,
        tts_rate: int = 190,
        extra: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = db_url
        self.port = free_port()
        self.log_dir = self.workdir / "calls"
        self.ready_file = self.workdir / "ready"
        lo, hi = free_port_range(4 * max_calls + 4)
        options = {
            "--listen": f"{HOST}:{self.port}",
            "--db": db_url,
            "--log-dir": str(self.log_dir),
            "--max-calls": str(max_calls),
            "--rtp-ports": f"{lo}-{hi}",
            "--rtp-timeout": str(rtp_timeout_s),
            "--ready-file": str(self.ready_file),
            "--tts-rate": str(tts_rate),
        }
        # -v: INFO logs on stderr (call start/end, drain), checked for secrets at the end
        cmd = [sys.executable, "-m", "assistant", "-v", "sip"]
        for name, value in options.items():
            cmd += [name, value]
        for peer in trusted_peers:
            cmd += ["--trusted-peer", peer]
        if prompt_pack is not None:
            cmd += ["--prompt-pack", str(prompt_pack)]
        cmd += list(extra)
        self.cmd = cmd
        self.stdout_path = self.workdir / "box.stdout"
        self.stderr_path = self.workdir / "box.stderr"
        self.started = time.monotonic()
        self.ready_after_s: float | None = None
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=PROJECT_ROOT, env=_env()
            )

    # ---------------------------------------------------------------- lifetime

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the box exited with {self.proc.returncode} before it was ready:\n"
                    + self.stderr_tail()
                )
            return self.ready_file.exists()

        wait_for(ready, timeout, "the box's ready file")
        self.ready_after_s = time.monotonic() - self.started

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (drain) and wait; returns the exit code (kills after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the box did not exit within {timeout} s of SIGTERM:\n" + self.stderr_tail()
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def uri(self) -> str:
        return f"sip:assistant@{HOST}:{self.port}"

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr_tail(self, lines: int = 80) -> str:
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------------- summaries

    def summary_paths(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.json")) if self.log_dir.is_dir() else []

    def summaries(self) -> dict[str, dict[str, Any]]:
        out = {}
        for path in self.summary_paths():
            try:
                out[path.name] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue  # being written right now
        return out

    def summary_names(self) -> set[str]:
        return {p.name for p in self.summary_paths()}
