"""A log and report scan over 1,000 simulated calls finds no code, password or phone number.

Typed calls (the text channel) through the real runtime, dialog and SQLite store, with every
logger at DEBUG: right codes, wrong codes, codes spoken as words, withheld numbers, silence,
hang-ups, brute force and spraying (so the limits and the throttled path are in the mix).
Scanned: every log record, every call summary as JSON (turns included), the audit trail and
the operators' throttle listing. Not scanned: what the caller hears (it must hold the
password and the read-back).
"""

from __future__ import annotations

import io
import json
import logging
import random
from pathlib import Path

import pytest

from assistant.accounts.passwords import ScryptParams
from assistant.accounts.store import SqlAccountStore
from assistant.call.channels.text import TextChannel
from assistant.call.wiring import Box, cli_caller
from assistant.core.ports import LookupVerdict

FAST = ScryptParams(n=2**4, r=8, p=1)
CALLS = 1000
WORDS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]


class RecordingStore(SqlAccountStore):
    """The real store, remembering the passwords it issued (to look for them afterwards)."""

    issued: list[str]

    def reset_password(self, phone: str, code: str, **kwargs: object) -> str | None:
        password = super().reset_password(phone, code, **kwargs)  # type: ignore[arg-type]
        if password is not None:
            self.issued.append(password)
        return password


def test_no_secret_in_logs_or_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(12)
    accounts = [(f"{4000000000 + 7919 * k}", f"09{rng.randrange(10**8):08d}") for k in range(120)]
    strangers = [f"03{rng.randrange(10**8):08d}" for _ in range(60)]
    store = RecordingStore(f"sqlite:///{tmp_path / 'scan.sqlite3'}", scrypt_params=FAST)
    store.issued = []
    store.create_schema()
    for code, phone in accounts:
        store.add_account(code, phone)
    box = Box(store=store)
    summaries: list[str] = []
    outcomes: dict[str, int] = {}
    caplog.set_level(logging.DEBUG)
    for n in range(CALLS):
        code, phone = rng.choice(accounts)
        kind = rng.choice(
            ["right", "right_words", "wrong", "stranger", "withheld", "silent", "hang"]
        )
        caller: str | None = phone
        if kind == "stranger":
            caller = rng.choice(strangers)
        elif kind == "withheld":
            caller = None
        entered = code if kind != "wrong" else f"{rng.randrange(10**10):010d}"
        said = " ".join(WORDS[int(d)] for d in entered) if kind == "right_words" else f"#{entered}"
        lines = {"silent": ["", "", "", ""], "hang": [said]}.get(kind, [said, "đúng", "không"])
        script = io.StringIO("\n".join(lines) + "\n")

        def channel(_session: object, s: io.StringIO = script) -> TextChannel:
            return TextChannel(box.prompts, s, io.StringIO(), interactive=False)

        summary, _ = box.run_call(channel, caller=cli_caller(caller))
        outcomes[summary.outcome or "none"] = outcomes.get(summary.outcome or "none", 0) + 1
        summaries.append(json.dumps(summary.as_dict(), ensure_ascii=False))
        # a throttled lookup must answer the same for a known and an unknown code
        if n % 97 == 0:
            assert store.lookup("0399999999", entered) in (
                LookupVerdict.MISMATCH,
                LookupVerdict.THROTTLED,
            )

    throttles = [repr(e) for e in store.throttles(include_all=True)]
    audit = [repr(e) for e in store.audit_rows(10 * CALLS)]
    store.close()
    assert len(audit) == CALLS  # exactly one audit row per call
    assert {
        "password_issued",
        "mismatch",
        "throttled",
        "no_caller_id",
        "gave_up",
        "hung_up",
    } <= set(outcomes), outcomes
    assert store.issued

    secrets = {c for c, _ in accounts} | {p for _, p in accounts} | set(strangers)
    secrets |= {p[1:] for _, p in accounts} | {p[1:] for p in strangers}  # without the 0
    secrets |= set(store.issued)
    logs = [f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records]
    assert len(logs) > CALLS
    for name, texts in (
        ("logs", logs),
        ("summaries", summaries),
        ("audit", audit),
        ("throttles", throttles),
    ):
        blob = "\n".join(texts)
        leaked = sorted(s for s in secrets if s in blob)
        assert not leaked, f"{name} hold {len(leaked)} secret(s)"
    # digits spoken as words are masked in the summaries' turns too
    spoken_code = " ".join(WORDS[int(d)] for d in accounts[0][0])
    assert spoken_code not in "\n".join(summaries)
