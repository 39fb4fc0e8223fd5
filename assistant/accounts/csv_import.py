"""Reading an operator's account CSV (``accounts import``): rows, problems and the report."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.core.errors import AssistantError


class CsvImportError(AssistantError):
    """The CSV file cannot be read at all (missing, not UTF-8, no ``code,phone`` header)."""

    code = "csv_unreadable"


@dataclass(frozen=True)
class ImportProblem:
    """A rejected CSV row: its line number in the file and why (masked values only)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What :meth:`SqlAccountStore.import_csv` did: ``added`` accounts, ``problems`` per row."""

    rows: int = 0
    added: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_CODE_HEADERS = ("code", "ma_so_bhxh")
_PHONE_HEADERS = ("phone", "so_dien_thoai")


def _header_index(header: Sequence[str], names: Sequence[str]) -> int | None:
    cleaned = [h.strip().lower().lstrip("\ufeff") for h in header]
    for name in names:
        if name in cleaned:
            return cleaned.index(name)
    return None


def _read_csv(
    path: str | os.PathLike[str],
) -> tuple[list[tuple[int, str, str]], list[ImportProblem]]:
    """``(line number, code, phone)`` per non-blank data row, and the rows that could not be
    parsed (an unterminated quote...), each with its line number. Every physical line is one
    record (codes and phones never span lines), so a bad quote spoils its own line only and
    the rows after it are still read. CsvImportError when the file is unreadable."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            content = handle.read()
    except OSError as error:
        raise CsvImportError(f"cannot read {name}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CsvImportError(
            f"cannot read {name}: not UTF-8 text (byte {error.start}); save it as CSV UTF-8"
        ) from None
    lines = content.split("\n")
    first_line = lines[0]
    delimiter = ","
    if "," not in first_line:
        delimiter = ";" if ";" in first_line else ("\t" if "\t" in first_line else ",")
    code_col = phone_col = None
    rows: list[tuple[int, str, str]] = []
    problems: list[ImportProblem] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error as error:
            if code_col is None:
                raise CsvImportError(
                    f"{name}: line {number}: malformed CSV header ({error})"
                ) from None
            problems.append(ImportProblem(number, f"malformed CSV row ({error})"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if code_col is None or phone_col is None:
            code_col = _header_index(row, _CODE_HEADERS)
            phone_col = _header_index(row, _PHONE_HEADERS)
            if code_col is None or phone_col is None:
                raise CsvImportError(
                    f"{name}: line {number} must be the header code,phone "
                    "(or ma_so_bhxh,so_dien_thoai)"
                )
            continue
        width = max(code_col, phone_col) + 1
        cells = row + [""] * (width - len(row))
        rows.append((number, cells[code_col], cells[phone_col]))
    if code_col is None:
        raise CsvImportError(f"{name}: empty file (expected the header code,phone)")
    return rows, problems
