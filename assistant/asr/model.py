"""The acoustic model shipped inside the pinned viet-asr wheel, read at run time.

``vietasr/_native/libvietasr.so`` (viet-asr 0.1.0.dev11, Apache-2.0) exports the ONNX graph and
its token table as data symbols: ``vietasr_asr_model_onnx`` with ``vietasr_asr_model_onnx_size``
and ``vietasr_asr_vocab`` with ``vietasr_asr_vocab_size``. We open the library with ctypes (cffi
cannot read non-integer data symbols), copy both out, close the library again and check SHA-256
digests so that a changed package fails loudly instead of decoding with a different model.
Nothing is written to disk; the extracted bytes are cached in memory per library file for as
long as someone holds them (the recogniser drops them once its onnxruntime session is built).
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import importlib.metadata
import importlib.util
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.errors import RecognizerError

PINNED_PACKAGE = "viet-asr"
PINNED_VERSION = "0.1.0.dev11"
PINNED = f"{PINNED_PACKAGE}=={PINNED_VERSION}"
#: SHA-256 of the ONNX bytes and of the token table in viet-asr 0.1.0.dev11.
MODEL_SHA256 = "b34e699e5557f87741c6fca80246267268922c9d57045602da6fdf77039f0057"
VOCAB_SHA256 = "7b15d985d06e3c942f131f96e39b29a7170a9871f9800e794eb6e002940f9716"
#: Output classes of the model (the token table has a few more entries, never emitted).
NUM_CLASSES = 4968
BLANK_ID = 0
#: Environment variable naming another copy of the library (tests, unusual installs).
LIBRARY_ENV = "VSSID_VIETASR_LIBRARY"

_MODEL_SYMBOL = "vietasr_asr_model_onnx"
_VOCAB_SYMBOL = "vietasr_asr_vocab"


@dataclass(frozen=True, eq=False)
class ModelData:
    """The ONNX bytes and the token table (``tokens[i]`` is the piece of class ``i``)."""

    onnx: bytes = field(repr=False)
    tokens: tuple[str, ...] = field(repr=False)
    library: Path
    sha256: str

    def __repr__(self) -> str:
        return (
            f"ModelData(library={str(self.library)!r}, sha256={self.sha256[:12]}..., "
            f"{len(self.onnx)} bytes, {len(self.tokens)} tokens)"
        )


def installed_version() -> str | None:
    """The installed viet-asr version, or ``None`` when the distribution is not installed."""
    try:
        return importlib.metadata.version(PINNED_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_path() -> Path:
    """Where ``libvietasr.so`` is: ``$VSSID_VIETASR_LIBRARY``, else inside the installed package.

    The package is located without importing it (importing ``vietasr`` loads its own
    onnxruntime copy globally).
    """
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return Path(env)
    try:
        spec = importlib.util.find_spec("vietasr")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise RecognizerError(
            f"the speech model package is not installed: pip install {PINNED}",
            code="asr_model_missing",
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_native" / "libvietasr.so"
        if candidate.is_file():
            return candidate
    raise RecognizerError(
        f"libvietasr.so not found in the installed vietasr package; reinstall {PINNED}",
        code="asr_model_missing",
    )


def _file_span(address: int, size: int, library: Path) -> int | None:
    """The file offset of ``[address, address + size)`` when one mapping of ``library`` holds it."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or Path(parts[5]) != library:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if start <= address and address + size <= end:
            return address - start + int(parts[2], 16)
    return None


def _read_symbol(lib: ctypes.CDLL, name: str, library: Path) -> bytes:
    size = ctypes.c_ulong.in_dll(lib, name + "_size").value
    address = ctypes.addressof(ctypes.c_ubyte.in_dll(lib, name))
    offset = _file_span(address, size, library)
    if offset is None:  # not one plain file mapping: copy from memory
        return ctypes.string_at(address, size)
    # Read the same bytes from the file rather than through the mapping, so that the
    # library's 70 MB of pages do not stay resident in this process.
    with library.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    return data if len(data) == size else ctypes.string_at(address, size)


def extract(library: Path) -> tuple[bytes, bytes]:
    """Copy the ONNX bytes and the token table out of ``library`` (no checks)."""
    if not library.is_file():
        raise RecognizerError(
            f"speech model library {library} is missing; reinstall {PINNED}",
            code="asr_model_missing",
        )
    try:
        lib = ctypes.CDLL(str(library), mode=os.RTLD_LOCAL)
    except OSError as exc:
        raise RecognizerError(
            f"cannot load speech model library {library}: {exc}", code="asr_model_missing"
        ) from exc
    try:
        return _read_symbol(lib, _MODEL_SYMBOL, library), _read_symbol(lib, _VOCAB_SYMBOL, library)
    except ValueError as exc:  # ctypes: symbol not found
        raise RecognizerError(
            f"{library} does not export the expected model symbols ({exc}); "
            f"this engine needs {PINNED} (installed: {installed_version() or 'none'})",
            code="asr_model_changed",
        ) from exc
    finally:
        # The library stays mapped (it is marked non-unloadable), but its pages were not read.
        _ctypes.dlclose(lib._handle)


def parse_tokens(table: bytes) -> tuple[str, ...]:
    """Parse the ``piece id`` lines into a tuple indexed by id."""
    pieces: dict[int, str] = {}
    for number, line in enumerate(table.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        piece, sep, index = line.rpartition(" ")
        if not sep or not index.isdigit():
            raise RecognizerError(f"malformed token table line {number}", code="asr_model_changed")
        pieces[int(index)] = piece
    if sorted(pieces) != list(range(len(pieces))) or len(pieces) < NUM_CLASSES:
        raise RecognizerError("token table ids are not 0..N-1", code="asr_model_changed")
    return tuple(pieces[i] for i in range(len(pieces)))


def _check(what: str, data: bytes, expected: str, library: Path) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise RecognizerError(
            f"the {what} inside {library} is not the one this recogniser was built for: "
            f"SHA-256 {digest[:16]}... instead of {expected[:16]}... "
            f"(pinned {PINNED}, installed: {installed_version() or 'unknown'}); "
            f"reinstall {PINNED} or select another recogniser engine",
            code="asr_model_changed",
        )
    return digest


_cache: weakref.WeakValueDictionary[tuple[str, int, int, str, str], ModelData] = (
    weakref.WeakValueDictionary()
)
_cache_lock = threading.Lock()


def load_model(
    library: Path | None = None,
    *,
    model_sha256: str = MODEL_SHA256,
    vocab_sha256: str = VOCAB_SHA256,
) -> ModelData:
    """The checked model data, extracted once per library file and cached while it is in use.

    Raises :class:`RecognizerError` ``asr_model_missing`` (no package/library) or
    ``asr_model_changed`` (symbols missing, digest mismatch, malformed table).
    """
    path = (library or library_path()).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise RecognizerError(
            f"speech model library {path} is missing; reinstall {PINNED}",
            code="asr_model_missing",
        ) from exc
    key = (str(path), stat.st_size, stat.st_mtime_ns, model_sha256, vocab_sha256)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        onnx, table = extract(path)
        digest = _check("acoustic model", onnx, model_sha256, path)
        _check("token table", table, vocab_sha256, path)
        data = ModelData(onnx=onnx, tokens=parse_tokens(table), library=path, sha256=digest)
        _cache[key] = data
        return data
