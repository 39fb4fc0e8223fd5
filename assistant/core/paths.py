"""Where the box finds its data files (prompt texts, word tables) and models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from assistant.core.errors import DataFileError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$VSSID_DATA_DIR``, else ``data/`` of a source checkout, else the installed copy."""
    candidates = []
    env = os.environ.get("VSSID_DATA_DIR")
    if env:
        candidates.append(Path(env))
    candidates += [PROJECT_ROOT / "data", Path(sys.prefix) / "share" / "vssid-assistant" / "data"]
    for path in candidates:
        if (path / "prompts.toml").is_file():
            return path
    raise DataFileError(
        "data files not found (looked in " + ", ".join(str(p) for p in candidates) + ")",
        code="data_missing",
    )


def data_file(name: str) -> Path:
    path = data_dir() / name
    if not path.is_file():
        raise DataFileError(
            f"data file {name!r} is missing from {path.parent}", code="data_missing"
        )
    return path


def models_dir() -> Path:
    """``$VSSID_MODELS_DIR``, else ``asr_models/`` of the checkout."""
    env = os.environ.get("VSSID_MODELS_DIR")
    return Path(env) if env else PROJECT_ROOT / "asr_models"


def shared_corpus_dir() -> Path | None:
    """``../shared/corpus/real_vi_dev`` beside the checkout, when present."""
    env = os.environ.get("VSSID_CORPUS_DIR")
    path = Path(env) if env else PROJECT_ROOT.parent / "shared" / "corpus" / "real_vi_dev"
    return path if path.is_dir() else None


def voices_dir() -> Path:
    """``$VSSID_VOICES_DIR``, else ``voices/`` of a source checkout, else the installed copy."""
    env = os.environ.get("VSSID_VOICES_DIR")
    if env:
        return Path(env)
    local = PROJECT_ROOT / "voices"
    if local.is_dir():
        return local
    return Path(sys.prefix) / "share" / "vssid-assistant" / "voices"
