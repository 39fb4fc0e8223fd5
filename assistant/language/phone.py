"""Vietnamese phone numbers and social-insurance codes: normalise and mask.

National form of a phone number: ``"0"`` followed by the national significant number (NSN):

* mobiles: 9 digits after the 0 (``09x``, ``08x``, ``07x``, ``05x``, ``03x`` since the 2018
  renumbering): ``0912345678``;
* landlines: 10 digits after the 0, the area code starting with 2 (``024`` Hà Nội, ``028`` TP
  HCM... since 2017): ``02438251234``.

Accepted spellings: ``+84``, ``0084``, ``84`` (country code) or ``0`` (trunk) prefixes, a missing
trunk 0, a ``(0)`` after the country code, and spaces, dots, dashes, slashes and parentheses as
separators. A bare ``84...`` is read as the country code only when the length says so (11 or 12
digits in all): ``841234567`` (9 digits) is the mobile ``0841234567``.

The social-insurance code (mã số BHXH) is exactly 10 digits.
"""

from __future__ import annotations

import re

from assistant.core.errors import AssistantError

__all__ = [
    "CODE_LENGTH",
    "CodeError",
    "PhoneError",
    "mask_code",
    "mask_digits",
    "mask_phone",
    "normalize_code",
    "normalize_phone",
]

CODE_LENGTH = 10

_SEPARATORS = re.compile(r"[\s.\-/()\u00a0]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
_MOBILE_NSN = 9
_LANDLINE_NSN = 10
_NSN_LENGTHS = (_MOBILE_NSN, _LANDLINE_NSN)


class PhoneError(AssistantError, ValueError):
    """Not a Vietnamese phone number. The message never repeats the number."""

    code = "phone_invalid"


class CodeError(AssistantError, ValueError):
    """Not a 10-digit social-insurance code. The message never repeats the code."""

    code = "code_invalid"


def _check_nsn(nsn: str) -> str:
    """``nsn`` (digits after the trunk 0) as the national form, or PhoneError."""
    if not nsn or nsn[0] == "0":
        raise PhoneError("not a Vietnamese phone number (unexpected 0 after the prefix)")
    if len(nsn) == _MOBILE_NSN:
        return "0" + nsn
    if len(nsn) == _LANDLINE_NSN:
        if nsn[0] != "2":
            raise PhoneError(
                "not a Vietnamese phone number (10 digits after the 0 but not a 02x landline; "
                "old 01xx mobile numbers were renumbered in 2018)"
            )
        return "0" + nsn
    raise PhoneError(
        f"not a Vietnamese phone number ({len(nsn)} digits after the 0, "
        "expected 9 for a mobile or 10 for a landline)"
    )


def normalize_phone(raw: str) -> str:
    """``raw`` in national form ``0XXXXXXXXX`` (mobile) or ``02XXXXXXXXX`` (landline).

    Raises :class:`PhoneError` (a ``ValueError``, code ``phone_invalid``) for anything else.
    """
    if not isinstance(raw, str):
        raise PhoneError(f"phone number must be text, not {type(raw).__name__}")
    text = _SEPARATORS.sub("", raw)
    international = text.startswith("+")
    if international:
        text = text[1:]
    if not text:
        raise PhoneError("empty phone number")
    if _ASCII_DIGITS.fullmatch(text) is None:
        raise PhoneError("phone number has characters other than digits and separators")

    if international:
        if not text.startswith("84"):
            raise PhoneError("not a Vietnamese phone number (country code is not +84)")
        rest = text[2:]
    elif text.startswith("0084"):
        rest = text[4:]
    elif text.startswith("00"):
        raise PhoneError("not a Vietnamese phone number (international prefix, not 0084)")
    elif text.startswith("0"):
        return _check_nsn(text[1:])
    elif text.startswith("84") and (
        len(text) - 2 in _NSN_LENGTHS or (text[2] == "0" and len(text) - 3 in _NSN_LENGTHS)
    ):
        rest = text[2:]  # the length says country code: 84 912 345 678, 84 (0) 912 345 678
    else:
        return _check_nsn(text)  # trunk 0 missing: 912345678
    if rest.startswith("0") and len(rest) - 1 in _NSN_LENGTHS:
        rest = rest[1:]  # +84 (0) 912 345 678
    return _check_nsn(rest)


def normalize_code(raw: str) -> str:
    """A social-insurance code: exactly 10 ASCII digits once spaces, dots and dashes are removed.

    Raises :class:`CodeError` (a ``ValueError``, code ``code_invalid``); the message gives the
    number of digits found, never the digits.
    """
    if not isinstance(raw, str):
        raise CodeError(f"social-insurance code must be text, not {type(raw).__name__}")
    text = _SEPARATORS.sub("", raw)
    if not text:
        raise CodeError("empty social-insurance code")
    if _ASCII_DIGITS.fullmatch(text) is None:
        raise CodeError("social-insurance code has characters other than digits")
    if len(text) != CODE_LENGTH:
        hint = " (a leading 0 lost by a spreadsheet?)" if len(text) == CODE_LENGTH - 1 else ""
        raise CodeError(
            f"social-insurance code must have {CODE_LENGTH} digits, not {len(text)}{hint}"
        )
    return text


def mask_digits(value: str | None, keep: int = 3) -> str:
    """The digits of ``value`` with all but the last ``keep`` replaced by ``*``.

    ``None`` or a value without digits gives ``"-"``; fewer than 7 digits are masked entirely
    (showing 3 of 4 digits would show nearly everything).
    """
    if value is None:
        return "-"
    digits = _NON_DIGITS.sub("", value)
    if not digits:
        return "-"
    if len(digits) < 7:
        return "*" * len(digits)
    return "*" * (len(digits) - keep) + digits[-keep:]


def mask_phone(phone: str | None) -> str:
    """``"*******678"``: the national form (when valid) with only its last 3 digits shown."""
    if phone is None:
        return "-"
    try:
        return mask_digits(normalize_phone(phone))
    except PhoneError:
        return mask_digits(phone)


def mask_code(code: str | None) -> str:
    """``"*******789"``: a social-insurance code with only its last 3 digits shown."""
    return mask_digits(code)
