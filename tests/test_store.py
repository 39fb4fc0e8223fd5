"""SqlAccountStore on SQLite files and on PostgreSQL, and the password hashing it relies on.

Every test that takes ``store`` or ``db_url`` runs twice, ``[sqlite]`` and ``[postgresql]``
(``tests/conftest.py``); tests of SQLite's own behaviour (files, locks) take ``db_path``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, event, select, text
from sqlalchemy import exc as sa_exc

from assistant.accounts.limits import LimitSettings
from assistant.accounts.passwords import (
    DEFAULT_PARAMS,
    HashFormatError,
    ScryptParams,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from assistant.accounts.store import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_DB_URL,
    Account,
    CsvImportError,
    SqlAccountStore,
    _wrap,
    default_db_url,
)
from assistant.core.dialog import Outcome
from assistant.core.errors import ConfigError, StoreError
from assistant.core.ports import AccountStore, AuditEntry, CallerSource
from assistant.language.phone import CodeError, PhoneError

CODE = "0123456789"
PHONE = "0912345678"
OTHER_CODE = "7912345680"
OTHER_PHONE = "0987654321"
FAST = ScryptParams(n=2**6, r=8, p=1)  # cheap hashes for tests; the format is the same
# The limits across calls have their own tests (test_limits.py); here resets repeat freely.
LENIENT = LimitSettings(
    phone_lookups=1000, phone_issues=1000, code_lookups=1000, account_issues=1000
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "dir" / "vssid.sqlite3"


@pytest.fixture
def store(db_url: str) -> Iterator[SqlAccountStore]:
    s = SqlAccountStore(db_url, scrypt_params=FAST, limits=LENIENT)
    s.create_schema()
    s.add_account(CODE, PHONE)
    s.add_account(OTHER_CODE, OTHER_PHONE)
    yield s
    s.close()


def account(store: SqlAccountStore, code: str = CODE) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(select(Account.__table__).where(Account.code == code)).one()
    return dict(row._mapping)


def dump_database(store: SqlAccountStore) -> list[str]:
    """Every column of every row of every table, as text."""
    out: list[str] = []
    metadata = MetaData()
    with store.engine.connect() as conn:
        metadata.reflect(conn)
        assert set(metadata.tables) >= {"accounts", "audit_log"}
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                out.extend(str(value) for value in row)
    return out


def audit_count(store: SqlAccountStore) -> int:
    return len(store.audit_rows(10_000))


class StatementLog:
    def __init__(self, store: SqlAccountStore) -> None:
        self.statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._on_execute)
        self._engine = store.engine

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_execute)


# --------------------------------------------------------------------------------------------
# URL, schema, construction
# --------------------------------------------------------------------------------------------


def test_default_url_is_var_under_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VSSID_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_db_url() == f"sqlite:///{tmp_path}/var/vssid.sqlite3"
    assert DEFAULT_DB_URL == "sqlite:///var/vssid.sqlite3"


def test_default_url_follows_vssid_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VSSID_DB", "data/box.db")
    assert default_db_url() == f"sqlite:///{tmp_path}/data/box.db"
    monkeypatch.setenv("VSSID_DB", "postgresql+psycopg://box@db/vssid")
    assert default_db_url() == "postgresql+psycopg://box@db/vssid"


def test_sqlite_parent_directory_is_created(db_path: Path) -> None:
    assert not db_path.parent.exists()
    with SqlAccountStore(f"sqlite:///{db_path}") as s:
        s.create_schema()
        assert s.health()["ok"] is True
    assert db_path.is_file()


def test_create_schema_is_idempotent_and_keeps_data(store: SqlAccountStore) -> None:
    store.create_schema()
    assert store.matches(PHONE, CODE)


def test_store_implements_the_port(store: SqlAccountStore) -> None:
    port: AccountStore = store
    assert port.matches(PHONE, CODE)


def test_password_length_below_six_is_a_config_error(db_path: Path) -> None:
    with pytest.raises(ConfigError):
        SqlAccountStore(f"sqlite:///{db_path}", password_length=5)


def test_password_length_is_used(db_url: str) -> None:
    with SqlAccountStore(db_url, password_length=10, scrypt_params=FAST) as s:
        s.create_schema()
        s.add_account(CODE, PHONE)
        password = s.reset_password(PHONE, CODE, call_id="c", caller_source="command-line")
    assert password is not None
    assert len(password) == 10
    assert password.isdigit()


def test_busy_timeout_default() -> None:
    assert DEFAULT_BUSY_TIMEOUT == 5.0


@pytest.mark.parametrize(
    "url",
    ["not a url", "nosuchdialect://x/y", "postgresql+nosuchdriver://u:pw@localhost/db"],
)
def test_unusable_url_is_store_unavailable(url: str) -> None:
    with pytest.raises(StoreError) as info:
        SqlAccountStore(url)
    assert info.value.code == "store_unavailable"
    assert "pw@" not in str(info.value)


def test_repr_hides_url_password() -> None:
    s = SqlAccountStore("sqlite:///:memory:")
    assert "SqlAccountStore" in repr(s)
    s.close()


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


def test_add_account_normalises_and_timestamps_in_utc(store: SqlAccountStore) -> None:
    store.add_account("4801 357 924", "+84 35 824 6813")
    row = account(store, "4801357924")
    assert row["phone"] == "0358246813"
    assert row["password_hash"] is None
    assert row["must_change"] is False
    with store.engine.connect() as conn:
        acc = conn.execute(select(Account.created_at).where(Account.code == "4801357924")).one()
    assert acc.created_at.tzinfo is UTC
    assert abs((datetime.now(UTC) - acc.created_at).total_seconds()) < 3600


def test_add_duplicate_code_is_store_duplicate_without_the_code(store: SqlAccountStore) -> None:
    with pytest.raises(StoreError) as info:
        store.add_account(CODE, OTHER_PHONE)
    assert info.value.code == "store_duplicate"
    assert CODE not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_add_account_exist_ok(store: SqlAccountStore) -> None:
    assert store.add_account(CODE, "+84912345678", exist_ok=True) is False
    with pytest.raises(StoreError) as info:
        store.add_account(CODE, OTHER_PHONE, exist_ok=True)
    assert info.value.code == "store_duplicate"
    assert OTHER_PHONE not in str(info.value) and PHONE not in str(info.value)


def test_add_account_validates(store: SqlAccountStore) -> None:
    with pytest.raises(CodeError):
        store.add_account("12345", PHONE)
    with pytest.raises(PhoneError):
        store.add_account("4801357924", "12345")


def test_account_repr_masks() -> None:
    acc = Account(code=CODE, phone=PHONE, must_change=False)
    assert CODE not in repr(acc)
    assert PHONE not in repr(acc)


# --------------------------------------------------------------------------------------------
# matches()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [PHONE, "+84 912 345 678", "84912345678", "0912.345.678"])
def test_matches_any_spelling_of_the_registered_phone(
    store: SqlAccountStore, spelling: str
) -> None:
    assert store.matches(spelling, CODE) is True


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        (PHONE, "5555555555"),  # unknown code
        (OTHER_PHONE, CODE),  # known code, another number
        (PHONE, OTHER_CODE),  # a real number and a real code, not each other's
        ("garbage", CODE),  # invalid phone
        ("", CODE),
        (PHONE, "12345"),  # invalid code
        (PHONE, ""),
    ],
)
def test_matches_false(store: SqlAccountStore, phone: str, code: str) -> None:
    assert store.matches(phone, code) is False


def test_matches_runs_the_same_statements_whatever_the_inputs(store: SqlAccountStore) -> None:
    log = StatementLog(store)
    try:
        shapes = {}
        for name, phone, code in [
            ("match", PHONE, CODE),
            ("unknown code", PHONE, "5555555555"),
            ("known code, other number", OTHER_PHONE, CODE),
            ("invalid phone", "garbage", CODE),
            ("invalid phone, unknown code", "garbage", "5555555555"),
            ("invalid code", PHONE, "12"),
        ]:
            store.matches(phone, code)
            shapes[name] = log.take()
    finally:
        log.close()
    reference = shapes["match"]
    assert len(reference) == 1 and reference[0].lstrip().upper().startswith("SELECT")
    for name, statements in shapes.items():
        assert statements == reference, name


def test_matches_writes_nothing(store: SqlAccountStore, db_path: Path, db_backend: str) -> None:
    dumped = dump_database(store)
    log = StatementLog(store)
    files = [db_path, db_path.with_name(db_path.name + "-wal")]  # not -shm: readers mark it
    before = [f.read_bytes() if f.exists() else None for f in files]
    try:
        for phone, code in [(PHONE, CODE), (OTHER_PHONE, CODE), (PHONE, "5555555555")]:
            store.matches(phone, code)
        statements = log.take()
    finally:
        log.close()
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
    assert audit_count(store) == 0
    assert dump_database(store) == dumped
    if db_backend == "sqlite":
        assert [f.read_bytes() if f.exists() else None for f in files] == before


# --------------------------------------------------------------------------------------------
# reset_password()
# --------------------------------------------------------------------------------------------


def test_reset_issues_a_password_and_stores_only_its_hash(
    store: SqlAccountStore, db_path: Path, db_backend: str
) -> None:
    sent: list[str] = []  # every statement and its parameters, as the driver got them

    def on_execute(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append(f"{statement} {parameters!r}")

    event.listen(store.engine, "before_cursor_execute", on_execute)
    first = store.reset_password(PHONE, CODE, call_id="call-1", caller_source="command-line")
    assert first is not None
    before = account(store)
    second = store.reset_password(
        "+84 912 345 678", CODE, call_id="call-2", caller_source="p-asserted-identity"
    )
    assert second is not None
    assert len(second) == 8 and second.isdigit()
    assert second != first  # 1 chance in 10**8 of a false alarm
    assert before["issued_hash"] != account(store)["issued_hash"]
    assert account(store)["password_hash"] is None  # issued passwords are pending until used

    assert store.check_password(CODE, second) is True
    assert store.check_password(CODE, first) is False
    assert store.check_password(OTHER_CODE, second) is False
    row = account(store)
    assert row["must_change"] is True
    assert row["password_hash"].startswith("scrypt$n=64,r=8,p=1$")
    assert row["updated_at"] >= before["updated_at"]

    # no clear password anywhere in the database (every column of every table), nor in what
    # was sent to it, nor (SQLite) in its files
    event.remove(store.engine, "before_cursor_execute", on_execute)
    dumped = dump_database(store)
    for password in (first, second):
        assert not any(password in value for value in dumped)
        assert not any(password in statement for statement in sent)
        if db_backend == "sqlite":
            for path in db_path.parent.iterdir():
                assert password.encode() not in path.read_bytes()

    # the audit rows: masked phone and code only
    entries = store.audit_rows(10)
    assert [e.outcome for e in entries] == ["password_issued", "password_issued"]
    latest = entries[0]
    assert latest == AuditEntry(
        call_id="call-2",
        caller_masked="*******678",
        code_masked="*******789",
        outcome="password_issued",
        caller_source="p-asserted-identity",
        at=latest.at,
    )
    assert latest.at.endswith("+00:00")
    with store.engine.connect() as conn:
        audit_values = [
            str(v) for row in conn.execute(text("SELECT * FROM audit_log")) for v in row
        ]
    for secret in (CODE, PHONE, "912345678"):
        assert not any(secret in value for value in audit_values)


def test_old_password_stops_working(store: SqlAccountStore) -> None:
    issued = []
    for n in range(3):
        password = store.reset_password(PHONE, CODE, call_id=f"c{n}", caller_source="none")
        assert password is not None
        issued.append(password)
    assert store.check_password(CODE, issued[-1])
    assert len(set(issued)) == 3
    for old in issued[:-1]:
        assert not store.check_password(CODE, old)


@pytest.mark.parametrize(
    ("phone", "code"),
    [(OTHER_PHONE, CODE), (PHONE, "5555555555"), ("junk", CODE), (PHONE, "junk")],
)
def test_reset_without_match_changes_nothing(store: SqlAccountStore, phone: str, code: str) -> None:
    before = dump_database(store)
    assert store.reset_password(phone, code, call_id="c", caller_source="none") is None
    assert dump_database(store) == before


def test_reset_rechecks_inside_the_transaction(
    store: SqlAccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pair stops matching between the lookup and the update: nothing changes."""
    store.keyed_digest("warm", "up")  # the install secret, made once on first use
    before = dump_database(store)
    monkeypatch.setattr(store, "matches", lambda phone, code: True)
    assert store.reset_password(OTHER_PHONE, CODE, call_id="c", caller_source="none") is None
    assert dump_database(store) == before


