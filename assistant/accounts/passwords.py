"""One-time passwords read to the caller: generate, hash slowly, verify.

Passwords are digits only (they are read aloud and typed on a phone keypad), drawn with
:mod:`secrets`. Only a salted scrypt hash is stored, as
``scrypt$n=16384,r=8,p=5$<salt base64>$<hash base64>``: the cost parameters travel with each
hash, so they can be raised (:func:`needs_rehash`) without breaking stored ones.

Cost: the default is one of the OWASP Password Storage Cheat Sheet's scrypt minimums, which it
lists as equivalent: n=2**14, r=8, p=5 (16 MiB per hash). Issue 12 chose the first of that
list, n=2**17, r=8, p=1, but it needs 128 MiB per hash, and a box that answers ten calls in
400 MB (issue 11) cannot spend that; p=5 does the same work in an eighth of the memory.
``scripts/bench_reset.py`` prints what one hash and one whole reset cost on the box (measured
on the shared 2-core machine with the other core busy: 0.27 s a hash at n=2**14, p=5, 0.55 s at
n=2**17, p=1). Hashes made with other parameters (n=2**17, p=1, or the older n=2**14, p=1)
still verify and are rehashed at their next use. The box hashes new passwords ahead of time
(:mod:`assistant.accounts.mint`), so the cost is not on the caller's time. An 8-digit password
has only 10**8 values, so the hash slows an offline search down but cannot stop it: the
password is temporary (one use, 24 h, must change) and the database must stay private.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from assistant.core.errors import AssistantError, ConfigError

__all__ = [
    "DEFAULT_LENGTH",
    "DEFAULT_PARAMS",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "HashFormatError",
    "ScryptParams",
    "check_length",
    "generate_password",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

DEFAULT_LENGTH = 8
MIN_LENGTH = 6
MAX_LENGTH = 32  # read aloud digit by digit: longer makes no sense on a phone line

_SALT_BYTES = 16
_KEY_BYTES = 32
_SCHEME = "scrypt"
# Bounds on parameters read back from the database: a corrupted or hostile row must not make
# verification allocate gigabytes or run for minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 2**30
_FORMAT = re.compile(
    r"scrypt\$n=(?P<n>[0-9]{1,8}),r=(?P<r>[0-9]{1,3}),p=(?P<p>[0-9]{1,3})"
    r"\$(?P<salt>[A-Za-z0-9+/]+={0,2})\$(?P<key>[A-Za-z0-9+/]+={0,2})"
)


class HashFormatError(AssistantError):
    """A stored password hash is not in the ``scrypt$...`` format (the text is not repeated)."""

    code = "password_hash_invalid"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: ``n`` (CPU/memory, a power of 2), ``r`` (block size), ``p`` (parallelism)."""

    n: int = 2**14
    r: int = 8
    p: int = 5

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.n > _MAX_N:
            raise ConfigError(f"scrypt n must be a power of 2 between 2 and {_MAX_N}")
        if not 1 <= self.r <= _MAX_R or not 1 <= self.p <= _MAX_P:
            raise ConfigError(f"scrypt r must be in 1..{_MAX_R} and p in 1..{_MAX_P}")
        if self.memory > _MAX_MEMORY:
            raise ConfigError(f"scrypt parameters need more than {_MAX_MEMORY >> 20} MiB")

    @property
    def memory(self) -> int:
        """Bytes scrypt needs (128 * r * n, plus 128 * r * p for the parallel blocks)."""
        return 128 * self.r * (self.n + self.p)

    def encode(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"


DEFAULT_PARAMS = ScryptParams()


def check_length(length: int) -> int:
    """``length`` if it is a usable password length, else :class:`ConfigError`."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise ConfigError("password length must be an integer")
    if length < MIN_LENGTH:
        raise ConfigError(f"password length must be at least {MIN_LENGTH} digits, not {length}")
    if length > MAX_LENGTH:
        raise ConfigError(f"password length must be at most {MAX_LENGTH} digits, not {length}")
    return length


def generate_password(length: int = DEFAULT_LENGTH) -> str:
    """A new password of ``length`` random digits (``secrets``, uniform, leading 0 allowed)."""
    check_length(length)
    return "".join(secrets.choice("0123456789") for _ in range(length))


def _scrypt(password: str, salt: bytes, params: ScryptParams, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.memory + 2**20,
        dklen=dklen,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """``scrypt$n=..,r=..,p=..$salt$hash`` for ``password`` with a fresh random 16-byte salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, params, _KEY_BYTES)
    return f"{_SCHEME}${params.encode()}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes]:
    match = _FORMAT.fullmatch(stored)
    if match is None:
        raise HashFormatError("stored password hash is not in the scrypt$n=..,r=..,p=.. format")
    try:
        params = ScryptParams(int(match["n"]), int(match["r"]), int(match["p"]))
        salt = base64.b64decode(match["salt"], validate=True)
        key = base64.b64decode(match["key"], validate=True)
    except (ConfigError, binascii.Error) as exc:
        raise HashFormatError(f"stored password hash has invalid parts ({exc})") from None
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        raise HashFormatError("stored password hash has a salt or key of the wrong size")
    return params, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (constant-time comparison of the keys).

    Raises :class:`HashFormatError` when ``stored`` is not a hash this module wrote.
    """
    params, salt, key = _parse(stored)
    candidate = _scrypt(password, salt, params, len(key))
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """Whether ``stored`` was made with other parameters than ``params`` (hash it again)."""
    old, _, _ = _parse(stored)
    return old != params
