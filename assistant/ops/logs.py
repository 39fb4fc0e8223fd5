"""Logs for machines: one JSON object a line, with the call id, numbers masked.

:class:`JsonLogFormatter` writes ``{"ts", "level", "logger", "msg"[, "call_id"][, "exc"]}``.
The call id comes from the record (``extra={"call_id": ...}``), else from :data:`call_id_var`
(set by the box for the thread that runs a call, see :func:`call_context`), else from a box
call id (``sip-`` and 10 hex digits) named in the message. Whatever the message says, every run
of six or more digits (optionally spaced or after ``+``: phone numbers, codes, passwords) is
masked to its last three digits before it is written, in the message and in tracebacks alike;
so a careless log call cannot put a caller's number or a code into the log.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["JsonLogFormatter", "call_context", "call_id_var", "mask_numbers", "use_json_logs"]

#: The call the current thread (or task) works for; None outside calls.
call_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "vssid_call_id", default=None
)
_CALL_ID = re.compile(r"\bsip-[0-9a-f]{10}\b")
_NUMBER = re.compile(r"\+?\d(?:[ ]?\d){5,}")


def _mask(match: re.Match[str]) -> str:
    digits = [c for c in match.group() if c.isdigit()]
    return "*" * (len(digits) - 3) + "".join(digits[-3:])


def mask_numbers(text: str) -> str:
    """``text`` with every run of 6+ digits (spaces allowed between them) masked, box call
    ids left as they are."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group())
        return f"\x00{len(kept) - 1}\x00"

    protected = _CALL_ID.sub(keep, text)
    masked = _NUMBER.sub(_mask, protected)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], masked)


@contextlib.contextmanager
def call_context(call_id: str) -> Iterator[None]:
    """Log records made inside carry ``call_id``."""
    token = call_id_var.set(call_id)
    try:
        yield
    finally:
        call_id_var.reset(token)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record, on one line (no newlines inside: they are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        call_id = getattr(record, "call_id", None) or call_id_var.get()
        if not call_id:
            found = _CALL_ID.search(message)
            call_id = found.group() if found else None
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_numbers(message),
        }
        if call_id:
            entry["call_id"] = mask_numbers(str(call_id))
        if record.exc_info and record.exc_info[0] is not None:
            kind, value, tb = record.exc_info
            entry["exc"] = {
                "type": kind.__name__,
                "trace": mask_numbers("".join(traceback.format_exception(kind, value, tb))),
            }
        return json.dumps(entry, ensure_ascii=False)


def use_json_logs(logger: logging.Logger | None = None) -> None:
    """Give every handler of ``logger`` (default: the root logger) the JSON formatter."""
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        handler.setFormatter(JsonLogFormatter())
