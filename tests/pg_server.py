"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

:class:`PgServer` runs ``initdb`` and ``pg_ctl`` in a fresh temporary folder: trust
authentication, no TCP listener (a Unix socket in that folder only), fsync off. As root (CI
runs as root, and PostgreSQL refuses to) the server runs as the ``postgres`` user that the
Debian package creates, through ``runuser``. :func:`find_pg_bin` finds the binaries (on
Debian they live in ``/usr/lib/postgresql/<major>/bin``, outside ``$PATH``); when it returns
None the PostgreSQL tests are skipped with :data:`MISSING_REASON`.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

MISSING_REASON = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql "
    "(scripts/install.sh does)"
)
SUPERUSER = "vssid"


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (newest major first)."""
    env = os.environ.get("VSSID_PG_BIN")
    candidates = [Path(env)] if env else []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)

    def major(path: str) -> int:
        part = Path(path).parts[-3]
        return int(part) if part.isdigit() else 0

    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=major, reverse=True)
    candidates += [Path(p).parent for p in installed]
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary folder; :meth:`url` gives SQLAlchemy URLs."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="vssid-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        # The socket's port number (no TCP listener): only names the socket file.
        self.port = _free_port()
        self.os_user: str | None = None
        if os.geteuid() == 0:
            self.os_user = "postgres"
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o755)  # noqa: S103 (boxes running as other users reach the socket)
        self._names = itertools.count(1)
        self.running = False

    def _run(self, *command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        full = list(command)
        if self.os_user is not None:
            full = ["runuser", "-u", self.os_user, "--", *full]
        return subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def start(self) -> None:
        init = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        options = (
            f"-k {self.root} -c listen_addresses='' -p {self.port} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        start = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )
        if start.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}")
        self.running = True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        from sqlalchemy import create_engine

        name = f"{prefix}_{next(self._names)}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.running:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