def test_reset_and_audit_row_are_one_transaction(store: SqlAccountStore) -> None:
    old = store.reset_password(PHONE, CODE, call_id="c1", caller_source="none")
    assert old is not None
    before = account(store)
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
    with pytest.raises(StoreError) as info:
        store.reset_password(PHONE, CODE, call_id="c2", caller_source="none")
    assert info.value.code == "store_error"
    assert "audit refused" in info.value.message
    assert CODE not in str(info.value)
    after = account(store)
    assert after == before  # hash, must_change, updated_at untouched
    assert store.check_password(CODE, old)
    assert audit_count(store) == 1


# --------------------------------------------------------------------------------------------
# record(), audit_rows()
# --------------------------------------------------------------------------------------------


def test_record_masks_phone_and_code(store: SqlAccountStore) -> None:
    store.record(
        call_id="sip-0912345678-abc",
        phone="+84 912 345 678",
        code=CODE,
        outcome="mismatch",
        caller_source="from-header",
    )
    store.record(call_id="c2", phone=None, code=None, outcome="no_caller_id", caller_source="none")
    store.record(
        call_id="c3", phone="garbage", code="0123", outcome="gave_up", caller_source="none"
    )
    latest, middle, first = store.audit_rows(3)
    assert (first.caller_masked, first.code_masked) == ("*******678", "*******789")
    assert first.call_id == "sip-*******678-abc"  # the caller's number embedded in a Call-ID
    assert first.caller_source == "from-header"
    assert (middle.caller_masked, middle.code_masked, middle.outcome) == ("-", "-", "no_caller_id")
    assert (latest.caller_masked, latest.code_masked) == ("-", "****")
    dumped = " ".join(dump_database(store))
    assert "912345678" not in dumped.replace(PHONE, "")  # only in the accounts table
    with store.engine.connect() as conn:
        audit_text = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM audit_log")) for v in row
        )
    assert CODE not in audit_text and "912345678" not in audit_text


