"""Alembic migrations on SQLite and PostgreSQL: ``init-db`` creates or upgrades in place.

The pre-migration database is made the way every box made it before migrations existed:
``create_all`` of the two tables as they were then (frozen here, not today's models), with
data in it; ``init-db`` must stamp it, upgrade it and keep every row.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
)

from assistant.accounts import migrate
from assistant.accounts.models import Base
from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore
from assistant.cli.main import main
from assistant.core.errors import StoreError

ROOT = Path(__file__).resolve().parents[1]
FAST = ScryptParams(n=2**6, r=8, p=1)
CODE = "4801357924"
PHONE = "0912345678"


def legacy_metadata() -> MetaData:
    """The schema ``create_all`` made before migrations (commit 284da1d), frozen."""
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    Table(
        "accounts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(10), unique=True, nullable=False),
        Column("phone", String(16), index=True, nullable=False),
        Column("password_hash", String(255), nullable=True),
        Column("must_change", Boolean, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )
    Table(
        "audit_log",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("at", DateTime, index=True, nullable=False),
        Column("call_id", String(255), nullable=False),
        Column("caller_masked", String(32), nullable=False),
        Column("code_masked", String(32), nullable=False),
        Column("outcome", String(64), nullable=False),
        Column("caller_source", String(64), nullable=False),
    )
    return metadata


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def init_db(db_url: str) -> Result:
    """``python -m assistant init-db --db URL``, in this process (the command's own code)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["init-db", "--db", db_url])
    return Result(code, out.getvalue(), err.getvalue())


def schema_differences(db_url: str) -> list[object]:
    """What autogenerate would change to make the database match today's models."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def test_the_baseline_is_the_first_revision() -> None:
    chain = revisions()
    assert chain[0] == migrate.BASELINE == "0001_baseline"
    assert len(migrate.head_revisions()) == 1  # one line of history, no forks


def test_init_db_creates_a_schema_that_matches_the_models(db_url: str) -> None:
    proc = init_db(db_url)
    assert proc.returncode == 0, proc.stderr
    head = migrate.head_revisions()[0]
    assert f"revision {head}; was empty" in proc.stdout
    assert schema_differences(db_url) == []
    proc = init_db(db_url)  # again: nothing to do
    assert proc.returncode == 0, proc.stderr
    assert f"revision {head}; was {head}" in proc.stdout


def test_init_db_upgrades_a_pre_migration_database_in_place(db_url: str) -> None:
    engine = create_engine(db_url)
    legacy = legacy_metadata()
    legacy.create_all(engine)
    now = datetime(2026, 11, 30, 8, 0, 0)
    with engine.begin() as conn:
        conn.execute(
            insert(legacy.tables["accounts"]).values(
                code=CODE,
                phone=PHONE,
                password_hash=None,
                must_change=False,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            insert(legacy.tables["audit_log"]).values(
                at=now,
                call_id="old-call",
                caller_masked="*******678",
                code_masked="*******924",
                outcome="mismatch",
                caller_source="from-header",
            )
        )
    engine.dispose()

    proc = init_db(db_url)
    assert proc.returncode == 0, proc.stderr
    assert "pre-migration schema, stamped" in proc.stdout
    assert schema_differences(db_url) == []
    with SqlAccountStore(db_url, scrypt_params=FAST) as store:
        assert store.matches(PHONE, CODE)
        assert [r.call_id for r in store.audit_rows()] == ["old-call"]
        password = store.reset_password(PHONE, CODE, call_id="new-call", caller_source="none")
        assert password is not None and store.check_password(CODE, password)
        assert store.health()["audit_rows"] == 2


def test_every_revision_upgrades_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        for revision in revisions():
            with engine.begin() as conn:
                config = migrate.alembic_config(conn)
                command.upgrade(config, revision)
                command.downgrade(config, "-1")
                command.upgrade(config, revision)
                assert migrate.current_revisions(conn) == (revision,)
        with engine.connect() as conn:
            assert migrate.current_revisions(conn) == migrate.head_revisions()
    finally:
        engine.dispose()
    assert schema_differences(db_url) == []


def test_create_schema_keeps_data_and_reports(db_url: str) -> None:
    with SqlAccountStore(db_url, scrypt_params=FAST) as store:
        first = store.create_schema()
        assert first.before == () and not first.stamped and first.changed
        store.add_account(CODE, PHONE)
        again = store.create_schema()
        assert again.before == again.after == migrate.head_revisions()
        assert not again.changed
        assert store.matches(PHONE, CODE)


def test_a_half_made_database_is_refused(db_url: str) -> None:
    engine = create_engine(db_url)
    legacy = legacy_metadata()
    legacy.tables["accounts"].create(engine)
    engine.dispose()
    with SqlAccountStore(db_url) as store, pytest.raises(StoreError) as info:
        store.create_schema()
    assert info.value.code == "store_unavailable"
    assert "audit_log" in info.value.message
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"accounts"}  # left alone
    finally:
        engine.dispose()


def test_a_revision_from_a_newer_box_is_a_clear_error(db_url: str) -> None:
    with SqlAccountStore(db_url) as store:
        store.create_schema()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        with pytest.raises(StoreError) as info:
            store.create_schema()
    assert info.value.code == "store_unavailable"
    assert "9999_from_the_future" in info.value.message


def test_boxes_starting_together_migrate_once(db_backend: str, db_url: str) -> None:
    """Four ``init-db`` at once on PostgreSQL: the advisory lock lets one migrate, the
    others find it done."""
    if db_backend != "postgresql":
        pytest.skip("SQLite databases are not shared by boxes starting on several machines")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "assistant", "init-db", "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    assert sum("was empty" in out for out, _ in outputs) == 1
    assert schema_differences(db_url) == []
