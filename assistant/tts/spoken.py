"""Text to spoken syllables for the syllable voice: what the speaker has to say, and where the
pauses go.

The written text is NFC-normalised and lower-cased, then split into words, numbers and
punctuation:

* a word with a spoken form in ``data/spoken_forms.toml`` ``[words]`` ("vssid" → "vê ét ét ai
  đi") is said as that form, as one word group;
* syllables that make up one word ("quý khách", ``[groups]``) form a word group: the voice
  leaves a shorter gap inside a group than between groups;
* a number of up to ``[numbers] longest`` digits without a leading zero is said as a quantity
  ("10" → "mười", "21" → "hai mươi mốt"), with the words of ``data/numbers.toml`` (the digit
  words, mười / mươi / trăm) and the variants ``[numbers]`` picks from its rows (mốt, tư, lăm,
  linh); anything else made of digits is a code, read digit by digit like the dialog reads a
  code: a digit pause between digits, a group pause between groups ("0912-345" is two groups);
* punctuation is a pause (comma, colon, full stop ...); the syllable before a pause, or the
  last one, ends a phrase (the voice says it a little longer).

The result is a list of :class:`Syllable` and :class:`Pause` items; the voice
(:mod:`assistant.tts.syllables`) turns them into audio.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from assistant.core.errors import DataFileError
from assistant.core.paths import data_file

FORMS_FILE = "spoken_forms.toml"
NUMBERS_FILE = "numbers.toml"
DIGITS = "0123456789"


class PauseKind(StrEnum):
    """Pauses the normaliser asks for; :class:`assistant.tts.syllables.JoinTiming` sets their
    lengths."""

    WORD = "word"  # between word groups
    DIGIT = "digit"  # between the digits of a code
    GROUP = "group"  # between the digit groups of a code
    SHORT = "short"  # / ( ) and a dash between words
    COMMA = "comma"  # , ;
    COLON = "colon"  # :
    STOP = "stop"  # . ? ! …


class Role(StrEnum):
    """How a syllable is said: inside a phrase, at its end, or as a digit of a code."""

    INNER = "inner"
    FINAL = "final"
    DIGIT = "digit"


@dataclass(frozen=True)
class Syllable:
    """One syllable to say. ``word`` is the written word it comes from (what a fallback voice
    says if the pack lacks a syllable of it); ``group_end`` marks the last syllable of a word
    group."""

    text: str
    word: str
    role: Role = Role.INNER
    group_end: bool = True


@dataclass(frozen=True)
class Pause:
    kind: PauseKind


Item = Syllable | Pause

_PUNCT: Mapping[str, PauseKind] = {
    ",": PauseKind.COMMA,
    ";": PauseKind.COMMA,
    ":": PauseKind.COLON,
    ".": PauseKind.STOP,
    "?": PauseKind.STOP,
    "!": PauseKind.STOP,
    "…": PauseKind.STOP,
    "/": PauseKind.SHORT,
    "(": PauseKind.SHORT,
    ")": PauseKind.SHORT,
    "-": PauseKind.SHORT,
    "–": PauseKind.SHORT,
    "—": PauseKind.SHORT,
}
_PAUSE_RANK = [
    PauseKind.WORD,
    PauseKind.DIGIT,
    PauseKind.SHORT,
    PauseKind.COMMA,
    PauseKind.COLON,
    PauseKind.GROUP,
    PauseKind.STOP,
]
# a code: digit runs joined by . or - (no spaces); a word: letters, inner hyphens/apostrophes
_TOKEN = re.compile(
    r"(?P<code>\d+(?:[.\-]\d+)+)|(?P<num>\d+)|(?P<word>[^\W\d_]+(?:['’\-][^\W\d_]+)*)|(?P<p>\S)"
)


def normalise_text(text: str) -> str:
    """NFC, lower case, one space between words."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