def test_record_takes_enum_members_by_value(store: SqlAccountStore) -> None:
    store.record(
        call_id="c",
        phone=None,
        code=None,
        outcome=Outcome.MISMATCH,
        caller_source=CallerSource.PAI,
    )
    (entry,) = store.audit_rows(1)
    assert (entry.outcome, entry.caller_source) == ("mismatch", "p-asserted-identity")


def test_record_requires_an_outcome(store: SqlAccountStore) -> None:
    with pytest.raises(StoreError):
        store.record(call_id="c", phone=None, code=None, outcome=" ", caller_source="none")


def test_audit_rows_newest_first_with_limit(store: SqlAccountStore) -> None:
    for n in range(5):
        store.record(
            call_id=f"c{n}", phone=None, code=None, outcome="hung_up", caller_source="none"
        )
    assert [e.call_id for e in store.audit_rows(3)] == ["c4", "c3", "c2"]
    with pytest.raises(StoreError):
        store.audit_rows(0)


# --------------------------------------------------------------------------------------------
# check_password()
# --------------------------------------------------------------------------------------------


def test_check_password_unknown_or_unset(store: SqlAccountStore) -> None:
    assert store.check_password("5555555555", "12345678") is False
    assert store.check_password(CODE, "12345678") is False  # no password issued yet
    assert store.check_password("junk", "12345678") is False


