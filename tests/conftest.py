"""Shared fixtures: the databases every store test runs on (SQLite and PostgreSQL), and the
acoustic model inside viet-asr (``model``: skipped when viet-asr is not installed).

``db_url`` is parametrised: ``[sqlite]`` is a fresh file under ``tmp_path``; ``[postgresql]``
an empty ``public`` schema in a throwaway server (``tests/pg_server.py``) that the first such
test starts and the session stops. The PostgreSQL variants are skipped, with the reason,
only when the server binaries or the driver are missing (CI installs both).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import MISSING_REASON, PgServer, find_pg_bin

from assistant.asr.model import ModelData, load_model
from assistant.core.errors import RecognizerError

BACKENDS = ("sqlite", "postgresql")
HAVE_PSYCOPG = importlib.util.find_spec("psycopg") is not None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (skips when it cannot exist here)."""
    if not HAVE_PSYCOPG:
        pytest.skip("psycopg missing: pip install -e '.[postgres]'")
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(MISSING_REASON)
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_database(pg_server: PgServer) -> str:
    """One database for the session's tests; each test empties its schema first."""
    return pg_server.create_database("vssid_test")


def reset_pg_schema(url: str) -> None:
    """Drop everything in ``public`` (ending other sessions left behind by a failed test)."""
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database on ``db_backend``: an SQLite file, or PostgreSQL's ``public``."""
    if db_backend == "sqlite":
        path = tmp_path / "sub" / "dir" / "vssid.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    url = str(request.getfixturevalue("pg_database"))
    reset_pg_schema(url)
    return url


@pytest.fixture(scope="module")
def model() -> ModelData:
    """The model of the installed viet-asr wheel, extracted and checked."""
    try:
        return load_model()
    except RecognizerError as exc:
        if exc.code == "asr_model_missing":
            pytest.skip(f"viet-asr is not installed: {exc}")
        raise
