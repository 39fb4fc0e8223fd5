"""Vietnamese digits, grouped numbers and yes/no answers, read from recogniser text or keys.

It is long because normalising, lexing and grouping are one algorithm over the same tables,
documented with its ambiguous cases.

The word tables live in ``data/numbers.toml``; this module is the algorithm:

1. **Normalise**: Unicode NFC, lower case, and a canonical key per word in which the tone mark
   is kept apart from the letters, so NFD text, old/new tone placement ("xoá"/"xóa") and
   mark order do not matter. Punctuation (``, . ; - …``) is a *pause*.
2. **Tokenise** into words, numerals and pauses. Numerals are taken as written ("0123-456" is
   0123456; a one-digit numeral behaves like a digit word).
3. **Look up** each position, in this order: the longest phrase of the mode's tables (exact);
   a longer phrase of two or more words whose words were heard with no marks at all and have
   its letters ("lam lai" = "làm lại", "khong phai" = "không phải"); a known recogniser
   confusion with different letters (``[digits.aliases]``: "vậy" = bảy, "hôm" = không); a
   fuzzy match (rapidfuzz, see below); a word heard with no marks at all that has the letters
   of a one-word table entry, đ read as d ("dung" = đúng, "toi" = tôi); else an unknown word.
4. **Group** (digits only): a small pass over the digit tokens of each pause-separated segment
   turns "mười lăm", "hai mươi mốt", "một trăm linh năm" into their digits; everything else is
   read digit by digit, so contractions ("hai mốt" 21, "ba lăm" 35, "ba tư" 34) need no rule.

Fuzzy matching compares a heard word only with the digit words (digits mode) or the single-word
answers (yes/no mode), never with fillers. ``score = 100 × (1 − letter edits / longer length)
− mark_penalty × mark edits``, where letters are the word without tone and vowel marks (đ stays
a letter of its own) and marks are the vowel marks in order plus the tone. The threshold and
penalty are in the data file; with 82 and 8 a word with the same letters and at most two mark
edits passes ("sau"→sáu 92, "làm"→lăm 92, "mot"→một 84, "tầm"→tám 84) and a wrong letter in a
word of five letters or fewer (every digit word) fails ("thông"→không 80, "phai"→hai 75,
"nhà"→nhăm 67, "bạn"→ba 59). A tie between different meanings is rejected. Pairs accepted by
alias, fuzzy or no-mark matching are reported in :attr:`DigitReading.fuzzy`.

Inherently ambiguous readings, and how they are resolved:

* **mười / mươi** differ only by tone. Exact "mười" is always 10 ("hai mười" = 2, 10). Exact
  "mươi" after a digit makes tens; alone it is taken as 10, but its "1" is a guess (nobody
  starts a number with "mươi": "ba mươi tư" whose "ba" the line ate reads "mươi tư"), so its
  position is reported in :attr:`DigitReading.guessed`. A fuzzy match of either ("muoi",
  "mưoi") is "mươi" when a digit word comes right before it, else "mười".
* **Group boundaries** are not heard when the recogniser writes no pauses: "hai mươi ba" is
  23 (never 20, 3), "mười hai" is 12, "hai trăm năm" is 250. A pause from the recogniser
  (comma, full stop, dash) ends a group: "hai mươi, ba" is 203. Fillers do not end a group,
  unknown words do.
* **After "D trăm"**: "mười …" or "X mươi …" give the last two digits; two digit words give
  them as said ("một trăm linh năm" 105, "một trăm không năm" 105, "một trăm hai mốt" 121);
  one digit word is the colloquial tens ("hai trăm tư" 240, "một trăm mốt" 110); nothing
  gives 00 ("hai trăm" 200). "trăm" with no digit before it counts as "một trăm".
* **A digit word followed by "mươi" or "trăm"** belongs to that multiplier, never to the
  number before it: "hai mươi ba mươi" is 2030, "mười hai trăm" is 1, 200.
* **Units after mười/mươi** are 1-9 only: "mười không" is 10, 0 and "hai mươi linh" is 20, 0.
* **không** is the digit 0 when reading digits, but "không phải", "không biết", "một chút",
  "bây giờ" … are phrases of ``not_digits`` (unknown, not digits). In yes/no mode "không" is no.
* Multi-digit numerals are literal: "12 mươi" is 12, 10.

Yes/no: phrases from ``[yesno]`` are found longest first ("không phải" is no, "không sai" yes).
One polarity → that answer; both ("đúng … sai", "có không", "phải không") → None. Politeness
("dạ", "vâng", "ừ") is yes only when nothing else was said except fillers; ``neutral``
phrases ("không biết", "có thể") and unknown words make a politeness-only turn unclear.

The reader is immutable after :meth:`NumberReader.load`; its methods are pure and thread-safe.
Digit strings are kept out of reprs (a full social-insurance code must not reach a log).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from rapidfuzz.distance import Levenshtein

from assistant.core.errors import DataFileError
from assistant.core.paths import data_file

DATA_FILE: Final = "numbers.toml"

# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


class YesNo(StrEnum):
    """A yes/no answer; a ``str`` whose value is "yes" or "no"."""

    YES = "yes"
    NO = "no"


#: Distinct texts whose readings a reader remembers (each a few hundred bytes).
READING_CACHE: Final = 4096


@dataclass(frozen=True)
class DigitReading:
    """Digits heard in one turn.

    ``digits`` are 0-9 in spoken order (after the last restart, when ``restart``); ``unknown``
    the words that were neither digits, fillers nor restart words; ``fuzzy`` the (heard,
    table word) pairs accepted by fuzzy or alias matching. Both lists, like the digits, cover
    only what was said after the last restart. ``guessed``: positions in ``digits`` that no
    word said, filled in by a rule (the tens "1" of a "mươi" with no digit before it, or with
    only "trăm" before it), which the dialog treats as unsure. The repr shows counts, not
    digits.
    """

    digits: str = ""
    restart: bool = False
    unknown: tuple[str, ...] = ()
    fuzzy: tuple[tuple[str, str], ...] = ()
    guessed: tuple[int, ...] = ()

    @property
    def usable(self) -> bool:
        """At least one digit or a restart was heard."""
        return bool(self.digits) or self.restart

    def __repr__(self) -> str:
        return (
            f"DigitReading(<{len(self.digits)} digits>, restart={self.restart}, "
            f"unknown={self.unknown!r}, fuzzy=<{len(self.fuzzy)} pairs>)"
        )


# --------------------------------------------------------------------------------------------
# Word forms
# --------------------------------------------------------------------------------------------

_TONES: Final = {"\u0300": "`", "\u0301": "'", "\u0303": "~", "\u0309": "?", "\u0323": "."}
_VOWEL_MARKS: Final = frozenset({"\u0302", "\u0306", "\u031b"})  # â ê ô, ă, ơ ư
_LOOKALIKES: Final = str.maketrans({"ð": "đ"})  # Icelandic eth used for đ
_TOKEN: Final = re.compile(r"(?P<word>(?:[^\W\d_]|[\u0300-\u036f])+)|(?P<num>\d+)|[^\w\s]|_")


@dataclass(frozen=True)
class _Form:
    """One word, taken apart for matching.

    ``text``: NFC lower case, as reported. ``key``: letters with vowel marks (NFC) plus the
    tone apart, equal for every spelling of the same word. ``letters``: no tone or vowel marks
    (đ kept). ``marks``: vowel marks in order, then the tone. ``ascii``: ``letters`` with đ→d.
    """

    text: str
    key: str
    letters: str
    marks: str
    ascii: str

    @property
    def unmarked(self) -> bool:
        """Heard with no tone or vowel mark at all (a recogniser that lost them)."""
        return not self.marks and "đ" not in self.letters


def _form(word: str) -> _Form:
    text = unicodedata.normalize("NFC", word.lower().translate(_LOOKALIKES))
    tone = ""
    kept: list[str] = []
    letters: list[str] = []
    marks: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in _TONES:
            tone = tone or _TONES[ch]
            continue
        kept.append(ch)
        if ch in _VOWEL_MARKS:
            marks.append(ch)
        elif not unicodedata.combining(ch):
            letters.append(ch)
    base = "".join(letters)
    return _Form(
        text=text,
        key=unicodedata.normalize("NFC", "".join(kept)) + tone,
        letters=base,
        marks="".join(marks) + tone,
        ascii=base.replace("đ", "d"),
    )


def _score(heard: _Form, candidate: _Form, mark_penalty: float) -> float:
    letters = 100.0 * Levenshtein.normalized_similarity(heard.letters, candidate.letters)
    return max(0.0, letters - mark_penalty * Levenshtein.distance(heard.marks, candidate.marks))


def word_similarity(heard: str, candidate: str, *, mark_penalty: float) -> float:
    """The fuzzy score (0-100) of ``heard`` against table word ``candidate`` (see module doc)."""
    return _score(_form(heard), _form(candidate), mark_penalty)


# --------------------------------------------------------------------------------------------
# Lexicon: phrases and words of one mode
# --------------------------------------------------------------------------------------------

# Entry kinds. Digits mode: DIGIT (value "0"-"9"), TEN (mười), TENS (mươi), HUNDRED (trăm),
# RESTART, NOT_DIGITS, FILLER. Yes/no mode: YES, NO, POLITE, NEUTRAL, FILLER.
_DIGIT, _TEN, _TENS, _HUNDRED = "digit", "ten", "tens", "hundred"
_RESTART, _NOT_DIGITS, _FILLER = "restart", "not_digits", "filler"
_YES, _NO, _POLITE, _NEUTRAL = "yes", "no", "polite", "neutral"
# Token kinds added by the lexer.
_NUMERAL, _PAUSE, _UNKNOWN, _EITHER_TEN = "numeral", "pause", "unknown", "either_ten"


@dataclass(frozen=True)
class _Entry:
    kind: str
    value: str  # the digit for DIGIT entries, else ""
    text: str  # the table spelling (NFC)


@dataclass(frozen=True)
class _Item:
    """One lexed unit: an entry kind, a value, the words heard, and the fuzzy pair if any."""

    kind: str
    value: str = ""
    heard: str = ""
    fuzzy: tuple[str, str] | None = None


class _Lexicon:
    """The phrases of one mode: matched exactly, or without marks for words heard unmarked."""

    def __init__(
        self, entries: Iterable[tuple[str, _Entry]], fuzzy_kinds: frozenset[str], source: str
    ) -> None:
        exact: dict[tuple[str, ...], _Entry] = {}
        # letters-only spelling -> (entry, exact keys), or None when two meanings share it
        plain: dict[tuple[str, ...], tuple[_Entry, tuple[str, ...]] | None] = {}
        fuzzy: list[tuple[_Form, _Entry]] = []
        vocabulary: set[str] = set()
        for phrase, entry in entries:
            forms = tuple(_form(w) for w in phrase.split())
            if not forms:
                raise DataFileError(f"{source}: empty phrase in the {entry.kind} table")
            key = tuple(f.key for f in forms)
            other = exact.get(key)
            if other is not None and (other.kind, other.value) != (entry.kind, entry.value):
                raise DataFileError(
                    f"{source}: {phrase!r} is in both the {other.kind} and {entry.kind} tables"
                )
            exact[key] = entry
            plain_key = tuple(f.ascii for f in forms)
            seen = plain.get(plain_key, (entry, key))
            same = seen is not None and (seen[0].kind, seen[0].value) == (entry.kind, entry.value)
            plain[plain_key] = (entry, key) if same else None
            if len(forms) == 1 and entry.kind in fuzzy_kinds:
                fuzzy.append((forms[0], entry))
            vocabulary.update(f.text for f in forms)
        self.exact: Final = MappingProxyType(exact)
        self.plain: Final = MappingProxyType(plain)
        self.fuzzy: Final = tuple(fuzzy)
        self.vocabulary: Final = frozenset(vocabulary)
        self.longest: Final = max(len(k) for k in exact) if exact else 1

    def phrase(self, words: Sequence[_Form], i: int) -> tuple[_Entry, int, bool] | None:
        """At ``i``: the longest exact phrase, unless a longer one of two or more words
        matches with some words heard unmarked. Returns (entry, length, exact)."""
        top = min(self.longest, len(words) - i)
        found: tuple[_Entry, int, bool] | None = None
        for n in range(top, 0, -1):
            entry = self.exact.get(tuple(f.key for f in words[i : i + n]))
            if entry is not None:
                found = (entry, n, True)
                break
        for n in range(top, max(found[1] if found else 0, 1), -1):
            span = words[i : i + n]
            plain = self.plain.get(tuple(f.ascii for f in span))
            if plain is not None and all(
                f.unmarked or f.key == k for f, k in zip(span, plain[1], strict=True)
            ):
                return plain[0], n, False
        return found

    def plain_word(self, word: _Form) -> _Entry | None:
        """A one-word phrase with the same letters, for a word heard with no marks."""
        plain = self.plain.get((word.ascii,)) if word.unmarked else None
        return plain[0] if plain is not None else None


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------


class NumberReader:
    """Digits and yes/no answers from recogniser text and keypad keys. Immutable."""

    __slots__ = (
        "_aliases",
        "_answer_words",
        "_digit_lex",
        "_digit_values",
        "_digit_words",
        "_digits_of",
        "_keypad",
        "_mark_penalty",
        "_number_words",
        "_ten_words",
        "_threshold",
        "_yesno_lex",
        "_yesno_of",
    )

    def __init__(self, tables: Mapping[str, Any], *, source: str = "number tables") -> None:
        """Build from the parsed tables of ``data/numbers.toml`` (raises DataFileError)."""
        # A reader is immutable once built and its readings are frozen values, so the same
        # text is read once: the live endpointer asks about the same running reading every
        # 20 ms frame of a pause, and the digit decoder reads its candidates' words again.
        self._digits_of = lru_cache(maxsize=READING_CACHE)(self._read_digits)
        self._yesno_of = lru_cache(maxsize=READING_CACHE)(self._read_yesno)
        t = _Tables(tables, source)
        fuzzy = t.table(tables, "fuzzy")
        self._threshold: float = t.number(fuzzy, "fuzzy", "threshold")
        self._mark_penalty: float = t.number(fuzzy, "fuzzy", "mark_penalty")

        digits = t.table(tables, "digits")
        entries: list[tuple[str, _Entry]] = []
        words: dict[str, str] = {}
        for d in "0123456789":
            spellings = t.words(digits, "digits", d)
            words[d] = _form(spellings[0]).text
            entries += [(w, _Entry(_DIGIT, d, _form(w).text)) for w in spellings]
        numbers = t.table(digits, "numbers", "digits.")
        for kind in (_TEN, _TENS, _HUNDRED):
            entries += [(w, _entry(kind, w)) for w in t.words(numbers, "digits.numbers", kind)]
        self._ten_words: tuple[str, str] = (
            _form(t.words(numbers, "digits.numbers", _TEN)[0]).text,
            _form(t.words(numbers, "digits.numbers", _TENS)[0]).text,
        )
        phrases = t.table(digits, "phrases", "digits.")
        for name, kind in (
            ("restart", _RESTART),
            ("not_digits", _NOT_DIGITS),
            ("fillers", _FILLER),
        ):
            entries += [(w, _entry(kind, w)) for w in t.words(phrases, "digits.phrases", name)]
        self._digit_lex = _Lexicon(entries, frozenset({_DIGIT, _TEN, _TENS, _HUNDRED}), source)
        self._digit_words: Mapping[str, str] = MappingProxyType(words)
        self._digit_values: Mapping[str, str] = MappingProxyType(
            {e.text: e.value for _w, e in entries if e.kind == _DIGIT}
        )
        self._number_words: tuple[str, str, str] = tuple(  # type: ignore[assignment]
            _form(t.words(numbers, "digits.numbers", kind)[0]).text
            for kind in (_TEN, _TENS, _HUNDRED)
        )

        aliases: dict[str, _Entry] = {}
        for heard, meant in t.table(digits, "aliases", "digits.").items():
            target = None
            if isinstance(meant, str):
                target = self._digit_lex.exact.get((_form(meant).key,))
            if target is None or target.kind != _DIGIT:
                raise DataFileError(f"{source}: alias {heard!r} must name a digit word")
            if (_form(heard).key,) in self._digit_lex.exact:
                raise DataFileError(f"{source}: alias {heard!r} is already a table word")
            aliases[_form(heard).key] = target
        self._aliases: Mapping[str, _Entry] = MappingProxyType(aliases)

        yesno = t.table(tables, "yesno")
        entries = []
        for name, kind in (
            ("yes", _YES),
            ("no", _NO),
            ("polite", _POLITE),
            ("neutral", _NEUTRAL),
            ("fillers", _FILLER),
        ):
            entries += [(w, _entry(kind, w)) for w in t.words(yesno, "yesno", name)]
        self._yesno_lex = _Lexicon(entries, frozenset({_YES, _NO, _POLITE}), source)
        answer_words: dict[str, None] = {}
        for _w, e in entries:
            if e.kind in (_YES, _NO, _POLITE, _NEUTRAL):
                answer_words.update(dict.fromkeys(e.text.split()))
        self._answer_words: tuple[str, ...] = tuple(answer_words)

        keypad = t.table(tables, "keypad")
        keys = {name: t.key(keypad, name) for name in ("yes", "no", "restart", "end")}
        if len(set(keys.values())) != len(keys) or (
            set(keys["restart"] + keys["end"]) & set("0123456789")
        ):
            raise DataFileError(f"{source}: [keypad] keys must differ; restart and end not 0-9")
        self._keypad: Mapping[str, str] = MappingProxyType(keys)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError(f"NumberReader is immutable (cannot set {name})")
        object.__setattr__(self, name, value)

    @classmethod
    def load(cls, path: Path | None = None) -> NumberReader:
        """Read ``data/numbers.toml`` (or ``path``). Raises DataFileError."""
        path = path or data_file(DATA_FILE)
        try:
            with path.open("rb") as fh:
                tables = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DataFileError(f"cannot read number tables {path}: {exc}") from exc
        return cls(tables, source=str(path))

    @property
    def fuzzy_threshold(self) -> float:
        """Lowest fuzzy score accepted (``[fuzzy] threshold``)."""
        return self._threshold

    @property
    def mark_penalty(self) -> float:
        """Points off per wrong or missing tone / vowel mark (``[fuzzy] mark_penalty``)."""
        return self._mark_penalty

    # -- digits ---------------------------------------------------------------------------------

    def read_digits(self, text: str) -> DigitReading:
        """The digits in ``text`` (see the module doc for the rules)."""
        return self._digits_of(text)

    def _read_digits(self, text: str) -> DigitReading:
        items = self._lex(text, self._digit_lex, aliases=True)
        restarts = [i for i, item in enumerate(items) if item.kind == _RESTART]
        if restarts:
            items = items[restarts[-1] + 1 :]
        items = self._resolve_tens(items)
        unknown = tuple(it.heard for it in items if it.kind in (_UNKNOWN, _NOT_DIGITS))
        fuzzy = tuple(it.fuzzy for it in items if it.fuzzy is not None)
        digits = ""
        guessed: list[int] = []
        for segment in _segments(items):
            part, guesses = _group(segment)
            guessed += [len(digits) + g for g in guesses]
            digits += part
        return DigitReading(digits, bool(restarts), unknown, fuzzy, tuple(guessed))

    def keypad_digits(self, keys: str) -> DigitReading:
        """Keys 0-9 are digits; the restart key (*) drops what came before it; the end key (#)
        is ignored; any other character is reported as unknown."""
        restart = False
        digits: list[str] = []
        unknown: list[str] = []
        for ch in keys:
            if ch in "0123456789":
                digits.append(ch)
            elif ch == self._keypad["restart"]:
                restart, digits, unknown = True, [], []
            elif ch != self._keypad["end"] and not ch.isspace():
                unknown.append(ch)
        return DigitReading("".join(digits), restart, tuple(unknown))

    def digit_word(self, d: str) -> str:
        """The word to say for digit ``d`` (the first word of its table row)."""
        try:
            return self._digit_words[d]
        except KeyError:
            raise ValueError(f"not a digit: {d!r}") from None

    def digit_values(self) -> Mapping[str, str]:
        """Every spelling of a digit (``[digits]``, variants included) and the digit it is:
        the words a digits grammar is made of."""
        return self._digit_values

    def number_words(self) -> tuple[str, str, str]:
        """The words for ten, tens and hundred (mười, mươi, trăm: ``[digits.numbers]``)."""
        return self._number_words

    def answer_words(self) -> tuple[str, ...]:
        """Every word of the yes, no, politeness and neutral phrases (``[yesno]``, not the
        fillers), in file order: the words a yes/no grammar is made of."""
        return self._answer_words

    def vocabulary_digits(self) -> frozenset[str]:
        """Every word the digit reader knows exactly: digits and their variants, mười / mươi /
        trăm, restart words, fillers, and the words of the not-digit phrases (so a grammar can
        hear "không phải" instead of forcing a 0). Recogniser confusions (aliases) are not in
        it: a grammar should not produce them."""
        return self._digit_lex.vocabulary

    # -- yes / no -------------------------------------------------------------------------------

    def read_yesno(self, text: str) -> YesNo | None:
        """YES, NO, or None when unclear, contradictory or empty."""
        return self._yesno_of(text)

    def _read_yesno(self, text: str) -> YesNo | None:
        kinds = {item.kind for item in self._lex(text, self._yesno_lex, aliases=False)}
        strong = kinds & {_YES, _NO}
        if len(strong) == 1:
            return YesNo.YES if _YES in strong else YesNo.NO
        if not strong and _POLITE in kinds and kinds <= {_POLITE, _FILLER, _PAUSE}:
            return YesNo.YES
        return None

    def keypad_yesno(self, keys: str) -> YesNo | None:
        """The yes key (1) → YES, the no key (2) → NO, anything else → None."""
        if keys == self._keypad["yes"]:
            return YesNo.YES
        if keys == self._keypad["no"]:
            return YesNo.NO
        return None

    def vocabulary_yesno(self) -> frozenset[str]:
        """Every word of the yes, no, politeness, neutral and filler tables."""
        return self._yesno_lex.vocabulary

    # -- lexing ---------------------------------------------------------------------------------

    def _lex(self, text: str, lex: _Lexicon, *, aliases: bool) -> list[_Item]:
        """Words, numerals and pauses of ``text``, looked up in ``lex``."""
        items: list[_Item] = []
        words: list[_Form] = []
        for match in _TOKEN.finditer(unicodedata.normalize("NFC", text)):
            if match["word"]:
                words.append(_form(match["word"]))
                continue
            items += self._lex_words(words, lex, aliases=aliases)
            words = []
            if match["num"]:  # \d is Unicode Nd: every character has a decimal value
                digits = "".join(str(unicodedata.decimal(ch)) for ch in match["num"])
                items.append(_Item(_DIGIT if len(digits) == 1 else _NUMERAL, digits, match["num"]))
            else:
                items.append(_Item(_PAUSE))
        return items + self._lex_words(words, lex, aliases=aliases)

    def _lex_words(self, words: Sequence[_Form], lex: _Lexicon, *, aliases: bool) -> list[_Item]:
        out: list[_Item] = []
        i = 0
        while i < len(words):
            word = words[i]
            match = lex.phrase(words, i)
            if match is not None:
                entry, n, exact = match
                heard = " ".join(w.text for w in words[i : i + n])
                pair = None if exact else (heard, entry.text)
                out.append(_Item(entry.kind, entry.value, heard, pair))
                i += n
                continue
            found = self._aliases.get(word.key) if aliases else None
            found = found or self._fuzzy(word, lex) or lex.plain_word(word)
            if found is None:
                out.append(_Item(_UNKNOWN, "", word.text))
            else:
                out.append(_Item(found.kind, found.value, word.text, (word.text, found.text)))
            i += 1
        return out

    def _resolve_tens(self, items: Sequence[_Item]) -> list[_Item]:
        """Drop fillers; a fuzzy mười/mươi is mươi right after a digit word, else mười."""
        out: list[_Item] = []
        for item in items:
            if item.kind == _FILLER:
                continue
            if item.kind != _EITHER_TEN:
                out.append(item)
                continue
            tens = bool(out) and out[-1].kind == _DIGIT
            word = self._ten_words[1] if tens else self._ten_words[0]
            out.append(_Item(_TENS if tens else _TEN, "", item.heard, (item.heard, word)))
        return out

    def _fuzzy(self, word: _Form, lex: _Lexicon) -> _Entry | None:
        """The best fuzzy candidate at or above the threshold, if it has one meaning."""
        best = -1.0
        winners: list[_Entry] = []
        for candidate, entry in lex.fuzzy:
            score = _score(word, candidate, self._mark_penalty)
            if score > best:
                best, winners = score, [entry]
            elif score == best:
                winners.append(entry)
        if best < self._threshold:
            return None
        meanings = {(e.kind, e.value) for e in winners}
        if meanings <= {(_TEN, ""), (_TENS, "")}:
            return _Entry(_EITHER_TEN, "", winners[0].text)  # decided by context
        return winners[0] if len(meanings) == 1 else None


def _entry(kind: str, phrase: str) -> _Entry:
    return _Entry(kind, "", " ".join(_form(w).text for w in phrase.split()))


class _Tables:
    """Typed access to the parsed TOML, with errors that name the file and the table."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data = data
        self.source = source

    def _fail(self, what: str) -> DataFileError:
        return DataFileError(f"{self.source}: {what}")

    def table(self, parent: Mapping[str, Any], name: str, prefix: str = "") -> Mapping[str, Any]:
        value = parent.get(name)
        if not isinstance(value, Mapping):
            raise self._fail(f"missing table [{prefix}{name}]")
        return value

    def words(self, table: Mapping[str, Any], where: str, name: str) -> list[str]:
        value = table.get(name)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(w, str) and w.split() for w in value)
        ):
            raise self._fail(f"[{where}] {name} must be a non-empty list of words")
        return [str(w) for w in value]

    def number(self, table: Mapping[str, Any], where: str, name: str) -> float:
        value = table.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise self._fail(f"[{where}] {name} must be a number from 0 to 100")
        return float(value)

    def key(self, table: Mapping[str, Any], name: str) -> str:
        value = table.get(name)
        if not isinstance(value, str) or len(value) != 1:
            raise self._fail(f"[keypad] {name} must be one key")
        return value


