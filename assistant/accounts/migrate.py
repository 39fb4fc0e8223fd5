"""Schema migrations with Alembic: ``init-db`` creates a database or upgrades it in place.

The revisions live in ``assistant/accounts/migrations/versions`` (shipped in the package; no
``alembic.ini``). :func:`upgrade` brings any database to the newest revision:

* an empty database gets every revision, from ``0001_baseline`` on;
* a database made before migrations existed (``create_all``: both baseline tables, no
  ``alembic_version``) is stamped ``0001_baseline`` first, then upgraded;
* a database already under Alembic is upgraded from where it is (nothing to do at the head).

Everything happens in one transaction, and on PostgreSQL under an advisory lock, so boxes that
start together (each runs ``init-db``) migrate one after the other, never twice. A new schema
change is a new revision whose ``down_revision`` is the current head; the tests check that
the models and the revisions agree (``test_migrations.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

from assistant.core.errors import StoreError

__all__ = [
    "BASELINE",
    "BASELINE_TABLES",
    "MIGRATIONS_DIR",
    "UpgradeReport",
    "alembic_config",
    "current_revisions",
    "head_revisions",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The first revision: the schema as it was when migrations began.
BASELINE = "0001_baseline"
#: What ``create_all`` made before migrations existed.
BASELINE_TABLES = frozenset({"accounts", "audit_log"})
_VERSION_TABLE = "alembic_version"
#: pg_advisory_xact_lock key: any constant, the same for every box ("vssi" in ASCII).
_PG_LOCK_KEY = 0x76737369


@dataclass(frozen=True)
class UpgradeReport:
    """What :func:`upgrade` found and left: revisions before and after, and whether it had to
    stamp a pre-migration database first."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    stamped: bool

    @property
    def changed(self) -> bool:
        return self.stamped or self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in memory; ``connection`` is handed to ``env.py``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revisions() -> tuple[str, ...]:
    """The newest revision(s) the package ships."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database is at (empty: not under Alembic)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine, target: str = "heads") -> UpgradeReport:
    """Bring the database behind ``engine`` to ``target`` (default: the newest revision).

    Raises :class:`StoreError` (``store_unavailable``) for a database that has only some of
    the baseline tables and no revision: it is neither empty nor a known schema.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        config = alembic_config(conn)
        before = current_revisions(conn)
        stamped = False
        if not before:
            tables = set(inspect(conn).get_table_names())
            present = tables & BASELINE_TABLES
            if present == BASELINE_TABLES:
                command.stamp(config, BASELINE)
                stamped = True
            elif present:
                missing = ", ".join(sorted(BASELINE_TABLES - present))
                raise StoreError(
                    f"the database has some of the tables but not {missing}, and no "
                    f"{_VERSION_TABLE}: neither empty nor a known schema; not touching it",
                    code="store_unavailable",
                )
        try:
            command.upgrade(config, target)
        except CommandError as error:  # e.g. a revision from a newer release of the box
            raise StoreError(
                f"cannot migrate the database from {', '.join(before) or 'nothing'}: {error}",
                code="store_unavailable",
            ) from None
        after = current_revisions(conn)
    return UpgradeReport(before=before, after=after, stamped=stamped)