@dataclass(frozen=True)
class NumberWords:
    """Words for saying quantities: from ``data/numbers.toml`` (the digit words and mười /
    mươi / trăm) and the variant choices of ``data/spoken_forms.toml`` ``[numbers]``."""

    digits: Mapping[str, str]
    ten: str
    tens: str
    hundred: str
    thousand: str
    after_ten: Mapping[str, str]
    after_tens: Mapping[str, str]
    zero_before_unit: str
    longest: int

    def say(self, n: int) -> list[str]:
        """Syllables of ``0 <= n < 10 ** longest`` ("21" → hai mươi mốt)."""
        if not 0 <= n < 10**self.longest:
            raise ValueError(f"number out of range: {n}")
        if n < 10:
            return [self.digits[str(n)]]
        if n < 100:
            tens, unit = divmod(n, 10)
            head = [self.ten] if tens == 1 else [self.digits[str(tens)], self.tens]
            if unit == 0:
                return head
            table = self.after_ten if tens == 1 else self.after_tens
            return [*head, table.get(str(unit), self.digits[str(unit)])]
        if n < 1000:
            hundreds, rest = divmod(n, 100)
            return [self.digits[str(hundreds)], self.hundred, *self._rest(rest)]
        high, rest = divmod(n, 1000)
        out = [*self.say(high), self.thousand]
        if rest == 0:
            return out
        if rest < 100:
            return [*out, self.digits["0"], self.hundred, *self._rest(rest)]
        return [*out, *self.say(rest)]

    def _rest(self, rest: int) -> list[str]:
        if rest == 0:
            return []
        if rest < 10:
            return [self.zero_before_unit, self.digits[str(rest)]]
        return self.say(rest)

    def vocabulary(self) -> set[str]:
        """Every syllable :meth:`say` can produce."""
        words = set(self.digits.values()) | {self.ten, self.tens, self.hundred, self.thousand}
        return (
            words
            | set(self.after_ten.values())
            | set(self.after_tens.values())
            | {self.zero_before_unit}
        )


def _load_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(f"cannot read {what} {path}: {exc}") from exc


