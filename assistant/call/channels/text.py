"""Typed conversation: one caller turn per line.

A line starting with ``#`` is keypad input (``#0123456789``), an empty line is silence (the
no-input timeout), end of input is a hang-up; anything else is what the caller said.
"""

from __future__ import annotations

from typing import TextIO

from assistant.call.runtime import SayResult, StageSink
from assistant.core.dialog import Event, Heard, HungUp, Keypad, Listen, NoInput, Outcome, Say
from assistant.language.prompts import Prompts

BOX = "Trợ lý"
CALLER = "Quý khách"


class TextChannel:
    def __init__(
        self, prompts: Prompts, infile: TextIO, outfile: TextIO, *, interactive: bool
    ) -> None:
        self.prompts = prompts
        self.infile = infile
        self.outfile = outfile
        self.interactive = interactive

    def attach(self, stage: StageSink) -> None:
        """Typed calls have no stage timings worth keeping."""
        del stage

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        print(f"{BOX}: {self.prompts.text(say)}", file=self.outfile, flush=True)
        return SayResult.DONE

    def listen(self, listen: Listen) -> Event:
        hint = {"digits": "mã số / #phím", "yesno": "đúng / không", "free": "..."}
        if self.interactive:
            print(
                f"{CALLER} [{hint[listen.spec.mode.value]}]> ",
                end="",
                file=self.outfile,
                flush=True,
            )
        line = self.infile.readline()
        if line == "":
            if self.interactive:
                print(file=self.outfile)
            return HungUp()
        line = line.rstrip("\r\n")
        if not self.interactive:
            print(f"{CALLER}: {line or '(im lặng)'}", file=self.outfile, flush=True)
        if not line.strip():
            return NoInput()
        if line.lstrip().startswith("#"):
            return Keypad(line.lstrip()[1:].replace(" ", ""))
        return Heard.text(line.strip())

    def close(self, outcome: Outcome) -> None:
        print(f"({BOX} gác máy: {outcome.value})", file=self.outfile, flush=True)