def test_check_password_same_statements_known_or_unknown(store: SqlAccountStore) -> None:
    log = StatementLog(store)
    try:
        store.check_password(CODE, "1")
        known = log.take()
        store.check_password("5555555555", "1")
        unknown = log.take()
    finally:
        log.close()
    assert known == unknown


def test_check_password_with_a_corrupt_hash_is_a_store_error(store: SqlAccountStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE accounts SET password_hash = 'plain' WHERE code = :c"), {"c": CODE}
        )
    with pytest.raises(StoreError) as info:
        store.check_password(CODE, "12345678")
    assert info.value.code == "store_error"
    assert CODE not in str(info.value)


# --------------------------------------------------------------------------------------------
# Locked database
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_locked_database_is_store_locked_and_loses_nothing(
    db_path: Path, journal_mode: str
) -> None:
    url = f"sqlite:///{db_path}"
    with SqlAccountStore(url, scrypt_params=FAST, limits=LENIENT) as setup:
        setup.create_schema()
        setup.add_account(CODE, PHONE)
        old = setup.reset_password(PHONE, CODE, call_id="c1", caller_source="none")
    assert old is not None
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute(f"PRAGMA journal_mode={journal_mode}")
    store = SqlAccountStore(url, busy_timeout=0.05, scrypt_params=FAST, limits=LENIENT)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError) as info:
                store.reset_password(PHONE, CODE, call_id="c2", caller_source="none")
            assert info.value.code == "store_locked"
            assert CODE not in str(info.value) and PHONE not in str(info.value)
            # the audit row of a call that ends now is kept, not lost, and not raised
            store.record(call_id="c3", phone=PHONE, code=CODE, outcome="x", caller_source="none")
            assert store.pending_audit_rows() == 1
        finally:
            locker.execute("ROLLBACK")
        # nothing lost, nothing half-done: the issued password still works, one audit row
        assert store.check_password(CODE, old)
        assert store.must_change(CODE) is True
        assert [e.call_id for e in store.audit_rows(10)] == ["c1"]
        # and once the lock is gone the same call works, and the kept row is written
        new = store.reset_password(PHONE, CODE, call_id="c2", caller_source="none")
        assert new is not None
        assert store.check_password(CODE, new)
        store.record(call_id="c4", phone=None, code=None, outcome="x", caller_source="none")
        assert store.pending_audit_rows() == 0
        assert [e.call_id for e in store.audit_rows(10)] == ["c4", "c3", "c2", "c1"]
    finally:
        store.close()
        locker.close()


