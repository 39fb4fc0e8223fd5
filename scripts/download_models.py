#!/usr/bin/env python3
"""Download a Vietnamese Vosk model into asr_models/ and check it.

    python scripts/download_models.py              # vosk-model-small-vn-0.4 (32 MB)
    python scripts/download_models.py --large      # vosk-model-vn-0.4 (78 MB)
    python scripts/download_models.py --check DIR  # only check a model directory

The archive comes from the official Vosk model site (https://alphacephei.com/vosk/models/), is
checked (zip CRCs, the size and MD5 published in the site's model list when known, a layout with
one top-level folder and no path escaping it), extracted beside the target and moved into place
only when the model's layout is complete (am/final.mdl, conf/mfcc.conf, graph/HCLG.fst or
graph/HCLr.fst + graph/Gr.fst; ivector/ optional). Its SHA-256 is printed so it can be recorded.

Exit codes: 0 the model is in place (or the checked directory is complete); 1 the archive or the
directory failed a check; 2 the download failed (no network: copy the model directory into
asr_models/ by hand) or the command line was wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from assistant.asr.vosk import (  # noqa: E402
    DEFAULT_MODEL,
    LARGE_MODEL,
    inspect_model_dir,
)
from assistant.core.paths import models_dir  # noqa: E402

BASE_URL = "https://alphacephei.com/vosk/models/"
CHUNK = 1 << 16
TIMEOUT_S = 30.0

EXIT_OK, EXIT_BAD, EXIT_DOWNLOAD = 0, 1, 2


@dataclass(frozen=True)
class Known:
    """What the Vosk site's model list (model-list.json) publishes for an archive."""

    size: int | None = None
    md5: str | None = None


#: From the official model-list.json (as mirrored in public repositories; the site itself cannot
#: be reached from our machines). The large model's figures were not found: only the zip CRCs
#: and the layout are checked for it.
KNOWN: dict[str, Known] = {
    DEFAULT_MODEL: Known(size=33_656_337, md5="b31b474a1ef75488c5fa575f8e2a1269"),
    LARGE_MODEL: Known(),
}

Opener = Callable[[str], BinaryIO]


class CheckFailed(Exception):
    """The archive or the directory is not a usable model (exit code 1)."""


class DownloadFailed(Exception):
    """The archive could not be fetched (exit code 2)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def default_opener(url: str) -> BinaryIO:
    if not url.startswith(("https://", "http://", "file://")):
        raise ValueError(f"unsupported URL scheme in {url}")
    response: BinaryIO = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (checked)
    return response


def download(url: str, dest: Path, opener: Opener = default_opener) -> tuple[int, str, str]:
    """Copy ``url`` to ``dest``; return (size, md5, sha256) of what was written."""
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    try:
        with opener(url) as response, dest.open("wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                md5.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason: object = exc
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
            reason = exc.reason  # "[Errno -3] Temporary failure in name resolution", ...
        raise DownloadFailed(f"cannot download {url}: {reason}") from exc
    return size, md5.hexdigest(), sha256.hexdigest()


def check_archive(archive: Path, name: str) -> list[str]:
    """Zip integrity and layout: every member under ``name/``, none escaping it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CheckFailed(f"{archive.name}: member {bad} is corrupt (CRC mismatch)")
            members = zf.namelist()
    except zipfile.BadZipFile as exc:
        raise CheckFailed(f"{archive.name} is not a valid zip archive: {exc}") from exc
    if not members:
        raise CheckFailed(f"{archive.name} is empty")
    for member in members:
        path = PurePosixPath(member)
        if path.is_absolute() or ".." in path.parts or "\\" in member:
            raise CheckFailed(f"{archive.name} has an unsafe member path: {member!r}")
        if path.parts[0] != name:
            raise CheckFailed(
                f"{archive.name} should hold one folder {name}/, but has {path.parts[0]!r}"
            )
    return members


def check_dir(path: Path) -> list[str]:
    """Problems of a model directory (empty: complete)."""
    return list(inspect_model_dir(path).problems)


def install(
    name: str,
    target_root: Path,
    *,
    base_url: str = BASE_URL,
    opener: Opener = default_opener,
    known: Known | None = None,
    force: bool = False,
) -> Path:
    """Download, check, extract and move ``name`` into ``target_root``; return its folder."""
    target = target_root / name
    if target.exists() and not force:
        problems = check_dir(target)
        if not problems:
            _say(f"{target} is already there and complete (use --force to fetch it again)")
            return target
        raise CheckFailed(
            f"{target} exists but is incomplete ({'; '.join(problems)}); "
            "remove it or run again with --force"
        )
    known = known if known is not None else KNOWN.get(name, Known())
    target_root.mkdir(parents=True, exist_ok=True)
    url = base_url.rstrip("/") + f"/{name}.zip"
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=target_root) as tmp:
        archive = Path(tmp) / f"{name}.zip"
        _say(f"downloading {url} ...")
        size, md5, sha256 = download(url, archive, opener)
        _say(f"{size} bytes, sha256 {sha256}")
        if known.size is not None and size != known.size:
            raise CheckFailed(f"{archive.name} has {size} bytes, the model list says {known.size}")
        if known.md5 is not None and md5 != known.md5:
            raise CheckFailed(f"{archive.name} has MD5 {md5}, the model list says {known.md5}")
        check_archive(archive, name)
        staging = Path(tmp) / "extracted"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)  # every member path was checked above
        problems = check_dir(staging / name)
        if problems:
            raise CheckFailed(f"the archive's model is incomplete: {'; '.join(problems)}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / name, target)
    _say(f"installed {target}")
    return target


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Download a Vietnamese Vosk model into asr_models/ and check it.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 the download failed or bad arguments.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--large", action="store_true", help=f"fetch {LARGE_MODEL}")
    which.add_argument("--name", help="fetch another model of the Vosk site by name")
    which.add_argument("--check", type=Path, metavar="DIR", help="only check a model directory")
    parser.add_argument(
        "--dest", type=Path, default=None, help="where models go (default: asr_models/)"
    )
    parser.add_argument("--base-url", default=BASE_URL, help="model site (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing model folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, opener: Opener = default_opener) -> int:
    args = parse_args(argv)
    if args.check is not None:
        problems = check_dir(args.check)
        if problems:
            _say(f"{args.check} is not a usable Vosk model: {'; '.join(problems)}")
            return EXIT_BAD
        print(f"{args.check} is a complete Vosk model")
        return EXIT_OK
    name = args.name or (LARGE_MODEL if args.large else DEFAULT_MODEL)
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        _say(f"not a model name: {name!r}")
        return EXIT_DOWNLOAD
    dest = args.dest if args.dest is not None else models_dir()
    try:
        install(name, dest, base_url=args.base_url, opener=opener, force=args.force)
    except DownloadFailed as exc:
        _say(f"{exc}; copy the model directory into {dest}/ by hand")
        return EXIT_DOWNLOAD
    except CheckFailed as exc:
        _say(f"check failed: {exc}")
        return EXIT_BAD
    except OSError as exc:
        _say(f"cannot write the model into {dest}: {exc}")
        return EXIT_BAD
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
