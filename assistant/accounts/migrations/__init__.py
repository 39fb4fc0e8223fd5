"""Alembic revisions of the accounts schema (see :mod:`assistant.accounts.migrate`)."""
