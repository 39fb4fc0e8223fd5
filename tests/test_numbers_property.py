"""Property tests: random codes read the ways people read them come back exactly.

The renderer below writes correct Vietnamese for each group of digits: one by one, pairs
("mười hai", "ba mươi tư", "hai mốt", "không năm"), triples ("một trăm linh năm", "hai trăm",
"không trăm mười hai", colloquial "hai trăm tư"), with the variants lăm/nhăm/tư/mốt/linh/lẻ/bẩy
and fillers. A group that ends "open" (…mười, …mươi, …trăm, or trăm + one digit word) would
swallow the next group's first digit, as it would for a listener, so it is always followed by a
pause; people pause there, and the reader needs the recogniser's punctuation to see it.
"""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.core.paths import PROJECT_ROOT
from assistant.language.numbers import NumberReader, YesNo

READER = NumberReader.load(PROJECT_ROOT / "data" / "numbers.toml")

WORD = dict(enumerate(["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]))

Draw = st.DrawFn


def digit(draw: Draw, d: int) -> str:
    """A digit said on its own."""
    return draw(st.sampled_from(["bảy", "bẩy"])) if d == 7 else WORD[d]


def unit(draw: Draw, u: int, ten: int) -> str:
    """Units digit 1-9 after mười (ten == 1) or "X mươi" / contracted "X" (ten >= 2)."""
    choices = {
        1: ["một"] if ten == 1 else ["mốt", "một"],
        4: ["bốn", "tư"],
        5: ["lăm", "nhăm"],
        7: ["bảy", "bẩy"],
    }.get(u, [WORD[u]])
    return draw(st.sampled_from(choices))


def after_linh(draw: Draw, u: int) -> str:
    """Units digit after linh / lẻ ("một trăm linh năm", "linh tư")."""
    return draw(st.sampled_from({4: ["bốn", "tư"], 7: ["bảy", "bẩy"]}.get(u, [WORD[u]])))


def render_pair(draw: Draw, a: int, b: int) -> tuple[str, bool]:
    """Two digits; returns (text, open)."""
    styles = ["digits"]  # "không năm", "một hai"
    if a == 1:
        styles += ["ten", "ten"]
    if a >= 2:
        styles += ["tens", "tens"]
        if b:
            styles.append("contracted")
    style = draw(st.sampled_from(styles))
    if style == "ten":
        return ("mười " + unit(draw, b, 1) if b else "mười"), b == 0
    if style == "tens":
        head = f"{digit(draw, a)} mươi"
        return (f"{head} {unit(draw, b, a)}" if b else head), b == 0
    if style == "contracted":  # "hai mốt", "ba lăm", "ba tư"
        return f"{digit(draw, a)} {unit(draw, b, a)}", False
    return f"{digit(draw, a)} {digit(draw, b)}", False


def render_triple(draw: Draw, a: int, b: int, c: int) -> tuple[str, bool]:
    """Three digits; returns (text, open)."""
    if (a, b, c) == (0, 0, 0) or draw(st.integers(0, 3)) == 0:
        return " ".join(digit(draw, d) for d in (a, b, c)), False
    head = f"{digit(draw, a)} trăm"
    if b == 0 and c == 0:  # "hai trăm"
        return head, True
    if b == 0:  # "một trăm linh năm", "một trăm không năm"
        zero = draw(st.sampled_from(["linh", "lẻ", "không"]))
        return f"{head} {zero} {after_linh(draw, c)}", False
    if b == 1 and c:  # "một trăm mười lăm"
        return f"{head} mười {unit(draw, c, 1)}", False
    if b == 1:  # "một trăm mười", colloquial "một trăm mốt"
        return f"{head} {draw(st.sampled_from(['mười', 'mốt']))}", True
    if c:  # "một trăm hai mươi mốt", contracted "một trăm hai mốt"
        tens = draw(st.sampled_from([f"{digit(draw, b)} mươi", digit(draw, b)]))
        return f"{head} {tens} {unit(draw, c, b)}", False
    # "hai trăm ba mươi", colloquial "hai trăm tư" (not for 50: that is "rưỡi", unsupported)
    colloquial = {4: draw(st.sampled_from(["tư", "bốn"]))}.get(b, digit(draw, b))
    choices = [f"{digit(draw, b)} mươi"] + ([colloquial] if b != 5 else [])
    return f"{head} {draw(st.sampled_from(choices))}", True


CLOSED_SEPARATORS = [" ", " ", ", ", " , ", ". ", " ... ", " dạ ", ", à, ", " à ", " - ", " ờ "]
OPEN_SEPARATORS = [", ", ". ", " ... ", ", dạ, ", " - ", ", à, "]
PREFIXES = ["", "", "dạ ", "mã số của tôi là ", "dạ mã số của tôi là ", "à ", "vâng, ",
            "mã số bảo hiểm xã hội của tôi là "]  # fmt: skip
SUFFIXES = ["", "", " ạ", ".", " đó ạ", " nhé"]


@st.composite
def spoken_code(draw: Draw) -> tuple[str, str]:
    """(code, text): a random 10-digit code read in random groups and styles."""
    # zeros and ones twice as often: they make the interesting forms (linh, mười, mốt)
    code = "".join(draw(st.lists(st.sampled_from("001123456789"), min_size=10, max_size=10)))
    sizes: list[int] = []
    while sum(sizes) < 10:
        left = 10 - sum(sizes)
        sizes.append(draw(st.sampled_from([n for n in (1, 2, 2, 3, 3, 3, 4) if n <= left])))
    parts: list[str] = [draw(st.sampled_from(PREFIXES))]
    i = 0
    is_open = False
    for n, size in enumerate(sizes):
        group = [int(ch) for ch in code[i : i + size]]
        i += size
        if n:
            parts.append(draw(st.sampled_from(OPEN_SEPARATORS if is_open else CLOSED_SEPARATORS)))
        if size == 2:
            text, is_open = render_pair(draw, *group)
        elif size == 3:
            text, is_open = render_triple(draw, *group)
        else:
            text, is_open = " ".join(digit(draw, d) for d in group), False
        parts.append(text)
    parts.append(draw(st.sampled_from(SUFFIXES)))
    text = "".join(parts)
    if draw(st.booleans()):
        text = unicodedata.normalize("NFD", text)
    case = draw(st.sampled_from(["same", "capital", "upper"]))
    text = text.capitalize() if case == "capital" else text.upper() if case == "upper" else text
    return code, text


@settings(max_examples=400, deadline=None)
@given(spoken_code())
def test_spoken_codes_come_back_exactly(case: tuple[str, str]) -> None:
    code, text = case
    r = READER.read_digits(text)
    assert (r.digits, r.restart, r.unknown, r.fuzzy) == (code, False, (), ()), text


def strip_marks(text: str) -> str:
    """What a recogniser that writes no tone or vowel marks gives."""
    nfd = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in nfd if not unicodedata.combining(ch))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.digits, min_size=10, max_size=10), st.data())
