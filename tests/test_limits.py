"""Limits across calls and boxes (issue 12): per number, per code, per account, in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from assistant.accounts.limits import LimitSettings
from assistant.accounts.models import ThrottleEvent
from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore
from assistant.core.errors import ConfigError, ThrottledError
from assistant.core.ports import LookupVerdict

FAST = ScryptParams(n=2**6, r=8, p=1)
CODE, PHONE = "0123456789", "0912345678"
OTHER_CODE, OTHER_PHONE = "7912345680", "0987654321"
UNKNOWN_CODE = "5555555555"


class Clock:
    """The store's clock, moved by the test (time is data, never a sleep)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'limits.sqlite3'}"


@pytest.fixture
def store(url: str, clock: Clock) -> Iterator[SqlAccountStore]:
    s = SqlAccountStore(url, scrypt_params=FAST, clock=clock)
    s.create_schema()
    s.add_account(CODE, PHONE)
    s.add_account(OTHER_CODE, OTHER_PHONE)
    yield s
    s.close()


def numbers(n: int) -> list[str]:
    return [f"09{k:08d}" for k in range(n)]


def test_defaults_follow_the_issue() -> None:
    limits = LimitSettings()
    assert (limits.phone_lookups, limits.phone_issues) == (5, 1)
    assert (limits.code_lookups, limits.account_issues) == (5, 1)
    assert limits.window == timedelta(hours=24)


def test_settings_parse_and_validate() -> None:
    assert LimitSettings.parse("phone_lookups=7, window_h=1").phone_lookups == 7
    assert LimitSettings.parse("") == LimitSettings()
    for bad in ("phone_lookups=0", "nonsense=3", "code_lookups=x", "window_h=0", "phone_issues"):
        with pytest.raises(ConfigError):
            LimitSettings.parse(bad)


def test_brute_force_from_one_number_stops_after_five_lookups(store: SqlAccountStore) -> None:
    verdicts = [store.lookup(OTHER_PHONE, f"{1000000000 + k}") for k in range(100)]
    assert verdicts[:5] == [LookupVerdict.MISMATCH] * 5
    assert set(verdicts[5:]) == {LookupVerdict.THROTTLED}
    # even the right code is refused now, from this number: the check runs before the lookup
    assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.THROTTLED
    # another number is not affected
    assert store.lookup(PHONE, CODE) is LookupVerdict.MATCH


def test_spraying_one_code_from_fifty_numbers(store: SqlAccountStore) -> None:
    verdicts = [store.lookup(n, CODE) for n in numbers(50)]
    assert verdicts[:5] == [LookupVerdict.MISMATCH] * 5
    assert set(verdicts[5:]) == {LookupVerdict.THROTTLED}
    assert store.lookup(PHONE, CODE) is LookupVerdict.THROTTLED  # the code is spent for today
    assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.MATCH


def test_throttled_answer_is_the_same_for_known_and_unknown_codes(
    store: SqlAccountStore,
) -> None:
    for code in (CODE, UNKNOWN_CODE):
        for n in numbers(5):
            store.lookup(n, code)
    assert store.lookup("0900000099", CODE) is store.lookup("0900000098", UNKNOWN_CODE)
    assert store.lookup("0900000099", CODE) is LookupVerdict.THROTTLED


def test_one_password_per_account_and_per_number_per_day(
    store: SqlAccountStore, clock: Clock
) -> None:
    assert store.lookup(PHONE, CODE) is LookupVerdict.MATCH
    assert store.reset_password(PHONE, CODE, call_id="c1", caller_source="command-line")
    # the second reset of the day: refused before the lookup, and at the reset itself
    assert store.lookup(PHONE, CODE) is LookupVerdict.THROTTLED
    with pytest.raises(ThrottledError) as info:
        store.reset_password(PHONE, CODE, call_id="c2", caller_source="command-line")
    assert CODE not in str(info.value) and PHONE not in str(info.value)
    clock.advance(hours=24, seconds=1)
    assert store.lookup(PHONE, CODE) is LookupVerdict.MATCH
    assert store.reset_password(PHONE, CODE, call_id="c3", caller_source="command-line")


def test_twenty_resets_in_a_row_issue_one_password(store: SqlAccountStore) -> None:
    issued = 0
    for n in range(20):
        try:
            if store.lookup(PHONE, CODE) is LookupVerdict.MATCH:
                issued += bool(
                    store.reset_password(PHONE, CODE, call_id=f"c{n}", caller_source="none")
                )
        except ThrottledError:
            pass
    assert issued == 1


