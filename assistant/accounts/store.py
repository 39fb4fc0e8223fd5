"""Accounts and the reset audit trail in SQL (SQLAlchemy 2): :class:`SqlAccountStore`.

It is long because every operation needs the same error mapping and the same constant-work lookup
rules; schema and CSV reading live in their own modules.

Implements :class:`assistant.core.ports.AccountStore` plus the operator's methods (add, CSV import,
password check, audit listing, health). Any SQLAlchemy URL works; the default is an SQLite file
(:func:`default_db_url`). SQL stays portable (no dialect-specific statements) so several boxes
can share one PostgreSQL database.

What is stored: see :mod:`assistant.accounts.models`. Audit rows hold masked phone and code
only (``*******678``).

Password policy (issue 12: the old password is not killed by a stranger). A reset does not
replace the account's password: it adds a one-time, must-change credential valid for 24 h
(``ISSUED_VALID``) alongside the current one. Its first use (``accounts check``, standing in
for the VssID login) makes it the current password with ``must_change`` set, so the old one
stops working only then; using the old password first voids the pending one (the holder is
still in control); unused, it expires. Hashes use the OWASP scrypt parameters; older ones are
verified with their own parameters and rehashed on use (``needs_rehash``).

Limits across calls and boxes (:mod:`assistant.accounts.limits`) are counted in the same
database by :meth:`SqlAccountStore.lookup` and :meth:`SqlAccountStore.reset_password`; an
audit row that cannot be written when a call ends is kept and written with the next one (and
at :meth:`close`, into ``audit_spool`` if the database is still down), so every call leaves
exactly one row. The module is long because the port, the operators' methods and these
policies share one transaction discipline; the pieces that stand alone live beside it
(models, limits, CSV reading, password hashing).

Every database failure is raised as :class:`assistant.core.errors.StoreError` with one of the stable
codes ``store_locked`` (SQLite busy past the timeout, lock timeouts elsewhere),
``store_unavailable`` (bad URL, missing driver, cannot connect, schema missing: run ``init-db``),
``store_duplicate`` (the code is already registered) or ``store_error`` (anything else). Messages
mask codes and phones, and the original driver exception is not chained (its text can quote
values), its scrubbed first line is in the message instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from assistant.accounts import migrate
from assistant.accounts.csv_import import (
    CsvImportError,
    ImportProblem,
    ImportReport,
    _read_csv,
)
from assistant.accounts.limits import (
    Counted,
    LimitKind,
    LimitSettings,
    ThrottleEntry,
    count_events,
    install_secret,
    keyed_digest,
)
from assistant.accounts.migrate import UpgradeReport
from assistant.accounts.mint import CredentialPool, CredentialSource, OnDemand
from assistant.accounts.models import (
    CALL_ID_MAX,
    LABEL_MAX,
    Account,
    AuditRow,
    Base,
    ThrottleEvent,
    _utcnow,
)
from assistant.accounts.passwords import (
    DEFAULT_LENGTH,
    DEFAULT_PARAMS,
    HashFormatError,
    ScryptParams,
    check_length,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from assistant.core.errors import StoreError, ThrottledError
from assistant.core.ports import AuditEntry, LookupVerdict, PeerClass
from assistant.language.phone import (
    CodeError,
    PhoneError,
    mask_code,
    mask_digits,
    mask_phone,
    normalize_code,
    normalize_phone,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_DB_PATH",
    "DEFAULT_DB_URL",
    "Account",
    "AuditRow",
    "Base",
    "CsvImportError",
    "ImportProblem",
    "ImportReport",
    "PasswordCheck",
    "SqlAccountStore",
    "default_db_url",
]

#: The SQLite file used when neither ``--db`` nor ``$VSSID_DB`` says otherwise (relative to the
#: current directory).
DEFAULT_DB_PATH = Path("var") / "vssid.sqlite3"
#: The same as a URL (relative: resolved against the current directory when connecting).
DEFAULT_DB_URL = "sqlite:///" + DEFAULT_DB_PATH.as_posix()
#: Seconds an SQLite write waits for another writer's lock before ``store_locked``.
DEFAULT_BUSY_TIMEOUT = 5.0

_CHUNK = 500  # codes per IN (...) query: well under every backend's parameter limit
#: How long an issued password stays usable if nobody uses it.
ISSUED_VALID = timedelta(hours=24)
_LIMITS_SECRET = "limits"  # noqa: S105 (the name of the secret, not a secret)
_AUDIT_RETRIES = 3

log = logging.getLogger("assistant.accounts")


class PasswordCheck(StrEnum):
    """What ``accounts check`` answers about a password."""

    VALID = "valid"
    CHANGE_DUE = "change_due"  # valid, but a temporary password: it must be changed now
    INVALID = "invalid"


def default_db_url() -> str:
    """``$VSSID_DB`` (a file path, or a full SQLAlchemy URL when it contains ``://``), else
    ``sqlite:///<current directory>/var/vssid.sqlite3``."""
    env = os.environ.get("VSSID_DB", "").strip()
    if "://" in env:
        return env
    path = Path(env).expanduser() if env else DEFAULT_DB_PATH
    return "sqlite:///" + str(path.absolute())


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


_LONG_DIGITS = re.compile(r"[0-9]{6,}")
_LOCK_WORDS = (
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "lock wait timeout",
    "could not obtain lock",
    "deadlock",
)
_LOCK_SQLSTATES = {"55P03", "40P01", "40001"}  # lock_not_available, deadlock, serialization
_MISSING_TABLE_WORDS = ("no such table", "undefined table", "doesn't exist")


def _scrub(message: str) -> str:
    """First line of a driver message, every run of 6+ digits masked, at most 200 characters."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return _LONG_DIGITS.sub(lambda m: mask_digits(m.group()), first)[:200]


def _wrap(error: BaseException, what: str) -> StoreError:
    """The StoreError (stable code, masked message) for a SQLAlchemy or driver error."""
    orig = getattr(error, "orig", None)
    detail = _scrub(str(orig) if orig is not None else str(error))
    lower = detail.lower()
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    kind = type(orig if orig is not None else error).__name__
    if isinstance(error, sa_exc.ArgumentError | sa_exc.NoSuchModuleError | ImportError):
        code = "store_unavailable"
    elif any(w in lower for w in _LOCK_WORDS) or sqlstate in _LOCK_SQLSTATES:
        code = "store_locked"
    elif isinstance(error, sa_exc.IntegrityError):
        unique = "unique" in lower or "duplicate" in lower or sqlstate == "23505"
        code = "store_duplicate" if unique else "store_error"
    elif any(w in lower for w in _MISSING_TABLE_WORDS) or sqlstate == "42P01":
        code = "store_unavailable"
        detail += " (database schema missing: run `init-db`)"
    elif isinstance(
        error,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    ):
        code = "store_unavailable"
    else:
        code = "store_error"
    return StoreError(f"{what}: {kind}: {detail}", code=code)


@contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """Turn SQLAlchemy errors into StoreError. Not chained: driver texts may quote values."""
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise _wrap(error, what) from None


# --------------------------------------------------------------------------------------------
# CSV import report
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------

# Stand-ins that can never equal a stored phone (stored phones are digits only) nor each other.
_NO_ACCOUNT_PHONE = "\x00no-account"
_INVALID_PHONE = "\x00invalid-phone"


def _phone_key(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except PhoneError:
        return _INVALID_PHONE


def _code_key(code: str) -> str:
    """The normalised code, or (invalid codes) the text itself, cut short: it is still looked up,
    so the work is the same, and can never match since stored codes are exactly 10 digits."""
    try:
        return normalize_code(code)
    except CodeError:
        return str(code)[:32]


_NO_ISSUED: dict[str, Any] = {"issued_hash": None, "issued_at": None, "issued_expires_at": None}


def _same_or_null(column: Any, value: str | None) -> Any:
    """``column = value`` (``IS NULL`` for None): the row is still as it was read."""
    return column.is_(None) if value is None else column == value


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _same_phone(given: str, stored: str | None) -> bool:
    """Constant-time equality on fixed-size digests (lengths do not leak either)."""
    left = hashlib.sha256(given.encode("utf-8")).digest()
    right = hashlib.sha256((_NO_ACCOUNT_PHONE if stored is None else stored).encode()).digest()
    return hmac.compare_digest(left, right)


def _label(value: str, what: str) -> str:
    if isinstance(value, Enum):  # str() of a (str, Enum) member is "Class.NAME", not its value
        value = value.value
    value = str(value).strip()
    if not value:
        raise StoreError(f"audit {what} must not be empty", code="store_error")
    return value[:LABEL_MAX]


def _scrub_call_id(call_id: str, phone: str | None, code: str | None) -> str:
    """``call_id`` with any occurrence of the caller's phone or the code masked (SIP Call-IDs
    sometimes embed the calling number)."""
    secrets_in_id: list[str] = []
    if code is not None and len(code) == 10 and code.isdigit():
        secrets_in_id.append(code)
    if phone is not None and phone[:1] == "0":
        secrets_in_id += [phone, phone[1:]]
    result = str(call_id)
    for secret in secrets_in_id:
        result = result.replace(secret, mask_digits(secret))
    return result[:CALL_ID_MAX]


class SqlAccountStore:
    """:class:`assistant.core.ports.AccountStore` on SQLAlchemy; thread-safe (one engine, a pool).

    ``busy_timeout``: seconds an SQLite connection waits for a lock before ``store_locked``.
    ``scrypt_params``: cost of new password hashes (stored hashes keep their own parameters).
    ``limits``: the limits across calls (default: ``$VSSID_LIMITS``, else NIST-style defaults).
    ``ready_passwords``: how many new passwords (with their hashes) a background thread keeps
    made ahead (:class:`assistant.accounts.mint.CredentialPool`), so that the slow hash is not
    on the caller's time; 0 hashes each one when the reset asks for it.
    ``clock``: the current UTC time (tests move it). ``audit_spool``: a JSON-lines file for
    audit rows still unwritten at :meth:`close` (default for an SQLite file: beside it, with
    the suffix ``.audit-spool.jsonl``); they are written with the next audit row.
    """

    def __init__(
        self,
        url: str,
        *,
        password_length: int = DEFAULT_LENGTH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        scrypt_params: ScryptParams = DEFAULT_PARAMS,
        limits: LimitSettings | None = None,
        clock: Callable[[], datetime] = _utcnow,
        audit_spool: Path | None = None,
        ready_passwords: int = 0,
    ) -> None:
        self._password_length = check_length(password_length)
        self._params = scrypt_params
        self.credentials: CredentialSource = (
            CredentialPool(ready_passwords, password_length, scrypt_params)
            if ready_passwords
            else OnDemand(password_length, scrypt_params)
        )
        self.limits = limits if limits is not None else LimitSettings.from_env()
        self._clock = clock
        self._dummy_hash: str | None = None
        self._limit_secret: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._pending_guard = threading.Lock()
        self._engine, self._is_sqlite_file = _make_engine(url, busy_timeout)
        self.url = self._engine.url.render_as_string(hide_password=True)
        if audit_spool is None and self._is_sqlite_file and self._engine.url.database:
            audit_spool = Path(self._engine.url.database + ".audit-spool.jsonl")
        self.audit_spool = audit_spool

    def __repr__(self) -> str:
        return f"SqlAccountStore({self.url!r})"

    def __enter__(self) -> SqlAccountStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (tests attach event listeners to it)."""
        return self._engine

    # -- schema, health ----------------------------------------------------------------------

    def create_schema(self) -> UpgradeReport:
        """Create the schema or upgrade it in place to the newest migration (existing data is
        kept; see :mod:`assistant.accounts.migrate`). SQLite files go to WAL mode so that
        lookups of concurrent calls do not wait for a reset being written."""
        with _store_errors("could not create or upgrade the database schema"):
            report = migrate.upgrade(self._engine)
            if self._is_sqlite_file:
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return report

    def health(self) -> dict[str, object]:
        """``{"ok", "db", "accounts", "audit_rows"}``, or ``ok`` false with ``error`` (a stable
        code) and ``message``. Never raises for database failures."""
        info: dict[str, object] = {"ok": False, "db": self.url}
        try:
            with _store_errors("health check failed"), self._engine.connect() as conn:
                accounts = conn.execute(select(func.count()).select_from(Account)).scalar_one()
                audit = conn.execute(select(func.count()).select_from(AuditRow)).scalar_one()
        except StoreError as error:
            info.update(error=error.code, message=error.message)
            return info
        info.update(ok=True, accounts=int(accounts), audit_rows=int(audit))
        return info

    def close(self) -> None:
        """Write the audit rows still pending (or spool them), then release the engine and
        drop the passwords made ahead."""
        self.credentials.close()
        with self._pending_guard:
            pending, self._pending = self._pending, []
        if pending:
            try:
                self._insert_audit(pending)
            except StoreError as error:
                self._spool(pending, error)
        self._engine.dispose()

    # -- the AccountStore port ---------------------------------------------------------------

    def matches(self, phone: str, code: str) -> bool:
        """Whether ``code`` is registered to ``phone``. One SELECT by code whatever the inputs,
        then a constant-time comparison against the stored phone or a stand-in. Writes nothing.
        """
        phone_key = _phone_key(phone)
        code_key = _code_key(code)
        what = f"could not look up account {mask_code(code)}"
        with _store_errors(what), self._engine.connect() as conn:
            stored = conn.execute(
                select(Account.phone).where(Account.code == code_key)
            ).scalar_one_or_none()
        return _same_phone(phone_key, stored)

    def reset_password(
        self,
        phone: str,
        code: str,
        *,
        call_id: str,
        caller_source: str,
        peer_class: str = PeerClass.LOCAL.value,
    ) -> str | None:
        """A new one-time password for the account, or ``None`` (nothing changed) if the pair
        does not match. In one transaction: the pending credential, conditional on code *and*
        phone still matching (the re-check, atomic on every backend; the row lock also orders
        concurrent resets of one account), the issue limits (ThrottledError, nothing changed,
        when the number or the account has had its passwords for the window), then the
        ``password_issued`` audit row. The current password keeps working (module doc)."""
        if not self.matches(phone, code):
            return None
        phone_key = normalize_phone(phone)
        code_key = normalize_code(code)
        credential = self.credentials.take()  # made ahead, or slow: before any write lock
        password, hashed = credential.password, credential.hashed
        self._ensure_secret()
        now = self._clock()
        audit = self._audit_values(
            call_id=call_id,
            phone=phone_key,
            code=code_key,
            outcome="password_issued",
            caller_source=caller_source,
            peer_class=peer_class,
            at=now,
        )
        what = f"could not issue a password for account {mask_code(code_key)}"
        with _store_errors(what), self._engine.connect() as conn:
            conn.execute(  # unused issued passwords of every account expire
                update(Account)
                .where(Account.issued_expires_at <= now)
                .values(issued_hash=None, issued_at=None, issued_expires_at=None)
            )
            result = conn.execute(
                update(Account)
                .where(Account.code == code_key, Account.phone == phone_key)
                .values(
                    issued_hash=hashed,
                    issued_at=now,
                    issued_expires_at=now + ISSUED_VALID,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                conn.rollback()
                return None
            issues = [
                self._counted(LimitKind.PHONE_ISSUE, phone_key, code_key),
                self._counted(LimitKind.ACCOUNT_ISSUE, phone_key, code_key),
            ]
            if not count_events(conn, self.limits, issues, now):
                conn.rollback()
                log.info("reset throttled (%s, %s)", mask_phone(phone_key), mask_code(code_key))
                raise ThrottledError(
                    "a password was issued for this number or account in the last "
                    f"{self.limits.window_h:g} h"
                )
            conn.execute(insert(AuditRow).values(**audit))
            conn.commit()
        return password

    def record(
        self,
        *,
        call_id: str,
        phone: str | None,
        code: str | None,
        outcome: str,
        caller_source: str,
        peer_class: str = PeerClass.LOCAL.value,
    ) -> None:
        """Write the audit row of a call (masked phone and code). When the database refuses,
        the row is kept (logged, not raised: the call already ended) and written with the next
        audit row or at :meth:`close`, so no call is left without its row."""
        values = self._audit_values(
            call_id=call_id,
            phone=phone,
            code=code,
            outcome=outcome,
            caller_source=caller_source,
            peer_class=peer_class,
            at=self._clock(),
        )
        with self._pending_guard:
            batch, self._pending = [*self._pending, *self._unspool(), values], []
        try:
            self._insert_audit(batch)
        except StoreError as error:
            with self._pending_guard:
                self._pending = batch + self._pending
                waiting = len(self._pending)
            log.error(
                "audit row of call %s deferred (%d waiting): %s",
                values["call_id"],
                waiting,
                error,
            )

    def pending_audit_rows(self) -> int:
        """Audit rows not written yet (the database refused them; they are retried)."""
        with self._pending_guard:
            return len(self._pending)

    def _insert_audit(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction, retrying a locked database a few times."""
        for attempt in range(_AUDIT_RETRIES):
            try:
                with _store_errors("could not write the audit row"), self._engine.begin() as conn:
                    conn.execute(insert(AuditRow), rows)
                return
            except StoreError as error:
                if error.code != "store_locked" or attempt == _AUDIT_RETRIES - 1:
                    raise

    def _spool(self, rows: list[dict[str, Any]], error: StoreError) -> None:
        if self.audit_spool is None:
            log.error("%d audit row(s) lost, no spool file and %s", len(rows), error)
            return
        try:
            with self.audit_spool.open("a", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps({**row, "at": row["at"].isoformat()}) + "\n")
        except OSError as exc:
            log.error("%d audit row(s) lost, cannot spool (%s)", len(rows), exc.strerror)
            return
        log.error("%d audit row(s) spooled to %s: %s", len(rows), self.audit_spool, error)

    def _unspool(self) -> list[dict[str, Any]]:
        """The rows a previous run spooled (removed from the spool: the caller writes them)."""
        spool = self.audit_spool
        if spool is None or not spool.exists():
            return []
        try:
            lines = spool.read_text(encoding="utf-8").splitlines()
            spool.unlink()
        except OSError:
            return []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
                row["at"] = datetime.fromisoformat(row["at"])
            except (ValueError, KeyError, TypeError):
                continue
            rows.append(row)
        return rows

    # -- limits (see assistant.accounts.limits) --------------------------------------------

    def _ensure_secret(self) -> str:
        """The install's secret for keyed hashes, read (or made) in its own transaction."""
        if self._limit_secret is None:
            with _store_errors("could not read the install secret"), self._engine.connect() as conn:
                secret = install_secret(conn, _LIMITS_SECRET, self._clock())
                conn.commit()
            self._limit_secret = secret
        return self._limit_secret

    def _counted(self, kind: LimitKind, phone: str, code: str) -> Counted:
        secret = self._ensure_secret()
        if kind.subject == "phone":
            return Counted(kind, keyed_digest(secret, "phone", phone), mask_phone(phone))
        return Counted(kind, keyed_digest(secret, "code", code), mask_code(code))

    def keyed_digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the install's secret (hex): a stable pseudonym for
        values that must not be stored or logged as they are (SIP Call-IDs)."""
        return keyed_digest(self._ensure_secret(), purpose, value)

    def lookup(self, phone: str, code: str) -> LookupVerdict:
        """Whether ``code`` is registered to ``phone``, after the limits: each lookup counts
        for the number and for the code, and a number or code over its limit, or a number
        that has had its passwords for the window, is THROTTLED without any lookup (so the
        answer is the same whether the code exists or not)."""
        phone_key = _phone_key(phone)
        code_key = _code_key(code)
        events = [
            self._counted(LimitKind.PHONE_LOOKUP, phone_key, code_key),
            self._counted(LimitKind.CODE_LOOKUP, phone_key, code_key),
        ]
        # The account's own issue limit is not checked here: "this code had its password
        # today" would tell another number that the code exists. It is checked at the reset,
        # which only a caller who matched reaches.
        issued = [self._counted(LimitKind.PHONE_ISSUE, phone_key, code_key)]
        now = self._clock()
        with _store_errors("could not check the limits"), self._engine.connect() as conn:
            allowed = count_events(conn, self.limits, events, now, also_full=issued)
            conn.commit()
        if not allowed:
            log.info("lookup throttled (%s, %s)", mask_phone(phone), mask_code(code))
            return LookupVerdict.THROTTLED
        return LookupVerdict.MATCH if self.matches(phone, code) else LookupVerdict.MISMATCH

    def throttles(self, *, include_all: bool = False) -> list[ThrottleEntry]:
        """Counters in the window (only those at their limit unless ``include_all``)."""
        now = self._clock()
        since = now - self.limits.window
        with _store_errors("could not read the throttles"), self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    ThrottleEvent.kind,
                    ThrottleEvent.key,
                    func.max(ThrottleEvent.hint),
                    func.count(),
                    func.min(ThrottleEvent.at),
                    func.max(ThrottleEvent.at),
                )
                .where(ThrottleEvent.allowed.is_(True), ThrottleEvent.at > since)
                .group_by(ThrottleEvent.kind, ThrottleEvent.key)
            ).all()
        out = []
        for kind, key, hint, count, first, last in rows:
            try:
                limit = self.limits.limit(LimitKind(kind))
            except ValueError:
                continue
            entry = ThrottleEntry(
                kind=kind,
                key=key[:12],
                hint=hint,
                count=int(count),
                limit=limit,
                last_at=_aware(last),
                until=_aware(first) + self.limits.window,
            )
            if include_all or entry.throttled:
                out.append(entry)
        out.sort(key=lambda e: (e.kind, e.last_at))
        return out

    def unthrottle(self, *, phone: str | None = None, code: str | None = None) -> int:
        """Clear the counters of a number (its lookups and issued passwords) or of a code (its
        lookups and its account's issued passwords). Returns the counted events cleared."""
        if (phone is None) == (code is None):
            raise StoreError("unthrottle needs exactly one of phone or code", code="store_error")
        secret = self._ensure_secret()
        if phone is not None:
            key = keyed_digest(secret, "phone", normalize_phone(phone))
            kinds = [LimitKind.PHONE_LOOKUP.value, LimitKind.PHONE_ISSUE.value]
        else:
            assert code is not None
            key = keyed_digest(secret, "code", normalize_code(code))
            kinds = [LimitKind.CODE_LOOKUP.value, LimitKind.ACCOUNT_ISSUE.value]
        with _store_errors("could not clear the throttle"), self._engine.connect() as conn:
            which = (ThrottleEvent.key == key, ThrottleEvent.kind.in_(kinds))
            counted = conn.execute(
                select(func.count())
                .select_from(ThrottleEvent)
                .where(*which, ThrottleEvent.allowed.is_(True))
            ).scalar_one()
            conn.execute(delete(ThrottleEvent).where(*which))
            conn.commit()
        return int(counted)

    @staticmethod
    def _audit_values(
        *,
        call_id: str,
        phone: str | None,
        code: str | None,
        outcome: str,
        caller_source: str,
        peer_class: str = PeerClass.LOCAL.value,
        at: datetime,
    ) -> dict[str, Any]:
        phone_key = None if phone is None else _phone_key(phone)
        if phone_key == _INVALID_PHONE:
            phone_key = None
        code_key = None if code is None else _code_key(code)
        return {
            "at": at,
            "call_id": _scrub_call_id(call_id, phone_key, code_key),
            "caller_masked": mask_phone(phone),
            "code_masked": mask_code(code),
            "outcome": _label(outcome, "outcome"),
            "caller_source": _label(caller_source, "caller source"),
            "peer_class": _label(peer_class, "peer class"),
        }

    # -- operator methods --------------------------------------------------------------------

    def add_account(self, code: str, phone: str, *, exist_ok: bool = False) -> bool:
        """Register ``code`` to ``phone`` (both normalised; CodeError/PhoneError when invalid).

        Returns True when added. An existing code raises ``store_duplicate``, unless
        ``exist_ok`` and it is registered to the same phone: then returns False.
        """
        code_key = normalize_code(code)
        phone_key = normalize_phone(phone)
        now = _utcnow()
        what = f"could not add account {mask_code(code_key)}"
        with _store_errors(what), self._engine.connect() as conn:
            if exist_ok:
                existing = conn.execute(
                    select(Account.phone).where(Account.code == code_key)
                ).scalar_one_or_none()
                if existing == phone_key:
                    return False
                if existing is not None:
                    raise StoreError(
                        f"{what}: already registered to another phone ({mask_phone(existing)})",
                        code="store_duplicate",
                    )
            conn.execute(
                insert(Account).values(
                    code=code_key,
                    phone=phone_key,
                    password_hash=None,
                    must_change=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.commit()
        return True

    def import_csv(self, path: str | os.PathLike[str]) -> ImportReport:
        """Add the accounts of a CSV file with header ``code,phone`` (or
        ``ma_so_bhxh,so_dien_thoai``; ``,`` ``;`` or tab separated; UTF-8 with or without BOM).

        Bad rows (bad code, bad phone, code twice in the file or already registered) are
        reported with their line numbers; good rows are added in one transaction. Raises
        :class:`CsvImportError` when the file cannot be read or has no such header.
        """
        rows, unparsable = _read_csv(path)
        report = ImportReport(rows=len(rows) + len(unparsable), problems=list(unparsable))
        seen: dict[str, int] = {}
        good: list[tuple[int, str, str]] = []
        for line, code_raw, phone_raw in rows:
            reasons: list[str] = []
            code_key = phone_key = ""
            try:
                code_key = normalize_code(code_raw)
            except CodeError as error:
                reasons.append(f"bad code: {error.message}")
            try:
                phone_key = normalize_phone(phone_raw)
            except PhoneError as error:
                reasons.append(f"bad phone: {error.message}")
            if code_key and code_key in seen:
                reasons.append(
                    f"duplicate code {mask_code(code_key)} (already on line {seen[code_key]})"
                )
            elif code_key:
                seen[code_key] = line
            if reasons:
                report.problems.append(ImportProblem(line, "; ".join(reasons)))
            else:
                good.append((line, code_key, phone_key))

        now = self._clock()
        with _store_errors("could not import accounts"), self._engine.connect() as conn:
            registered: set[str] = set()
            codes = [code for _, code, _ in good]
            for start in range(0, len(codes), _CHUNK):
                chunk = codes[start : start + _CHUNK]
                registered.update(
                    conn.execute(select(Account.code).where(Account.code.in_(chunk))).scalars()
                )
            new_rows: list[dict[str, Any]] = []
            for line, code_key, phone_key in good:
                if code_key in registered:
                    reason = f"code {mask_code(code_key)} is already registered in the database"
                    report.problems.append(ImportProblem(line, reason))
                    continue
                new_rows.append(
                    {
                        "code": code_key,
                        "phone": phone_key,
                        "password_hash": None,
                        "must_change": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            if new_rows:
                conn.execute(insert(Account), new_rows)
            conn.commit()
        report.problems.sort(key=lambda p: p.line)
        report.added = len(new_rows)
        return report

    def check_password(self, code: str, password: str) -> bool:
        """Whether ``password`` opens account ``code`` (see :meth:`verify`, which this is)."""
        return self.verify(code, password) is not PasswordCheck.INVALID

    def verify(self, code: str, password: str) -> PasswordCheck:
        """A login with ``password`` on account ``code``, under the policy of the module doc:
        the pending issued password, on first use, becomes the current one (CHANGE_DUE from
        then on, until changed); the current one is VALID (CHANGE_DUE when ``must_change``)
        and voids a pending issued one; expired issued passwords are cleared. Hashes made with
        older parameters are rehashed. Unknown codes cost the same scrypt work (INVALID)."""
        code_key = _code_key(code)
        now = self._clock()
        what = f"could not look up account {mask_code(code)}"
        with _store_errors(what), self._engine.connect() as conn:
            row = conn.execute(
                select(
                    Account.id,
                    Account.password_hash,
                    Account.must_change,
                    Account.issued_hash,
                    Account.issued_expires_at,
                ).where(Account.code == code_key)
            ).one_or_none()
        if row is None or (row.password_hash is None and row.issued_hash is None):
            verify_password(password, self._dummy())
            return PasswordCheck.INVALID
        pending = row.issued_hash is not None and (
            row.issued_expires_at is not None and row.issued_expires_at > now
        )
        changes: dict[str, Any] = {}
        result = PasswordCheck.INVALID
        if row.issued_hash is not None and not pending:
            changes.update(_NO_ISSUED)  # expired, unused
        if pending and self._verify(password, row.issued_hash, code):
            new_hash = row.issued_hash
            if needs_rehash(new_hash, self._params):
                new_hash = hash_password(password, self._params)
            changes.update(_NO_ISSUED, password_hash=new_hash, must_change=True)
            result = PasswordCheck.CHANGE_DUE
        elif row.password_hash is not None and self._verify(password, row.password_hash, code):
            if pending:
                changes.update(_NO_ISSUED)  # the holder is still in control
            if needs_rehash(row.password_hash, self._params):
                changes["password_hash"] = hash_password(password, self._params)
            result = PasswordCheck.CHANGE_DUE if row.must_change else PasswordCheck.VALID
        if changes:
            with _store_errors(what), self._engine.begin() as conn:
                conn.execute(
                    update(Account)
                    .where(
                        Account.id == row.id,
                        _same_or_null(Account.issued_hash, row.issued_hash),
                        _same_or_null(Account.password_hash, row.password_hash),
                    )
                    .values(**changes, updated_at=now)
                )
        return result

    def expire_issued(self) -> int:
        """Clear the issued passwords nobody used in time; returns how many."""
        now = self._clock()
        with _store_errors("could not expire issued passwords"), self._engine.begin() as conn:
            result = conn.execute(
                update(Account).where(Account.issued_expires_at <= now).values(**_NO_ISSUED)
            )
        return int(result.rowcount)

    def _verify(self, password: str, stored: str, code: str) -> bool:
        try:
            return verify_password(password, stored)
        except HashFormatError as error:
            raise StoreError(
                f"stored password hash of account {mask_code(code)} is unusable: {error.message}",
                code="store_error",
            ) from None

    def must_change(self, code: str) -> bool | None:
        """The ``must_change`` flag of ``code`` (None: no such account)."""
        code_key = _code_key(code)
        what = f"could not look up account {mask_code(code)}"
        with _store_errors(what), self._engine.connect() as conn:
            flag = conn.execute(
                select(Account.must_change).where(Account.code == code_key)
            ).scalar_one_or_none()
        return None if flag is None else bool(flag)

    def audit_rows(self, limit: int = 50) -> list[AuditEntry]:
        """The latest ``limit`` audit rows, newest first."""
        if limit < 1:
            raise StoreError("audit limit must be at least 1", code="store_error")
        with _store_errors("could not read the audit trail"), self._engine.connect() as conn:
            rows = conn.execute(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)).all()
        return [
            AuditEntry(
                call_id=row.call_id,
                caller_masked=row.caller_masked,
                code_masked=row.code_masked,
                outcome=row.outcome,
                caller_source=row.caller_source,
                at=row.at.isoformat(timespec="milliseconds"),
                peer_class=row.peer_class,
            )
            for row in rows
        ]

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(generate_password(self._password_length), self._params)
        return self._dummy_hash


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _make_engine(url: str, busy_timeout: float) -> tuple[Engine, bool]:
    """The engine for ``url`` and whether it is an SQLite file (whose directory is created)."""
    if busy_timeout < 0:
        raise StoreError("busy timeout must not be negative", code="store_error")
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise StoreError(
            "invalid database URL (expected e.g. sqlite:///var/vssid.sqlite3 or "
            "postgresql+psycopg://user@host/db)",
            code="store_unavailable",
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    options: dict[str, Any] = {"hide_parameters": True}
    sqlite_file = False
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not in_memory and not database.startswith("file:"):
            sqlite_file = True
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"cannot create the directory of {shown}: {error.strerror}",
                    code="store_unavailable",
                ) from None
        options["connect_args"] = {"timeout": float(busy_timeout)}
    else:
        options["pool_pre_ping"] = True  # several boxes, one server: survive its restarts
    try:
        return create_engine(parsed, **options), sqlite_file
    except (sa_exc.SQLAlchemyError, ImportError) as error:
        raise StoreError(
            f"cannot use {shown}: {type(error).__name__}: {_scrub(str(error))}",
            code="store_unavailable",
        ) from None
