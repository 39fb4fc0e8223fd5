"""Operator commands: ``init-db``, ``accounts add|import|check|audit|throttles|unthrottle``
and ``health``.

:func:`register` adds them to the main parser's sub-commands; each sets ``func`` (``args -> exit
code``). Every command takes ``--db URL`` (default :func:`assistant.accounts.store.default_db_url`,
read when the command runs). Failures print one line ``error [code]: message`` on stderr and exit 2.
Output masks codes and phones, except the demo accounts of ``init-db --demo`` (made up, printed in
full so that a newcomer can try a call at once).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from assistant.accounts.store import PasswordCheck, SqlAccountStore, default_db_url
from assistant.core.errors import AssistantError
from assistant.language.phone import mask_code, mask_phone

__all__ = ["DEMO_ACCOUNTS", "add_demo_accounts", "register"]

#: ``(code, phone)`` of the demo accounts (fictitious).
DEMO_ACCOUNTS: tuple[tuple[str, str], ...] = (
    ("0123456789", "0912345678"),
    ("7912345680", "0987654321"),
    ("4801357924", "0358246813"),
)

_FROM_STDIN = "-"
_Subparsers = argparse._SubParsersAction  # argparse has no public name for it


def register(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``init-db``, ``accounts ...`` and ``health`` to ``subparsers``."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="SQLAlchemy database URL (default: sqlite:/// + $VSSID_DB, "
        "else var/vssid.sqlite3 under the current directory)",
    )

    init = subparsers.add_parser(
        "init-db", parents=[db], help="create the database tables (and demo accounts)"
    )
    init.add_argument(
        "--demo", action="store_true", help="also add three demo accounts (idempotent)"
    )
    init.set_defaults(func=cmd_init_db)

    accounts = subparsers.add_parser("accounts", help="manage accounts, read the audit trail")
    acc = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    add = acc.add_parser("add", parents=[db], help="register a code to a phone number")
    add.add_argument("--code", required=True, help="10-digit social-insurance code")
    add.add_argument("--phone", required=True, help="registered phone number")
    add.set_defaults(func=cmd_add)

    imp = acc.add_parser(
        "import",
        parents=[db],
        help="add accounts from a CSV file with header code,phone (or ma_so_bhxh,so_dien_thoai)",
        description="Bad rows are listed on stderr with their line numbers; good rows are "
        "added. Exit 0: all rows added, 1: some rows rejected, 2: file unreadable.",
    )
    imp.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV file")
    imp.set_defaults(func=cmd_import)

    check = acc.add_parser(
        "check",
        parents=[db],
        help="check a password as a login would (exit 0: valid, 1: not valid, 3: valid but a "
        "temporary password that must be changed now)",
        description="Stands in for the VssID login: the first use of an issued password makes "
        "it the account's password (the old one stops working then) and a change is due "
        "(exit 3); the old password, used first, voids the issued one.",
    )
    check.add_argument("--code", required=True, help="10-digit social-insurance code")
    check.add_argument(
        "--password",
        required=True,
        help="the password to check; '-' reads it from stdin (keeps it out of shell history)",
    )
    check.set_defaults(func=cmd_check)

    audit = acc.add_parser("audit", parents=[db], help="print the audit trail, newest first")
    audit.add_argument(
        "--limit", type=_positive_int, default=50, metavar="N", help="rows (default 50)"
    )
    audit.set_defaults(func=cmd_audit)

    throttles = acc.add_parser(
        "throttles",
        parents=[db],
        help="list the numbers and codes at their limit (masked, keyed hashes)",
    )
    throttles.add_argument(
        "--all", action="store_true", help="every counter in the window, not only those at limit"
    )
    throttles.set_defaults(func=cmd_throttles)

    unthrottle = acc.add_parser(
        "unthrottle", parents=[db], help="clear the limits of one number or one code"
    )
    which = unthrottle.add_mutually_exclusive_group(required=True)
    which.add_argument("--phone", help="clear this number's lookups and issued passwords")
    which.add_argument("--code", help="clear this code's lookups and its account's passwords")
    unthrottle.set_defaults(func=cmd_unthrottle)

    health = subparsers.add_parser(
        "health",
        parents=[db],
        help="print database health as JSON (exit 1 when the database is not usable)",
    )
    health.set_defaults(func=cmd_health)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def add_demo_accounts(store: SqlAccountStore, *, out: TextIO) -> None:
    """Add :data:`DEMO_ACCOUNTS` where missing and print them in full (they are made up)."""
    print("Demo accounts (call from the phone number, then read the code):", file=out)
    for code, phone in DEMO_ACCOUNTS:
        added = store.add_account(code, phone, exist_ok=True)
        state = "added" if added else "already present"
        print(f"  phone {phone}  code {code}  ({state})", file=out)


def cmd_init_db(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        store.create_schema()
        print(f"database ready: {store.url}")
        if args.demo:
            add_demo_accounts(store, out=sys.stdout)
        return 0

    return _with_store(args, run)


def cmd_add(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        store.add_account(args.code, args.phone)
        print(f"added account {mask_code(args.code)} (phone {mask_phone(args.phone)})")
        return 0

    return _with_store(args, run)


def cmd_import(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        report = store.import_csv(args.file)
        for problem in report.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print(
            f"{report.added} account(s) added, {len(report.problems)} row(s) rejected "
            f"of {report.rows}"
        )
        return 0 if report.ok else 1

    return _with_store(args, run)


def cmd_check(args: argparse.Namespace) -> int:
    password: str = args.password
    if args.password == _FROM_STDIN:
        password = sys.stdin.readline().strip()

    def run(store: SqlAccountStore) -> int:
        masked = mask_code(args.code)
        result = store.verify(args.code, password)
        if result is PasswordCheck.VALID:
            print(f"password valid for account {masked}")
            return 0
        if result is PasswordCheck.CHANGE_DUE:
            print(
                f"password valid for account {masked}, but it is a temporary password: "
                "a change is due now (must_change)"
            )
            return 3
        print(f"password not valid for account {masked} (or no such account)")
        return 1

    return _with_store(args, run)


def cmd_audit(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        entries = store.audit_rows(args.limit)
        if not entries:
            print("(no audit rows)")
            return 0
        print(
            f"{'at (UTC)':<29} {'outcome':<16} {'caller':<12} {'code':<12} {'source':<20} "
            f"{'peer':<10} call"
        )
        for e in entries:
            print(
                f"{e.at:<29} {e.outcome:<16} {e.caller_masked:<12} {e.code_masked:<12} "
                f"{e.caller_source:<20} {e.peer_class:<10} {e.call_id}"
            )
        return 0

    return _with_store(args, run)


def cmd_throttles(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        entries = store.throttles(include_all=args.all)
        if not entries:
            print("(no throttles)" if not args.all else "(no counters in the window)")
            return 0
        print(
            f"{'kind':<14} {'hint':<12} {'key':<13} {'count':>5} {'limit':>5} "
            f"{'throttled':<9} {'last (UTC)':<20} until (UTC)"
        )
        for e in entries:
            print(
                f"{e.kind:<14} {e.hint:<12} {e.key:<13} {e.count:>5} {e.limit:>5} "
                f"{'yes' if e.throttled else 'no':<9} {e.last_at:%Y-%m-%d %H:%M:%S} "
                f"{e.until:%Y-%m-%d %H:%M:%S}"
            )
        return 0

    return _with_store(args, run)


def cmd_unthrottle(args: argparse.Namespace) -> int:
    def run(store: SqlAccountStore) -> int:
        cleared = store.unthrottle(phone=args.phone, code=args.code)
        what = f"number {mask_phone(args.phone)}" if args.phone else f"code {mask_code(args.code)}"
        print(f"cleared {cleared} counted attempt(s) of {what}")
        return 0

    return _with_store(args, run)


def cmd_health(args: argparse.Namespace) -> int:
    try:
        store = SqlAccountStore(_db_url(args))
    except AssistantError as error:
        info: dict[str, object] = {"ok": False, "error": error.code, "message": error.message}
    else:
        try:
            info = store.health()
        finally:
            store.close()
    print(json.dumps(info, ensure_ascii=False))
    if not info["ok"]:
        print(f"error [{info['error']}]: {info['message']}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _db_url(args: argparse.Namespace) -> str:
    url = getattr(args, "db", None)
    return str(url) if url else default_db_url()


def _with_store(args: argparse.Namespace, body: Callable[[SqlAccountStore], int]) -> int:
    """Open the store named by ``--db``, run ``body``, close; AssistantError: one line, exit 2."""
    try:
        store = SqlAccountStore(_db_url(args))
        try:
            return body(store)
        finally:
            store.close()
    except AssistantError as error:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