# --------------------------------------------------------------------------------------------
# Health, error wrapping
# --------------------------------------------------------------------------------------------


def test_health_counts(store: SqlAccountStore) -> None:
    store.record(call_id="c", phone=None, code=None, outcome="hung_up", caller_source="none")
    info = store.health()
    assert info["ok"] is True
    assert info["accounts"] == 2
    assert info["audit_rows"] == 1


def test_health_without_schema(db_url: str) -> None:
    with SqlAccountStore(db_url) as s:
        info = s.health()
        assert info["ok"] is False
        assert info["error"] == "store_unavailable"
        assert "init-db" in str(info["message"])
        with pytest.raises(StoreError) as exc_info:
            s.matches(PHONE, CODE)
        assert exc_info.value.code == "store_unavailable"


def test_health_unreachable_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        SqlAccountStore(f"sqlite:///{blocker}/sub/db.sqlite3")
    assert info.value.code == "store_unavailable"
    directory = tmp_path / "a_directory"
    directory.mkdir()
    with SqlAccountStore(f"sqlite:///{directory}") as s:  # a directory is no database
        health = s.health()
    assert health["ok"] is False
    assert health["error"] == "store_unavailable"


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            sa_exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked")),
            "store_locked",
        ),
        (
            sa_exc.OperationalError("UPDATE", {}, _PgError("canceling statement", "55P03")),
            "store_locked",
        ),
        (
            sa_exc.IntegrityError(
                "INSERT",
                {"code": CODE},
                _PgError(
                    'duplicate key value violates unique constraint "uq_accounts_code"\n'
                    f"DETAIL:  Key (code)=({CODE}) already exists.",
                    "23505",
                ),
            ),
            "store_duplicate",
        ),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError(f"bad {CODE}")), "store_error"),
        (
            sa_exc.OperationalError(
                "SELECT", {}, sqlite3.OperationalError("unable to open database file")
            ),
            "store_unavailable",
        ),
        (sa_exc.ProgrammingError("SELECT", {}, _PgError(f"odd {PHONE}", "42000")), "store_error"),
    ],
)
def test_error_wrapping_codes_and_masking(error: sa_exc.SQLAlchemyError, code: str) -> None:
    wrapped = _wrap(error, "doing something")
    assert wrapped.code == code
    assert CODE not in str(wrapped) and PHONE not in str(wrapped)
    assert "\n" not in wrapped.message


