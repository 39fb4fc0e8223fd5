"""The SQL schema (SQLAlchemy 2 declarative models): accounts and the reset audit trail.

What is stored: per account the 10-digit social-insurance code (unique), the registered phone in
national form, the scrypt hash of the last issued password (never the password), ``must_change``
and UTC timestamps. Audit rows hold masked phone and code only (``*******678``). The SQL stays
portable (no dialect-specific types) so several boxes can share one PostgreSQL database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
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
