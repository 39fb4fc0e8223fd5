"""Limits across calls and boxes, pending issued passwords, caller trust in the audit trail.

Issue 12 ("Hold the line against abuse"): the ``throttle_events`` and ``install_secrets``
tables; on ``accounts`` the pending issued password (``issued_hash``, ``issued_at``,
``issued_expires_at``: valid alongside the old password until first use or 24 h); on
``audit_log`` the peer address class of the call (``peer_class``: trusted, untrusted, local).

Revision ID: 0002_limits
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_limits"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("issued_hash", sa.String(255), nullable=True))
    op.add_column("accounts", sa.Column("issued_at", sa.DateTime(), nullable=True))
    op.add_column("accounts", sa.Column("issued_expires_at", sa.DateTime(), nullable=True))
    op.create_index("ix_accounts_issued_expires_at", "accounts", ["issued_expires_at"])
    op.add_column(
        "audit_log",
        sa.Column("peer_class", sa.String(64), nullable=False, server_default="local"),
    )
    op.create_table(
        "throttle_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_throttle_events"),
    )
    op.create_index("ix_throttle_events_at", "throttle_events", ["at"])
    op.create_index("ix_throttle_events_key_kind_at", "throttle_events", ["key", "kind", "at"])
    op.create_table(
        "install_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_install_secrets"),
    )


def downgrade() -> None:
    op.drop_table("install_secrets")
    op.drop_index("ix_throttle_events_key_kind_at", table_name="throttle_events")
    op.drop_index("ix_throttle_events_at", table_name="throttle_events")
    op.drop_table("throttle_events")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("peer_class")
    op.drop_index("ix_accounts_issued_expires_at", table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("issued_expires_at")
        batch.drop_column("issued_at")
        batch.drop_column("issued_hash")