def _words(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataFileError(f"{where} must be a non-empty list of words")
    return [normalise_text(v) for v in value]


@dataclass(frozen=True)
class SpokenForms:
    """``data/spoken_forms.toml``: spoken forms, derived clips, word groups, number words."""

    words: Mapping[str, str]
    derived: Mapping[str, str]
    groups: frozenset[tuple[str, ...]]
    numbers: NumberWords
    source: str = FORMS_FILE

    @classmethod
    def load(cls, path: Path | None = None, numbers_path: Path | None = None) -> SpokenForms:
        path = path or data_file(FORMS_FILE)
        numbers_path = numbers_path or data_file(NUMBERS_FILE)
        forms = _load_toml(path, "spoken forms")
        return cls.from_tables(forms, _load_toml(numbers_path, "number tables"), source=str(path))

    @classmethod
    def from_tables(
        cls, forms: Mapping[str, Any], numbers: Mapping[str, Any], *, source: str = FORMS_FILE
    ) -> SpokenForms:
        def table(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
            value = parent.get(name)
            if not isinstance(value, dict):
                raise DataFileError(f"{source}: [{where}] is missing or not a table")
            return value

        words: dict[str, str] = {}
        for written, said in table(forms, "words", "words").items():
            if not isinstance(said, str) or not said.split():
                raise DataFileError(f"{source}: spoken form of {written!r} must be text")
            words[normalise_text(written)] = normalise_text(said)
        derived = {
            normalise_text(k): normalise_text(str(v))
            for k, v in table(forms, "derived", "derived").items()
        }
        groups = frozenset(
            tuple(g.split())
            for g in _words(table(forms, "groups", "groups").get("words"), "groups")
        )
        nums = table(forms, "numbers", "numbers")
        digit_rows = table(numbers, "digits", f"digits] of {NUMBERS_FILE} [")
        big = table(digit_rows, "numbers", "digits.numbers")
        rows = {d: _words(digit_rows.get(d), f"{NUMBERS_FILE} [digits] {d}") for d in DIGITS}

        def variants(name: str) -> dict[str, str]:
            out: dict[str, str] = {}
            for d, word in table(nums, name, f"numbers.{name}").items():
                w = normalise_text(str(word))
                if d not in rows or w not in rows[d]:
                    raise DataFileError(
                        f"{source}: [numbers.{name}] {d} = {word!r} is not a spelling of that "
                        f"digit in {NUMBERS_FILE}"
                    )
                out[d] = w
            return out

        zero = normalise_text(str(nums.get("zero_before_unit", "")))
        if zero not in rows["0"]:
            raise DataFileError(f"{source}: zero_before_unit must be a spelling of 0")
        longest = nums.get("longest")
        if not isinstance(longest, int) or not 1 <= longest <= 6:
            raise DataFileError(f"{source}: [numbers] longest must be an integer 1..6")
        thousand = normalise_text(str(nums.get("thousand", "")))
        if not thousand:
            raise DataFileError(f"{source}: [numbers] thousand is missing")
        number_words = NumberWords(
            digits={d: rows[d][0] for d in DIGITS},
            ten=_words(big.get("ten"), "digits.numbers ten")[0],
            tens=_words(big.get("tens"), "digits.numbers tens")[0],
            hundred=_words(big.get("hundred"), "digits.numbers hundred")[0],
            thousand=thousand,
            after_ten=variants("after_ten"),
            after_tens=variants("after_tens"),
            zero_before_unit=zero,
            longest=longest,
        )
        return cls(words, derived, groups, number_words, source)


class Normaliser:
    """Text → :class:`Syllable` / :class:`Pause` items (see the module doc). Immutable."""

    def __init__(self, forms: SpokenForms) -> None:
        self.forms = forms
        self._longest_group = max((len(g) for g in forms.groups), default=1)

    def items(self, text: str) -> list[Item]:
        raw: list[Item] = []
        words: list[str] = []  # a run of plain words, grouped when the run ends

        def flush() -> None:
            raw.extend(self._group_words(words))
            words.clear()

        for m in _TOKEN.finditer(normalise_text(text)):
            kind, tok = m.lastgroup, m.group()
            if kind == "word":
                if tok in self.forms.words:
                    flush()
                    raw.extend(self._group(self.forms.words[tok].split(), tok))
                else:
                    words.append(tok)
                continue
            flush()
            if kind == "code":
                raw.extend(self._code(re.split(r"[.\-]", tok)))
            elif kind == "num":
                if (tok[0] == "0" and len(tok) > 1) or len(tok) > self.forms.numbers.longest:
                    raw.extend(self._code([tok]))
                else:
                    raw.extend(self._group(self.forms.numbers.say(int(tok)), tok))
            elif tok in _PUNCT:
                raw.append(Pause(_PUNCT[tok]))
            # other symbols (quotes, *, #) are not spoken
        flush()
        return _finish(raw)

    def syllables(self, text: str) -> list[str]:
        """Just the syllables of :meth:`items`."""
        return [it.text for it in self.items(text) if isinstance(it, Syllable)]

    def _group_words(self, words: Sequence[str]) -> Iterable[Item]:
        i = 0
        while i < len(words):
            size = 1
            for n in range(min(self._longest_group, len(words) - i), 1, -1):
                if tuple(words[i : i + n]) in self.forms.groups:
                    size = n
                    break
            yield from self._group(list(words[i : i + size]), " ".join(words[i : i + size]))
            i += size

    @staticmethod
    def _group(syllables: Sequence[str], word: str) -> list[Item]:
        out: list[Item] = [Pause(PauseKind.WORD)]
        out += [
            Syllable(s, word, group_end=i == len(syllables) - 1) for i, s in enumerate(syllables)
        ]
        return out

    def _code(self, groups: Sequence[str]) -> list[Item]:
        out: list[Item] = [Pause(PauseKind.WORD)]
        for gi, group in enumerate(groups):
            if gi:
                out.append(Pause(PauseKind.GROUP))
            for di, d in enumerate(group):
                if di:
                    out.append(Pause(PauseKind.DIGIT))
                out.append(Syllable(self.forms.numbers.digits[d], d, Role.DIGIT))
        return out


def _finish(raw: Sequence[Item]) -> list[Item]:
    """Merge neighbouring pauses (the longest wins), drop leading/trailing ones, and mark the
    syllable before each remaining phrase pause (comma and longer) and the last one FINAL."""
    out: list[Item] = []
    for item in raw:
        if isinstance(item, Pause):
            if not out:
                continue
            last = out[-1]
            if isinstance(last, Pause):
                if _PAUSE_RANK.index(item.kind) > _PAUSE_RANK.index(last.kind):
                    out[-1] = item
                continue
        out.append(item)
    while out and isinstance(out[-1], Pause):
        out.pop()
    phrase = {PauseKind.COMMA, PauseKind.COLON, PauseKind.STOP, PauseKind.SHORT}
    for i, item in enumerate(out):
        nxt = out[i + 1] if i + 1 < len(out) else None
        ends = nxt is None or (isinstance(nxt, Pause) and nxt.kind in phrase)
        if isinstance(item, Syllable) and item.role is Role.INNER and ends:
            out[i] = Syllable(item.text, item.word, Role.FINAL, item.group_end)
    return out