# --------------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------------

_MULTIPLIERS: Final = frozenset({_TENS, _HUNDRED})


def _segments(items: Sequence[_Item]) -> list[list[_Item]]:
    """Runs of number tokens between pauses and unknown words."""
    segments: list[list[_Item]] = [[]]
    for item in items:
        if item.kind in (_DIGIT, _NUMERAL, _TEN, _TENS, _HUNDRED):
            segments[-1].append(item)
        elif segments[-1]:
            segments.append([])
    return [s for s in segments if s]


def _group(seg: Sequence[_Item]) -> tuple[str, list[int]]:
    """Digits of one segment: a left-to-right pass with one token of lookahead or two; and the
    positions (in those digits) that a rule filled in rather than a word said."""
    out: list[str] = []
    guessed: list[int] = []

    def kind(j: int) -> str:
        return seg[j].kind if j < len(seg) else ""

    def unit(j: int) -> int:
        """After mười / "D mươi": a digit 1-9 not owned by a following multiplier, else 0."""
        if kind(j) == _DIGIT and seg[j].value != "0" and kind(j + 1) not in _MULTIPLIERS:
            out.append(seg[j].value)
            return j + 1
        out.append("0")
        return j

    def after_hundred(j: int) -> int:
        if kind(j) in (_TEN, _TENS):
            if kind(j) == _TENS:  # "một trăm [ba] mươi": the tens digit was not said
                guessed.append(len("".join(out)))
            out.append("1")
            return unit(j + 1)
        if kind(j) == _DIGIT:
            if kind(j + 1) == _TENS:
                out.append(seg[j].value)
                return unit(j + 2)
            if kind(j + 1) == _HUNDRED:
                out.append("00")
                return j
            if kind(j + 1) == _DIGIT and kind(j + 2) not in _MULTIPLIERS:
                out.append(seg[j].value + seg[j + 1].value)
                return j + 2
            out.append(seg[j].value + "0")  # colloquial: "hai trăm tư" = 240
            return j + 1
        out.append("00")
        return j

    i = 0
    while i < len(seg):
        item = seg[i]
        if item.kind == _DIGIT:
            out.append(item.value)
            if kind(i + 1) == _HUNDRED:
                i = after_hundred(i + 2)
            elif kind(i + 1) == _TENS:
                i = unit(i + 2)
            else:
                i += 1
        elif item.kind in (_TEN, _TENS):  # mười, or mươi with no digit before it
            if item.kind == _TENS:  # its tens digit was not said: most likely lost
                guessed.append(len("".join(out)))
            out.append("1")
            i = unit(i + 1)
        elif item.kind == _HUNDRED:  # "trăm" alone: one hundred
            out.append("1")
            i = after_hundred(i + 1)
        else:  # a numeral, as written
            out.append(item.value)
            i += 1
    return "".join(out), guessed
