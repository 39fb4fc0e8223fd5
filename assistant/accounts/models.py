"""The SQL schema (SQLAlchemy 2 declarative models): accounts, the reset audit trail, limits.

What is stored: per account the 10-digit social-insurance code (unique), the registered phone in
national form, the scrypt hash of the current password, the hash of a pending issued password
with its expiry (valid alongside the current one until first use or 24 h, never the password),
``must_change`` and UTC timestamps. Audit rows hold masked phone and code only
(``*******678``), where the number came from and the peer's address class. Throttle events
(limits across calls) are keyed by HMACs of numbers and codes, never the values. The SQL stays
portable (no dialect-specific types) so several boxes can share one PostgreSQL database.
Schema changes ship as Alembic revisions (``migrations/versions``); ``0002_limits`` adds what
issue 12 added here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from assistant.language.phone import (
    mask_code,
    mask_phone,
)

CALL_ID_MAX = 255
LABEL_MAX = 64


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC (portable: SQLite has no time zones), read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Account(Base):
    """One VssID account as the box knows it."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The pending issued password (one-time, must change): its hash and validity.
    issued_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    issued_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=None, index=True
    )

    def __repr__(self) -> str:
        return (
            f"Account(id={self.id!r}, code={mask_code(self.code)!r}, "
            f"phone={mask_phone(self.phone)!r}, must_change={self.must_change!r})"
        )


class AuditRow(Base):
    """One reset attempt (one call): masked values only, never a password."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    call_id: Mapped[str] = mapped_column(String(CALL_ID_MAX))
    caller_masked: Mapped[str] = mapped_column(String(32))
    code_masked: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(LABEL_MAX))
    caller_source: Mapped[str] = mapped_column(String(LABEL_MAX))
    peer_class: Mapped[str] = mapped_column(
        String(LABEL_MAX), default="local", server_default="local"
    )


class ThrottleEvent(Base):
    """One counted attempt (:mod:`assistant.accounts.limits`): a lookup or an issued password,
    keyed by an HMAC of the number or code (never the value itself), with a masked hint."""

    __tablename__ = "throttle_events"
    __table_args__ = (Index("ix_throttle_events_key_kind_at", "key", "kind", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(32))
    allowed: Mapped[bool] = mapped_column(Boolean)


class InstallSecret(Base):
    """Per-install secrets, made on first use and shared by every box on the database (the
    key of the limits' HMACs and of the Call-ID hashes in call summaries)."""

    __tablename__ = "install_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