# --------------------------------------------------------------------------------------------
# CSV import
# --------------------------------------------------------------------------------------------


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_text(content, encoding=encoding)
    return path


def test_import_csv_reports_bad_rows_with_line_numbers(
    store: SqlAccountStore, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path / "accounts.csv",
        "code,phone\n"  # line 1
        "4801357924,0358246813\n"  # 2 good
        "12345,0358246813\n"  # 3 bad code
        "1111111111,12345\n"  # 4 bad phone
        "\n"  # 5 blank: skipped
        "2222222222,+84 912 000 111\n"  # 6 good
        "4801357924,0358246813\n"  # 7 duplicate of line 2
        f"{CODE},{PHONE}\n"  # 8 already in the database
        "333333333,abc\n"  # 9 bad code and bad phone
        '"4444444444","0912 000 222"\n',  # 10 good, quoted
    )
    report = store.import_csv(csv_file)
    assert report.rows == 8
    assert report.added == 3
    assert not report.ok
    lines = {p.line: p.reason for p in report.problems}
    assert sorted(lines) == [3, 4, 7, 8, 9]
    assert lines[3].startswith("bad code")
    assert lines[4].startswith("bad phone")
    assert "duplicate" in lines[7] and "line 2" in lines[7]
    assert "already registered" in lines[8]
    assert "bad code" in lines[9] and "bad phone" in lines[9]
    for reason in lines.values():
        assert "4801357924" not in reason and CODE not in reason
    assert str(report.problems[0]).startswith("line 3: ")
    assert store.matches("0358246813", "4801357924")
    assert store.matches("0912000111", "2222222222")
    assert store.matches("0912000222", "4444444444")
    assert not store.matches("12345", "1111111111")


def test_import_csv_vietnamese_header_bom_and_semicolons(
    store: SqlAccountStore, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path / "excel.csv",
        "\ufeffSo_dien_thoai;Ma_so_BHXH;ho_ten\r\n0358246813;4801357924;Nguyễn Văn A\r\n",
    )
    report = store.import_csv(csv_file)
    assert (report.rows, report.added, report.ok) == (1, 1, True)
    assert store.matches("0358246813", "4801357924")


def test_import_csv_all_good(store: SqlAccountStore, tmp_path: Path) -> None:
    rows = "".join(f"{5000000000 + n},09{n:08d}\n" for n in range(1200))  # several IN chunks
    report = store.import_csv(write(tmp_path / "many.csv", "code,phone\n" + rows))
    assert (report.added, report.ok) == (1200, True)
    again = store.import_csv(tmp_path / "many.csv")
    assert again.added == 0
    assert len(again.problems) == 1200
    assert store.health()["accounts"] == 1202


def test_import_csv_short_row(store: SqlAccountStore, tmp_path: Path) -> None:
    report = store.import_csv(write(tmp_path / "short.csv", "code,phone\n4801357924\n"))
    assert [(p.line, p.reason.split(":")[0]) for p in report.problems] == [(2, "bad phone")]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("name,number\n0123456789,0912345678\n", "header"),
        ("0123456789,0912345678\n", "header"),
        ("", "empty"),
        ("\n\n", "empty"),
    ],
)
def test_import_csv_unreadable(
    store: SqlAccountStore, tmp_path: Path, content: str, fragment: str
) -> None:
    with pytest.raises(CsvImportError) as info:
        store.import_csv(write(tmp_path / "bad.csv", content))
    assert info.value.code == "csv_unreadable"
    assert fragment in info.value.message
    assert CODE not in str(info.value)


def test_import_csv_missing_or_binary_file(store: SqlAccountStore, tmp_path: Path) -> None:
    with pytest.raises(CsvImportError):
        store.import_csv(tmp_path / "missing.csv")
    binary = tmp_path / "utf16.csv"
    binary.write_bytes("code,phone\n".encode("utf-16"))
    with pytest.raises(CsvImportError) as info:
        store.import_csv(binary)
    assert "UTF-8" in info.value.message


# --------------------------------------------------------------------------------------------
# Passwords
# --------------------------------------------------------------------------------------------