def test_limits_are_shared_by_boxes_on_one_database(
    store: SqlAccountStore, url: str, clock: Clock
) -> None:
    with SqlAccountStore(url, scrypt_params=FAST, clock=clock) as other_box:
        for k in range(3):
            assert store.lookup(OTHER_PHONE, f"{2000000000 + k}") is LookupVerdict.MISMATCH
        for k in range(2):
            assert other_box.lookup(OTHER_PHONE, f"{3000000000 + k}") is LookupVerdict.MISMATCH
        assert other_box.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.THROTTLED
        assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.THROTTLED


def test_configurable_limits(url: str, clock: Clock) -> None:
    limits = LimitSettings(phone_lookups=2, code_lookups=50, window_h=1)
    with SqlAccountStore(url, scrypt_params=FAST, clock=clock, limits=limits) as s:
        s.create_schema()
        s.add_account(CODE, PHONE)
        assert [s.lookup(OTHER_PHONE, CODE) for _ in range(3)] == [
            LookupVerdict.MISMATCH,
            LookupVerdict.MISMATCH,
            LookupVerdict.THROTTLED,
        ]
        clock.advance(minutes=61)
        assert s.lookup(OTHER_PHONE, CODE) is LookupVerdict.MISMATCH


def test_refused_attempts_do_not_extend_the_window(store: SqlAccountStore, clock: Clock) -> None:
    for k in range(5):
        store.lookup(OTHER_PHONE, f"{1000000000 + k}")
    clock.advance(hours=23)
    for _ in range(10):
        assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.THROTTLED
    clock.advance(hours=1, seconds=1)
    assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.MATCH


def test_keys_are_keyed_hashes_not_numbers_or_codes(store: SqlAccountStore, url: str) -> None:
    store.lookup(PHONE, CODE)
    store.reset_password(PHONE, CODE, call_id="c1", caller_source="none")
    with store.engine.connect() as conn:
        rows = conn.execute(select(ThrottleEvent.__table__)).all()
        dumped = [
            str(v) for row in conn.execute(text("SELECT * FROM throttle_events")) for v in row
        ]
    assert {r.kind for r in rows} == {"phone_lookup", "code_lookup", "phone_issue", "account_issue"}
    assert all(len(r.key) == 64 for r in rows)
    for secret in (CODE, PHONE, PHONE[1:], "912345678", "123456789"):
        assert not any(secret in value for value in dumped)
    # keyed: a plain SHA-256 of the number is not what is stored
    import hashlib

    plain = {hashlib.sha256(v.encode()).hexdigest() for v in (PHONE, CODE, f"phone:{PHONE}")}
    assert not plain & {r.key for r in rows}


def test_operators_see_and_clear_throttles(store: SqlAccountStore) -> None:
    for k in range(5):
        store.lookup(OTHER_PHONE, f"{1000000000 + k}")
    for n in numbers(5):
        store.lookup(n, CODE)
    entries = store.throttles()
    kinds = sorted((e.kind, e.hint) for e in entries)
    assert kinds == [("code_lookup", "*******789"), ("phone_lookup", "*******321")]
    assert all(e.throttled and e.count == e.limit == 5 for e in entries)
    assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.THROTTLED

    assert store.unthrottle(phone="+84 987 654 321") == 5
    assert store.lookup(OTHER_PHONE, OTHER_CODE) is LookupVerdict.MATCH
    assert store.lookup(PHONE, CODE) is LookupVerdict.THROTTLED
    assert store.unthrottle(code=CODE) == 5
    assert store.lookup(PHONE, CODE) is LookupVerdict.MATCH
    assert [e.kind for e in store.throttles()] == []
    assert len(store.throttles(include_all=True)) > 0


def test_a_reset_account_does_not_tell_strangers_its_code_exists(store: SqlAccountStore) -> None:
    """After the account's password of the day, another number trying its code hears the
    mismatch, like for any unknown code: only a matching caller hears the throttled words."""
    assert store.reset_password(PHONE, CODE, call_id="c1", caller_source="none")
    assert store.lookup(OTHER_PHONE, CODE) is LookupVerdict.MISMATCH
    assert store.lookup("0900000001", UNKNOWN_CODE) is LookupVerdict.MISMATCH
    with pytest.raises(ThrottledError):  # and the holder gets one password a day
        store.reset_password(PHONE, CODE, call_id="c2", caller_source="none")
