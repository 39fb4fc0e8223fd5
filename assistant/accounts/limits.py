"""Limits that span calls and boxes: how often one number, one code and one account may be
tried, kept in the database so that every box sharing it sees the same counts.

The defaults follow NIST SP 800-63B's throttling guidance (§5.2.2: limit consecutive failed
attempts on one account, and rate-limit per claimant): in any 24 h, per caller number 5 code
lookups and 1 issued password, per code 5 lookups from any number, per account 1 issued
password. :class:`LimitSettings` holds them (frozen, validated at start-up); ``$VSSID_LIMITS``
or ``--limits`` overrides them (``phone_lookups=5,code_lookups=5,phone_issues=1,
account_issues=1,window_h=24``).

Every counted event is one row of ``throttle_events``: when, what kind, and a key that is an
HMAC-SHA256 of the normalised number or code under a per-install secret (``install_secrets``,
made on first use and shared by every box through the database), never the number or code
itself; a masked hint (``*******678``) lets operators recognise a row. Checking inserts the
events first, then counts them in the window, so two boxes racing on SQLite serialise and on
other backends a race errs towards refusing; refused events are marked and do not count, so
a throttled caller who keeps calling does not push the window forward.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from assistant.accounts.models import InstallSecret, ThrottleEvent
from assistant.core.errors import ConfigError

__all__ = [
    "DEFAULT_LIMITS",
    "Counted",
    "LimitKind",
    "LimitSettings",
    "ThrottleEntry",
    "count_events",
    "install_secret",
    "keyed_digest",
    "new_install_secret",
]


class LimitKind(StrEnum):
    """What one throttle event counts."""

    PHONE_LOOKUP = "phone_lookup"  # a code looked up for this caller number
    CODE_LOOKUP = "code_lookup"  # this code looked up, from any number
    PHONE_ISSUE = "phone_issue"  # a password issued to this caller number
    ACCOUNT_ISSUE = "account_issue"  # a password issued for this account (keyed by its code)

    @property
    def subject(self) -> str:
        """``"phone"`` or ``"code"``: what the key is made from."""
        return "phone" if self in (LimitKind.PHONE_LOOKUP, LimitKind.PHONE_ISSUE) else "code"


_MAX_WINDOW_H = 24 * 30


@dataclass(frozen=True)
class LimitSettings:
    """Events allowed per key in any ``window_h`` hours (each at least 1)."""

    phone_lookups: int = 5
    phone_issues: int = 1
    code_lookups: int = 5
    account_issues: int = 1
    window_h: float = 24.0

    def __post_init__(self) -> None:
        for name in ("phone_lookups", "phone_issues", "code_lookups", "account_issues"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"limit {name} must be a whole number >= 1, not {value!r}")
        if not 1 / 60 <= self.window_h <= _MAX_WINDOW_H:
            raise ConfigError(f"limit window_h must be within 1 minute and {_MAX_WINDOW_H} h")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_h)

    def limit(self, kind: LimitKind) -> int:
        return {
            LimitKind.PHONE_LOOKUP: self.phone_lookups,
            LimitKind.PHONE_ISSUE: self.phone_issues,
            LimitKind.CODE_LOOKUP: self.code_lookups,
            LimitKind.ACCOUNT_ISSUE: self.account_issues,
        }[kind]

    @classmethod
    def parse(cls, spec: str) -> LimitSettings:
        """``"phone_lookups=5,window_h=24"`` (names of the fields; missing ones keep their
        defaults). ConfigError for unknown names or bad values."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, int | float] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise ConfigError(
                    f"limits: {part!r} is not NAME=VALUE with NAME one of {', '.join(known)}"
                )
            try:
                values[name] = float(raw) if name == "window_h" else int(raw)
            except ValueError:
                raise ConfigError(f"limits: {name} needs a number, not {raw.strip()!r}") from None
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls) -> LimitSettings:
        """``$VSSID_LIMITS`` parsed (see :meth:`parse`), else the defaults."""
        return cls.parse(os.environ.get("VSSID_LIMITS", ""))


DEFAULT_LIMITS = LimitSettings()


def new_install_secret() -> str:
    """A fresh 256-bit key, hex."""
    return secrets.token_hex(32)


def keyed_digest(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``purpose:value`` under ``secret``, hex (64 characters)."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ThrottleEntry:
    """One counter as operators see it: no number or code, a masked hint and a key prefix."""

    kind: str
    key: str  # the first 12 hex digits of the keyed hash
    hint: str
    count: int
    limit: int
    last_at: datetime
    until: datetime  # when the oldest counted event leaves the window

    @property
    def throttled(self) -> bool:
        return self.count >= self.limit


# --------------------------------------------------------------------------------------------
# In the database (called by the store inside its transactions)
# --------------------------------------------------------------------------------------------


def install_secret(conn: Connection, name: str, now: datetime) -> str:
    """The install's secret ``name`` (made on first use; a racing box's wins)."""
    stored = conn.execute(
        select(InstallSecret.value).where(InstallSecret.name == name)
    ).scalar_one_or_none()
    if stored is not None:
        return str(stored)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(InstallSecret).values(name=name, value=new_install_secret(), created_at=now)
            )
    except sa_exc.IntegrityError:
        pass  # another box made it first
    made = conn.execute(select(InstallSecret.value).where(InstallSecret.name == name))
    return str(made.scalar_one())


@dataclass(frozen=True)
class Counted:
    """One event to count: its kind, keyed hash and masked hint."""

    kind: LimitKind
    key: str
    hint: str


def count_events(
    conn: Connection,
    settings: LimitSettings,
    events: Sequence[Counted],
    now: datetime,
    *,
    also_full: Sequence[Counted] = (),
) -> bool:
    """Insert ``events`` and count them with the earlier allowed ones in the window. True when
    every count is within its limit and no key in ``also_full`` has reached its limit;
    otherwise the new events are marked refused (they never count) and False."""
    since = now - settings.window
    conn.execute(delete(ThrottleEvent).where(ThrottleEvent.at <= since))  # out of every window
    ids = []
    for event in events:
        result = conn.execute(
            insert(ThrottleEvent).values(
                at=now, kind=event.kind.value, key=event.key, hint=event.hint, allowed=True
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        ids.append(key[0])
    allowed = True
    for event, extra in [(e, 0) for e in events] + [(e, 1) for e in also_full]:
        count = conn.execute(
            select(func.count())
            .select_from(ThrottleEvent)
            .where(
                ThrottleEvent.key == event.key,
                ThrottleEvent.kind == event.kind.value,
                ThrottleEvent.allowed.is_(True),
                ThrottleEvent.at > since,
            )
        ).scalar_one()
        if count + extra > settings.limit(event.kind):
            allowed = False
    if not allowed and ids:
        conn.execute(update(ThrottleEvent).where(ThrottleEvent.id.in_(ids)).values(allowed=False))
    return allowed