def test_toneless_digit_by_digit_codes(code: str, data: st.DataObject) -> None:
    words = [data.draw(st.sampled_from(["bảy", "bẩy"])) if d == "7" else WORD[int(d)] for d in code]
    text = strip_marks(" ".join(words))
    assert READER.read_digits(text).digits == code, text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.digits, min_size=2, max_size=10), st.data())
def test_restart_keeps_only_what_follows(code: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(code)))
    before, after = code[:cut], code[cut:]
    phrase = data.draw(st.sampled_from(["đọc lại từ đầu", "làm lại", "bắt đầu lại", "xoá"]))
    text = " ".join([*(WORD[int(d)] for d in before), phrase, *(WORD[int(d)] for d in after)])
    r = READER.read_digits(text)
    assert (r.digits, r.restart, r.usable) == (after, True, True)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789*#", max_size=20))
def test_keypad(keys: str) -> None:
    r = READER.keypad_digits(keys)
    tail = keys.rsplit("*", 1)[-1]
    assert (r.digits, r.restart) == (tail.replace("#", ""), "*" in keys)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_read_safely(text: str) -> None:
    r = READER.read_digits(text)
    assert set(r.digits) <= set(string.digits)
    assert r.usable == (bool(r.digits) or r.restart)
    assert READER.read_yesno(text) in (YesNo.YES, YesNo.NO, None)


ANSWERS = [
    (YesNo.YES, "đúng"), (YesNo.YES, "đúng rồi"), (YesNo.YES, "chính xác"),
    (YesNo.YES, "phải rồi"), (YesNo.YES, "có"), (YesNo.YES, "đúng vậy"),
    (YesNo.NO, "không"), (YesNo.NO, "không phải"), (YesNo.NO, "sai rồi"),
    (YesNo.NO, "chưa đúng"), (YesNo.NO, "nhầm rồi"), (YesNo.NO, "không đúng"),
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", "dạ ", "vâng ", "ừ ", "dạ vâng, "]),
    st.sampled_from(ANSWERS),
    st.sampled_from(["", " ạ", " em ơi", ", cảm ơn", "."]),
    st.sampled_from(["same", "upper", "nfd", "toneless"]),
)
def test_yes_no_with_politeness_and_noise(
    polite: str, answer: tuple[YesNo, str], tail: str, noise: str
) -> None:
    expected, words = answer
    text = polite + words + tail
    if noise == "upper":
        text = text.upper()
    elif noise == "nfd":
        text = unicodedata.normalize("NFD", text)
    elif noise == "toneless":
        text = strip_marks(text)
    assert READER.read_yesno(text) is expected, text


@pytest.mark.parametrize(("a", "b"), [("đúng", "sai"), ("có", "không"), ("phải", "chưa")])
def test_contradictions_in_either_order(a: str, b: str) -> None:
    assert READER.read_yesno(f"dạ {a}, {b}") is None
    assert READER.read_yesno(f"{b} ... {a} ạ") is None
