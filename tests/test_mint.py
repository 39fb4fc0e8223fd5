"""New passwords made ahead of time (issue 11): the scrypt hash is not on the caller's time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.accounts.mint import Credential, CredentialPool, OnDemand
from assistant.accounts.passwords import ScryptParams, verify_password
from assistant.accounts.store import PasswordCheck, SqlAccountStore
from assistant.core.errors import ConfigError

FAST = ScryptParams(n=2**6, r=8, p=1)
CODE, PHONE = "0123456789", "0912345678"


def test_a_pool_fills_and_each_credential_is_handed_out_once() -> None:
    pool = CredentialPool(3, 8, FAST, start=False)
    assert len(pool) == 0
    pool.fill()
    assert len(pool) == 3 and pool.made == 3
    taken = [pool.take() for _ in range(3)]
    assert len({c.password + c.hashed for c in taken}) == 3
    for credential in taken:
        assert len(credential.password) == 8 and credential.password.isdigit()
        assert verify_password(credential.password, credential.hashed)
        assert credential.hashed.startswith("scrypt$n=64,r=8,p=1$")
    assert len(pool) == 0 and pool.misses == 0
    extra = pool.take()  # none ready: made on the spot, never refused
    assert pool.misses == 1 and verify_password(extra.password, extra.hashed)
    pool.close()


def test_the_worker_refills_in_the_background() -> None:
    pool = CredentialPool(2, 8, FAST)
    try:
        assert pool.wait_full(10.0)
        pool.take()
        assert pool.wait_full(10.0)  # the worker made another
        assert pool.made >= 3 and pool.misses == 0
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
def test_the_worker_hashes_only_on_cpu_time_no_call_wants() -> None:
    pool = CredentialPool(1, 8, FAST)
    try:
        assert pool.wait_full(10.0)
        tid = pool._thread.native_id
        assert tid is not None and os.sched_getscheduler(tid) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's thread is untouched
    finally:
        pool.close()


def test_closing_drops_what_is_ready() -> None:
    pool = CredentialPool(2, 8, FAST, start=False)
    pool.fill()
    pool.close()
    pool.close()  # idempotent
    assert len(pool) == 0
    with pytest.raises(ConfigError):
        pool.take()


def test_secrets_never_show() -> None:
    credential = OnDemand(8, FAST).take()
    assert credential.password not in repr(credential)
    assert credential.hashed not in repr(credential)
    assert repr(credential) == "Credential()"
    pool = CredentialPool(1, 8, FAST, start=False)
    pool.fill()
    assert "scrypt" not in repr(pool) and "1/1" in repr(pool)
    pool.close()


@pytest.mark.parametrize("size", [0, -1, 257, True])
def test_absurd_pool_sizes_are_refused(size: int) -> None:
    with pytest.raises(ConfigError):
        CredentialPool(size, 8, FAST, start=False)


def test_a_store_issues_passwords_made_ahead(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mint.sqlite3'}"
    store = SqlAccountStore(url, scrypt_params=FAST, ready_passwords=2)
    try:
        store.create_schema()
        store.add_account(CODE, PHONE)
        pool = store.credentials
        assert isinstance(pool, CredentialPool) and pool.wait_full(10.0)
        password = store.reset_password(PHONE, CODE, call_id="c1", caller_source="from-header")
        assert password is not None and pool.misses == 0
        assert store.verify(CODE, password) is PasswordCheck.CHANGE_DUE
    finally:
        store.close()
    assert len(pool) == 0  # closing the store drops the ready ones


def test_on_demand_is_the_default(tmp_path: Path) -> None:
    store = SqlAccountStore(f"sqlite:///{tmp_path / 'd.sqlite3'}", scrypt_params=FAST)
    assert isinstance(store.credentials, OnDemand)
    assert isinstance(store.credentials.take(), Credential)
    store.close()
