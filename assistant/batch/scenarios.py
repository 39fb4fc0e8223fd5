"""Batch scenarios: a CSV file or a folder of scenario folders, checked before any call runs.

See :mod:`assistant.batch.runner` for the formats.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.audio.wav import read_wav, wav_info
from assistant.core.dialog import Outcome
from assistant.core.errors import AssistantError, ConfigError

OUTCOMES = tuple(o.value for o in Outcome)
CSV_REQUIRED = ("name", "caller", "turns", "expect")
SCENARIO_FILE = "scenario.json"


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why a scenario cannot run: a stable code and a message (no codes, no passwords)."""

    code: str
    message: str


@dataclass(frozen=True)
class Scenario:
    name: str
    caller: str | None
    turns: tuple[Path, ...]
    expect: str
    expect_digits: str | None = None
    problem: Problem | None = None


def _natural_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _check_expectations(
    expect: str, expect_digits: str | None
) -> tuple[str | None, Problem | None]:
    """The normalised expected digits, or the problem with the expectations."""
    if expect not in OUTCOMES:
        return None, Problem(
            "scenario_invalid", f"expect {expect!r} is not one of {', '.join(OUTCOMES)}"
        )
    if expect_digits is None or not expect_digits.strip():
        return None, None
    digits = re.sub(r"[\s.\-]", "", expect_digits)
    if not digits.isdigit():
        return None, Problem("scenario_invalid", "expect_digits must hold digits only")
    return digits, None


def load_csv(path: Path) -> list[Scenario]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_REQUIRED if c not in header]
            if missing:
                raise ConfigError(
                    f"{path}: missing column(s) {', '.join(missing)} (header must be "
                    "name,caller,turns,expect[,expect_digits])",
                    code="scenarios_invalid",
                )
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(
            f"cannot read scenario file {path}: {exc}", code="scenarios_invalid"
        ) from exc
    base = path.parent
    out: list[Scenario] = []
    for line, row in enumerate(rows, start=2):
        name = row.get("name", "")
        if name.startswith("#"):
            continue
        name = name or f"line {line}"
        turns = tuple(base / t.strip() for t in row.get("turns", "").split(";") if t.strip())
        expect = row.get("expect", "")
        digits, problem = _check_expectations(expect, row.get("expect_digits"))
        out.append(Scenario(name, row.get("caller") or None, turns, expect, digits, problem))
    return out


def load_folder(path: Path) -> list[Scenario]:
    out: list[Scenario] = []
    for sub in sorted((p for p in path.iterdir() if p.is_dir()), key=_natural_key):
        if sub.name.startswith((".", "_")):
            continue
        turns = tuple(
            sorted(
                (p for p in sub.iterdir() if p.is_file() and p.suffix.lower() == ".wav"),
                key=_natural_key,
            )
        )
        meta_path = sub / SCENARIO_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            bad = Problem("scenario_invalid", f"{sub.name}/{SCENARIO_FILE}: {exc}")
            out.append(Scenario(sub.name, None, turns, "", None, bad))
            continue
        caller = meta.get("caller")
        expect = meta.get("expect")
        digits_raw = meta.get("expect_digits")
        if (
            not (caller is None or isinstance(caller, str | int))
            or not isinstance(expect, str)
            or not (digits_raw is None or isinstance(digits_raw, str | int))
        ):
            bad = Problem(
                "scenario_invalid",
                f"{sub.name}/{SCENARIO_FILE}: caller and "
                "expect_digits must be strings or null, expect a string",
            )
            out.append(Scenario(sub.name, None, turns, str(expect or ""), None, bad))
            continue
        digits, problem = _check_expectations(
            expect, None if digits_raw is None else str(digits_raw)
        )
        number = str(caller).strip() if caller is not None else ""
        out.append(Scenario(sub.name, number or None, turns, expect, digits, problem))
    return out


def load_scenarios(path: Path) -> list[Scenario]:
    """Scenarios from a CSV file or a folder; duplicate names are marked invalid."""
    if path.is_dir():
        scenarios = load_folder(path)
    elif path.is_file():
        scenarios = load_csv(path)
    else:
        raise ConfigError(
            f"scenarios {path} not found (a CSV file or a folder)", code="scenarios_missing"
        )
    if not scenarios:
        raise ConfigError(f"no scenarios in {path}", code="scenarios_empty")
    seen: set[str] = set()
    out: list[Scenario] = []
    for sc in scenarios:
        if sc.name in seen and sc.problem is None:
            out.append(
                Scenario(
                    sc.name,
                    sc.caller,
                    sc.turns,
                    sc.expect,
                    sc.expect_digits,
                    Problem("scenario_invalid", "duplicate scenario name"),
                )
            )
        else:
            out.append(sc)
        seen.add(sc.name)
    return out


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def validate_audio(scenario: Scenario, base: Path) -> tuple[float, Problem | None]:
    """Read every turn (at its own rate): total seconds, or the first file's problem."""
    total = 0.0
    for turn in scenario.turns:
        try:
            total += read_wav(turn, wav_info(turn).rate).duration
        except AssistantError as exc:
            return total, Problem(exc.code, f"{_shown(turn, base)}: {exc.message}")
    return total, None
