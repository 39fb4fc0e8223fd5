"""Phone numbers and social-insurance codes: normalisation and masking."""

from __future__ import annotations

import pytest

from assistant.core.errors import AssistantError
from assistant.language.phone import (
    CodeError,
    PhoneError,
    mask_code,
    mask_digits,
    mask_phone,
    normalize_code,
    normalize_phone,
)

VALID = [
    # mobiles: 9 digits after the trunk 0
    ("0912345678", "0912345678"),
    ("0912 345 678", "0912345678"),
    ("0912.345.678", "0912345678"),
    ("0912-345-678", "0912345678"),
    ("(091) 234-5678", "0912345678"),
    ("  0912345678\t", "0912345678"),
    ("0912\u00a0345\u00a0678", "0912345678"),  # no-break spaces from a spreadsheet
    ("+84912345678", "0912345678"),
    ("+84 912 345 678", "0912345678"),
    ("+84 (0) 912 345 678", "0912345678"),
    ("+840912345678", "0912345678"),
    ("0084912345678", "0912345678"),
    ("0084 91 234 5678", "0912345678"),
    ("84912345678", "0912345678"),  # bare 84 + 9 digits: 11 digits, the country code
    ("84 987 654 321", "0987654321"),
    ("840912345678", "0912345678"),
    ("912345678", "0912345678"),  # trunk 0 left out
    ("0358246813", "0358246813"),
    ("0701234567", "0701234567"),
    ("0561234567", "0561234567"),
    # a 9-digit bare number starting with 84 is the VinaPhone mobile 084..., not +84
    ("841234567", "0841234567"),
    ("0841234567", "0841234567"),
    # landlines: 02x area code, 10 digits after the 0
    ("02438251234", "02438251234"),
    ("(024) 3825 1234", "02438251234"),
    ("028.3829.1234", "02838291234"),
    ("+84 24 3825 1234", "02438251234"),
    ("+84 (0)24 3825 1234", "02438251234"),
    ("0084 28 3829 1234", "02838291234"),
    ("842438251234", "02438251234"),  # bare 84 + 10 digits: 12 digits, the country code
    ("2438251234", "02438251234"),  # trunk 0 left out
]

INVALID = [
    "",
    "   ",
    "abc",
    "0912345678x",
    "09123456ab",
    "0912_345_678",
    "+",
    "++84912345678",
    "+1 555 123 4567",  # another country
    "+33 1 23 45 67 89",
    "0033123456789",
    "091234567",  # 8 digits after the 0
    "09123456789",  # 10 digits after the 0, not a 02x landline
    "01681234567",  # pre-2018 11-digit mobile
    "024382512345",  # 11 digits after the 0
    "00912345678",  # double trunk 0
    "12345",
    "8412345678",  # 84 + 8 digits: too short for +84, and not a landline without its 0
    "+84 12345",
    "+840",
    "0",
    "\u0660\u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
    "０９１２３４５６７８",  # full-width digits
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_normalize_phone_accepts_vietnamese_spellings(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", INVALID)
def test_normalize_phone_rejects_junk_with_phone_invalid(raw: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalize_phone(raw)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, AssistantError)
    assert info.value.code == "phone_invalid"
    digits = "".join(c for c in raw if c.isdigit())
    if len(digits) >= 7:
        assert digits not in str(info.value)


def test_normalize_phone_is_idempotent() -> None:
    for raw, expected in VALID:
        assert normalize_phone(normalize_phone(raw)) == expected


def test_normalize_phone_rejects_non_text() -> None:
    with pytest.raises(PhoneError):
        normalize_phone(912345678)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0123456789", "0123456789"), ("0123 456 789", "0123456789"), ("01-2345-6789", "0123456789")],
)
def test_normalize_code(raw: str, expected: str) -> None:
    assert normalize_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("012345678", "leading 0"),  # 9 digits: the hint about spreadsheets
        ("01234567890", "not 11"),
        ("01234x6789", "other than digits"),
        ("\u0660123456789", "other than digits"),
    ],
)
def test_normalize_code_rejects(raw: str, fragment: str) -> None:
    with pytest.raises(CodeError) as info:
        normalize_code(raw)
    assert info.value.code == "code_invalid"
    assert isinstance(info.value, ValueError)
    assert fragment in info.value.message
    assert raw.strip() == "" or raw not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "*******678"),
        ("+84 912 345 678", "*******678"),  # masked in national form
        ("02438251234", "********234"),
        (None, "-"),
        ("", "-"),
        ("anonymous", "-"),
        ("12345", "*****"),  # too short to show anything
        ("0912-345-67x", "******567"),  # invalid: the digits it has, masked
    ],
)
def test_mask_phone(raw: str | None, expected: str) -> None:
    assert mask_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0123456789", "*******789"),
        ("0123 456 789", "*******789"),
        (None, "-"),
        ("", "-"),
        ("0123", "****"),
        ("0123456", "****456"),
    ],
)
def test_mask_code(raw: str | None, expected: str) -> None:
    assert mask_code(raw) == expected


def test_mask_digits_keeps_only_the_tail() -> None:
    assert mask_digits("1234567890", keep=3) == "*******890"
    assert mask_digits("1234567890", keep=2) == "********90"