def test_generate_password() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert all(len(p) == 8 and p.isdigit() and p.isascii() for p in passwords)
    assert len(passwords) > 45
    assert len(generate_password(6)) == 6
    for bad in (5, 0, -1, 33):
        with pytest.raises(ConfigError):
            generate_password(bad)


def test_hash_format_and_verify() -> None:
    stored = hash_password("12345678")
    scheme, params, salt, key = stored.split("$")
    assert (scheme, params) == ("scrypt", "n=16384,r=8,p=5")  # an OWASP scrypt minimum
    assert len(salt) == 24 and len(key) == 44  # base64 of 16 and 32 bytes
    assert "12345678" not in stored
    assert verify_password("12345678", stored)
    assert not verify_password("12345679", stored)
    assert not verify_password("", stored)
    assert hash_password("12345678") != stored  # fresh salt each time


def test_hash_parameters_travel_with_the_hash() -> None:
    stronger = ScryptParams(n=2**15, r=8, p=1)
    weak = hash_password("12345678", FAST)
    assert weak.startswith("scrypt$n=64,r=8,p=1$")
    assert verify_password("12345678", weak)  # verified with its own parameters
    assert needs_rehash(weak) and not needs_rehash(hash_password("1", DEFAULT_PARAMS))
    assert needs_rehash(weak, stronger)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text",
        "bcrypt$x$y$z",
        "scrypt$n=16384,r=8,p=1$!!!$AAAA",
        "scrypt$n=1000,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n not a power of 2
        "scrypt$n=67108864,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # absurd cost
        "scrypt$n=16384,r=8,p=1$AAAA$" + "A" * 44,  # salt too short
    ],
)
def test_malformed_hash(stored: str) -> None:
    with pytest.raises(HashFormatError):
        verify_password("12345678", stored)


def test_scrypt_params_validation() -> None:
    for kwargs in ({"n": 1000}, {"n": 1}, {"r": 0}, {"p": 0}, {"n": 2**21}):
        with pytest.raises(ConfigError):
            ScryptParams(**kwargs)


def test_import_csv_unterminated_quote_spoils_only_its_line(
    store: SqlAccountStore, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path / "quote.csv",
        "code,phone\n"  # 1
        "4801357924,0358246813\n"  # 2 good
        '"2222222222,0912000111\n'  # 3 unterminated quote
        "3333333333,0912000333\n"  # 4 good: still read
        '4444444444,"0912 000 444"x\n'  # 5 junk after a quote
        "5555555555,0912000555\n",  # 6 good
    )
    report = store.import_csv(csv_file)
    assert (report.rows, report.added) == (5, 3)
    assert [(p.line, p.reason.startswith("malformed CSV row")) for p in report.problems] == [
        (3, True),
        (5, True),
    ]
    assert "2222222222" not in str(report.problems[0])
    for code, phone in (("4801357924", "0358246813"), ("3333333333", "0912000333")):
        assert store.matches(phone, code)
    assert store.matches("0912000555", "5555555555")
    assert not store.matches("0912000111", "2222222222")


def test_audit_rows_survive_a_database_that_is_down_at_close(tmp_path: Path) -> None:
    """A call ends while the database refuses writes until the box stops: its row goes to the
    spool file, and the next store on that database writes it with its first audit row."""
    db = tmp_path / "spool.sqlite3"
    url = f"sqlite:///{db}"
    with SqlAccountStore(url, scrypt_params=FAST) as setup:
        setup.create_schema()
    locker = sqlite3.connect(db, isolation_level=None)
    store = SqlAccountStore(url, busy_timeout=0.05, scrypt_params=FAST)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        store.record(
            call_id="down", phone=PHONE, code=CODE, outcome="hung_up", caller_source="none"
        )
        assert store.pending_audit_rows() == 1
        store.close()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    spool = Path(f"{db}.audit-spool.jsonl")
    assert spool.exists()
    text_ = spool.read_text()
    assert CODE not in text_ and PHONE not in text_ and "*******789" in text_
    with SqlAccountStore(url, scrypt_params=FAST) as later:
        later.record(call_id="next", phone=None, code=None, outcome="gave_up", caller_source="none")
        assert [e.call_id for e in later.audit_rows(10)] == ["next", "down"]
    assert not spool.exists()
