"""Prompt texts: every Vietnamese sentence the box says lives in ``data/prompts.toml``.

A :class:`~assistant.core.dialog.Say` action is rendered into segments: plain text, and digit runs
to be read digit by digit (grouped, with pauses). The text channel joins them into a line; the
voice (:mod:`assistant.call.prompt_voice`) renders each segment with recorded clips or the
synthesiser.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.dialog import Digits, PromptParam, Say
from assistant.core.errors import DataFileError
from assistant.core.paths import data_file


@dataclass(frozen=True)
class TextSegment:
    text: str


@dataclass(frozen=True)
class DigitSegment:
    """Digits read one by one; ``groups`` are the sizes of the pauses-separated groups."""

    digits: str = field(repr=False)
    groups: tuple[int, ...] = ()
    secret: bool = False


Segment = TextSegment | DigitSegment


def group_digits(digits: str, groups: tuple[int, ...]) -> list[str]:
    """Split ``digits`` into the given group sizes (the rest, if any, as a last group)."""
    out: list[str] = []
    i = 0
    for size in groups:
        if i >= len(digits):
            break
        out.append(digits[i : i + size])
        i += size
    if i < len(digits):
        out.append(digits[i:])
    return out


def _merge_text(segments: list[Segment]) -> list[Segment]:
    """Join neighbouring text segments (so a fixed sentence stays one synthesis unit)."""
    out: list[Segment] = []
    for seg in segments:
        if out and isinstance(seg, TextSegment) and isinstance(out[-1], TextSegment):
            out[-1] = TextSegment(out[-1].text + seg.text)
        else:
            out.append(seg)
    return out


class Prompts:
    """The prompt table: ids to templates (``str.format`` style, ``{name}`` placeholders)."""

    def __init__(
        self,
        templates: Mapping[str, str],
        digit_words: Mapping[str, str],
        ordinals: Mapping[str, str] | None = None,
    ) -> None:
        self.templates = dict(templates)
        self.digit_words = dict(digit_words)
        self.ordinals = dict(ordinals or {})
        missing = set("0123456789") - set(self.digit_words)
        if missing:
            raise DataFileError(f"digit words missing for {sorted(missing)}", code="data_invalid")

    @classmethod
    def load(cls, path: Path | None = None) -> Prompts:
        path = path or data_file("prompts.toml")
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DataFileError(f"cannot read prompts file {path}: {exc}") from exc
        prompts = data.get("prompts")
        words = data.get("digit_words")
        if not isinstance(prompts, dict) or not isinstance(words, dict):
            raise DataFileError(f"{path} needs [prompts] and [digit_words] tables")
        ordinals = data.get("ordinals", {})
        return cls(
            {str(k): str(v) for k, v in prompts.items()},
            {str(k): str(v) for k, v in words.items()},
            {str(k): str(v) for k, v in ordinals.items()},
        )

    def segments(self, say: Say) -> list[Segment]:
        """Render ``say`` into text and digit segments."""
        try:
            template = self.templates[say.prompt]
        except KeyError:
            raise DataFileError(
                f"unknown prompt id {say.prompt!r}", code="prompt_unknown"
            ) from None
        out: list[Segment] = []
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            if literal:
                out.append(TextSegment(literal))
            if name is None:
                continue
            if name not in say.params:
                raise DataFileError(
                    f"prompt {say.prompt!r} needs parameter {name!r}", code="prompt_param_missing"
                )
            out.append(self._param_segment(name, say.params[name]))
        return _merge_text(out)

    def _param_segment(self, name: str, value: PromptParam) -> Segment:
        if isinstance(value, Digits):
            return DigitSegment(value.value, value.groups, value.secret)
        if name == "ordinal" and str(value) in self.ordinals:
            return TextSegment(self.ordinals[str(value)])
        return TextSegment(str(value))

    def spoken_digits(self, segment: DigitSegment) -> str:
        """Digit words, comma between digits and a full stop between groups: "bốn, bảy. hai"."""
        groups = (
            group_digits(segment.digits, segment.groups) if segment.groups else [segment.digits]
        )
        return ". ".join(", ".join(self.digit_words[d] for d in g) for g in groups if g)

    def text(self, say: Say, *, reveal: bool = True) -> str:
        """The sentence as spoken (digit runs as words). ``reveal=False`` masks secret digits."""
        parts: list[str] = []
        for seg in self.segments(say):
            if isinstance(seg, TextSegment):
                parts.append(seg.text)
            elif seg.secret and not reveal:
                parts.append("***")
            else:
                parts.append(self.spoken_digits(seg))
        return "".join(parts)
