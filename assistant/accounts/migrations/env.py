"""Alembic's entry point: runs the revisions on the connection :mod:`..migrate` hands over.

There is no ``alembic.ini`` and no URL here: ``python -m assistant init-db`` (through
:func:`assistant.accounts.migrate.upgrade`) opens the database, takes the migration lock and
passes its connection in ``config.attributes["connection"]``. Offline (SQL script) mode is not
offered.
"""

from __future__ import annotations

from alembic import context

from assistant.accounts.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "run migrations through `python -m assistant init-db` (it passes the connection)"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
