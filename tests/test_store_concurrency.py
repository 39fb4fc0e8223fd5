"""Several boxes on one database: concurrent resets of one account, on SQLite and PostgreSQL.

Each "box" is its own :class:`SqlAccountStore` (its own engine and connection pool); in the
process test each box is a separate Python process, as in production. Whatever the
interleaving, every reset that returned a password wrote its audit row, and exactly one of the
passwords handed out (the last one committed) is valid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from assistant.accounts.limits import LimitSettings
from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore
from assistant.core.errors import ThrottledError

CODE = "4801357924"
PHONE = "0912345678"
OTHER_CODE = "7912345680"
OTHER_PHONE = "0987654321"
FAST = ScryptParams(n=2**6, r=8, p=1)
ROOT = Path(__file__).resolve().parents[1]


def _prepared(db_url: str) -> SqlAccountStore:
    store = SqlAccountStore(db_url, scrypt_params=FAST, limits=LENIENT)
    store.create_schema()
    store.add_account(CODE, PHONE)
    store.add_account(OTHER_CODE, OTHER_PHONE)
    return store


# The race itself is what these tests are about; the limits across calls (one issued password
# per account a day by default) have their own tests, and one below races under them.
LENIENT = LimitSettings(
    phone_lookups=1000, phone_issues=1000, code_lookups=1000, account_issues=1000
)


def test_two_boxes_racing_under_the_default_limits_issue_one_password(db_url: str) -> None:
    admin = _prepared(db_url)
    boxes = [SqlAccountStore(db_url, scrypt_params=FAST) for _ in range(2)]  # default limits
    start = threading.Barrier(2)

    def reset(box: int) -> str | None:
        start.wait(timeout=10)
        try:
            return boxes[box].reset_password(
                PHONE, CODE, call_id=f"box{box}", caller_source="p-asserted-identity"
            )
        except ThrottledError:
            return None

    try:
        with ThreadPoolExecutor(2) as pool:
            issued = [p for p in pool.map(reset, [0, 1]) if p is not None]
        assert len(issued) == 1
        assert admin.check_password(CODE, issued[0])
        assert [r.outcome for r in admin.audit_rows(10)] == ["password_issued"]
    finally:
        for box in boxes:
            box.close()
        admin.close()


def test_two_boxes_reset_one_account_at_the_same_moment(db_url: str) -> None:
    admin = _prepared(db_url)
    boxes = [SqlAccountStore(db_url, scrypt_params=FAST, limits=LENIENT) for _ in range(2)]
    rounds = 6
    try:
        for n in range(rounds):
            start = threading.Barrier(2)

            def reset(box: int, n: int = n, start: threading.Barrier = start) -> str | None:
                start.wait(timeout=10)
                return boxes[box].reset_password(
                    PHONE, CODE, call_id=f"box{box}-call{n}", caller_source="p-asserted-identity"
                )

            with ThreadPoolExecutor(2) as pool:
                issued = list(pool.map(reset, [0, 1]))
            assert all(p is not None for p in issued)
            valid = [p for p in issued if p is not None and admin.check_password(CODE, p)]
            assert len(valid) == 1, f"round {n}: {len(valid)} valid passwords"
        rows = admin.audit_rows(1000)
        assert sorted(r.call_id for r in rows) == sorted(
            f"box{b}-call{n}" for b in range(2) for n in range(rounds)
        )
        assert {r.outcome for r in rows} == {"password_issued"}
        assert admin.must_change(CODE) is True
        assert admin.must_change(OTHER_CODE) is False  # the other account was not touched
    finally:
        for box in boxes:
            box.close()
        admin.close()


_BOX_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from assistant.accounts.limits import LimitSettings
from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore

url, name, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = SqlAccountStore(url, scrypt_params=ScryptParams(n=2**6, r=8, p=1), limits=LimitSettings(
    phone_lookups=1000, phone_issues=1000, code_lookups=1000, account_issues=1000))
store.health()
print("ready", flush=True)
deadline = time.monotonic() + 30
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
issued = []
for n in range(rounds):
    issued.append(store.reset_password(
        "0912345678", "4801357924", call_id=f"{name}-call{n}", caller_source="p-asserted-identity"
    ))
    store.record(call_id=f"{name}-other{n}", phone="0987654321", code="7912345680",
                 outcome="mismatch", caller_source="from-header")
store.close()
print(json.dumps(issued))
"""


def test_two_box_processes_reset_one_account(db_url: str, tmp_path: Path) -> None:
    admin = _prepared(db_url)
    go = tmp_path / "go"
    rounds = 15
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BOX_SCRIPT, db_url, name, str(rounds), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for name in ("boxA", "boxB")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", (
                proc.stderr.read() if proc.stderr else ""
            )
        go.write_text("go")
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    issued = [p for out in outputs for p in out]
    assert len(issued) == 2 * rounds and all(p is not None for p in issued)
    assert sum(admin.check_password(CODE, p) for p in issued) == 1
    rows = admin.audit_rows(1000)
    expected = {
        f"{b}-{kind}{n}"
        for b in ("boxA", "boxB")
        for kind in ("call", "other")
        for n in range(rounds)
    }
    assert sorted(r.call_id for r in rows) == sorted(expected)
    by_id = {r.call_id: r for r in rows}
    assert all(by_id[f"boxA-call{n}"].outcome == "password_issued" for n in range(rounds))
    assert all(by_id[f"boxB-other{n}"].outcome == "mismatch" for n in range(rounds))
    admin.close()
