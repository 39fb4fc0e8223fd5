"""The old password is not killed by a stranger (issue 12): the issued password is a one-time,
must-change credential valid 24 h alongside the old one until first use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from assistant.accounts.models import Account
from assistant.accounts.passwords import (
    DEFAULT_PARAMS,
    ScryptParams,
    hash_password,
    needs_rehash,
    verify_password,
)
from assistant.accounts.store import PasswordCheck, SqlAccountStore
from assistant.cli.main import main

FAST = ScryptParams(n=2**6, r=8, p=1)
STRONGER = ScryptParams(n=2**7, r=8, p=1)
CODE, PHONE = "0123456789", "0912345678"
OLD = "11112222"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'policy.sqlite3'}"


@pytest.fixture
def store(url: str, clock: Clock) -> Iterator[SqlAccountStore]:
    s = SqlAccountStore(url, scrypt_params=FAST, clock=clock)
    s.create_schema()
    s.add_account(CODE, PHONE)
    with s.engine.begin() as conn:  # the holder's current password
        conn.execute(
            update(Account)
            .where(Account.code == CODE)
            .values(password_hash=hash_password(OLD, FAST))
        )
    yield s
    s.close()


def issue(store: SqlAccountStore) -> str:
    password = store.reset_password(PHONE, CODE, call_id="c", caller_source="from-header")
    assert password is not None
    return password


def test_owasp_scrypt_parameters_are_the_default() -> None:
    # OWASP's n=2**14, r=8, p=5 (16 MiB), listed as equivalent to n=2**17, r=8, p=1 (128 MiB)
    assert (DEFAULT_PARAMS.n, DEFAULT_PARAMS.r, DEFAULT_PARAMS.p) == (2**14, 8, 5)
    assert DEFAULT_PARAMS.memory < 17 * 2**20
    for older in (ScryptParams(n=2**14, p=1), ScryptParams(n=2**17, p=1)):
        old = hash_password("12345678", older)
        assert needs_rehash(old)  # hashes made before the change stay verifiable, then upgraded
        assert verify_password("12345678", old)


def test_a_reset_does_not_kill_the_old_password(store: SqlAccountStore) -> None:
    issued = issue(store)
    assert store.verify(CODE, OLD) is PasswordCheck.VALID
    # the holder logged in with the old password: the stranger's issued one is void
    assert store.verify(CODE, issued) is PasswordCheck.INVALID


def test_first_use_of_the_issued_password_replaces_the_old_one(store: SqlAccountStore) -> None:
    issued = issue(store)
    assert store.verify(CODE, issued) is PasswordCheck.CHANGE_DUE
    assert store.verify(CODE, OLD) is PasswordCheck.INVALID
    assert store.verify(CODE, issued) is PasswordCheck.CHANGE_DUE  # until it is changed
    assert store.must_change(CODE) is True


def test_unused_issued_password_expires_after_24_hours(
    store: SqlAccountStore, clock: Clock
) -> None:
    issued = issue(store)
    clock.now += timedelta(hours=24, seconds=1)
    assert store.verify(CODE, issued) is PasswordCheck.INVALID
    assert store.verify(CODE, OLD) is PasswordCheck.VALID
    assert store.expire_issued() == 0  # already cleared by the check


def test_expire_issued_clears_stale_credentials(store: SqlAccountStore, clock: Clock) -> None:
    issue(store)
    assert store.expire_issued() == 0
    clock.now += timedelta(hours=25)
    assert store.expire_issued() == 1


def test_old_hashes_are_rehashed_on_use(url: str, clock: Clock) -> None:
    with SqlAccountStore(url, scrypt_params=FAST, clock=clock) as s:
        s.create_schema()
        s.add_account(CODE, PHONE)
        with s.engine.begin() as conn:
            conn.execute(
                update(Account)
                .where(Account.code == CODE)
                .values(password_hash=hash_password(OLD, FAST))
            )
    with SqlAccountStore(url, scrypt_params=STRONGER, clock=clock) as s:
        assert s.verify(CODE, OLD) is PasswordCheck.VALID
        with s.engine.connect() as conn:
            stored = conn.execute(Account.__table__.select().where(Account.code == CODE)).one()
        assert stored.password_hash.startswith("scrypt$n=128,")
        assert s.verify(CODE, OLD) is PasswordCheck.VALID


def test_accounts_check_enforces_must_change(
    store: SqlAccountStore,
    url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = issue(store)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(issued + "\n"))
    rc = main(["accounts", "check", "--db", url, "--code", CODE, "--password", "-"])
    out = capsys.readouterr().out
    assert rc == 3
    assert "change" in out and CODE not in out and issued not in out
    rc = main(["accounts", "check", "--db", url, "--code", CODE, "--password", "99999999"])
    assert rc == 1
