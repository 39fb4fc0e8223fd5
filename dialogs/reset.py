"""The VssID password-reset conversation, as a pure transition function.

It is long because it is the whole conversation: one phase table and its handlers, which read best
side by side.

``ResetDialog(reader, settings).step(state, event) -> (state, actions)``: no audio, clock,
database or I/O inside. Each phase says how caller input is heard ("không" is 0 while collecting
digits and "no" while confirming), and spoken and keyed digits become the same reading.

Flow: greet → collect the 10-digit code (several turns, keypad and speech mixed) → read it back
in groups and confirm (only the exact code confirmed reaches the lookup; silence or an unclear
answer never confirms) → look up caller + code → issue a password and read it twice, remind to
change it, offer one more repetition → goodbye. No match → the mismatch message, identical
for an unknown code and a known code from another number. Limits (attempts, re-prompts) live in
the state, so timeouts are events and tests never sleep.

Recogniser confidence is used: when the alternatives disagree on a digit or a digit's score is
low, the box says it is not sure when reading the code back, and if the caller says "không",
asks again only for the uncertain group (when there is one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from assistant.core.dialog import (
    Action,
    CallStarted,
    Digits,
    EndCall,
    EngineFailed,
    Event,
    Heard,
    HungUp,
    IssuePassword,
    Keypad,
    Listen,
    Lookup,
    LookupResult,
    NoInput,
    Outcome,
    PasswordIssued,
    Say,
)
from assistant.core.ports import Hypothesis, ListenMode, Recognition
from assistant.core.settings import DialogSettings


class YesNoLike(Protocol):
    @property
    def value(self) -> str: ...


class DigitReadingLike(Protocol):
    @property
    def digits(self) -> str: ...

    @property
    def restart(self) -> bool: ...

    @property
    def usable(self) -> bool: ...

    @property
    def guessed(self) -> tuple[int, ...]: ...


class Reader(Protocol):
    """What the dialog needs from the number reader.

    (:class:`assistant.language.numbers.NumberReader`)
    """

    def read_digits(self, text: str) -> DigitReadingLike: ...

    def keypad_digits(self, keys: str) -> DigitReadingLike: ...

    def read_yesno(self, text: str) -> YesNoLike | None: ...

    def keypad_yesno(self, keys: str) -> YesNoLike | None: ...


class Phase(StrEnum):
    START = "start"
    COLLECT = "collect"  # collecting the code's digits
    REPAIR = "repair"  # asking again for one uncertain group
    CONFIRM = "confirm"  # read back, waiting for yes/no
    VERIFY = "verify"  # waiting for the lookup
    ISSUE = "issue"  # waiting for the new password
    OFFER_REPEAT = "offer_repeat"  # password read twice; one more on request
    DONE = "done"


@dataclass(frozen=True)
class ResetState:
    phase: Phase = Phase.START
    call_id: str = ""
    caller: str | None = None
    digits: str = field(default="", repr=False)  # collected so far in this attempt
    unsure: frozenset[int] = frozenset()  # positions of digits the recogniser was unsure of
    candidate: str = field(default="", repr=False)  # the code being confirmed
    repair_group: int = -1  # index of the group asked again (REPAIR)
    confirmed: str = field(default="", repr=False)  # the code the caller confirmed
    attempts: int = 0  # code attempts started
    silences: int = 0  # consecutive no-inputs at the current question
    unclear: int = 0  # consecutive unclear yes/no answers
    unusable: int = 0  # consecutive turns with nothing usable
    miscounts: int = 0  # spoken readings this call that came out short or too long
    rejections: int = 0  # read-backs the caller said were wrong, this call
    password: str = field(default="", repr=False)
    outcome: Outcome | None = None


@dataclass(frozen=True)
class TurnReading:
    """One caller turn, spoken or keyed, read both ways before the phase table sees it: the
    digits (with the positions, within ``digits``, the recogniser was unsure of) and the yes/no
    answer (``"yes"``, ``"no"`` or ``None`` for unclear). Each phase uses the side it needs."""

    digits: str = field(repr=False)
    restart: bool = False
    usable: bool = False
    unsure: frozenset[int] = frozenset()
    answer: str | None = None
    keyed: bool = False


Result = tuple[ResetState, tuple[Action, ...]]
Handler = Callable[[ResetState, Any], Result]

#: What the phase table is keyed by: every event type, except that heard and keyed input
#: arrive as one :class:`TurnReading`.
TABLE_KEYS: tuple[type, ...] = (
    CallStarted,
    TurnReading,
    NoInput,
    HungUp,
    LookupResult,
    PasswordIssued,
    EngineFailed,
)


def table_key(event_type: type) -> type:
    """The phase-table column an event type is handled in."""
    return TurnReading if event_type in (Heard, Keypad) else event_type


class ResetDialog:
    """The conversation definition. ``reader`` is the number reader; both are immutable.

    A caller the recogniser does not understand gets a way through: from the
    ``settings.hint_after_miscounts``-th spoken reading of the wrong length in a call (too
    long, or short although it gave more than half of the digits asked for), and after every
    read-back the caller rejects, the next request for digits adds ``read_slowly`` (the digits
    can be keyed in, or read slowly one by one); from the ``settings.keypad_after_rejections``-th
    rejected read-back on, the code is asked for on the keypad first (``keypad_first``).
    """

    def __init__(self, reader: Reader, settings: DialogSettings | None = None) -> None:
        self.reader = reader
        self.settings = settings or DialogSettings()
        s = self
        # Defaults for every phase, then what each phase does differently. The merged table
        # names a handler in every cell: the graph test checks it.
        defaults: dict[type, Handler] = {
            CallStarted: s._ignore,
            TurnReading: s._ignore,
            NoInput: s._ignore,
            HungUp: s._hung_up,
            LookupResult: s._ignore,
            PasswordIssued: s._ignore,
            EngineFailed: s._engine_failed,
        }
        overrides: dict[Phase, dict[type, Handler]] = {
            Phase.START: {CallStarted: s._start},
            Phase.COLLECT: {TurnReading: s._collect, NoInput: s._collect_silence},
            Phase.REPAIR: {TurnReading: s._repair, NoInput: s._repair_silence},
            Phase.CONFIRM: {TurnReading: s._confirm_input, NoInput: s._confirm_silence},
            Phase.VERIFY: {LookupResult: s._verified},
            Phase.ISSUE: {LookupResult: s._verified, PasswordIssued: s._issued},
            Phase.OFFER_REPEAT: {TurnReading: s._offer_input, NoInput: s._offer_silence},
            Phase.DONE: {HungUp: s._ignore, EngineFailed: s._ignore},
        }
        self.table: dict[Phase, dict[type, Handler]] = {
            phase: defaults | overrides.get(phase, {}) for phase in Phase
        }

    # -- the Dialog protocol ----------------------------------------------------------------

    def initial(self) -> ResetState:
        return ResetState()

    def is_final(self, state: ResetState) -> bool:
        return state.phase is Phase.DONE

    def step(self, state: ResetState, event: Event) -> Result:
        if isinstance(event, Heard | Keypad):
            return self.table[state.phase][TurnReading](state, self.read(event))
        return self.table[state.phase][type(event)](state, event)

    # -- helpers ------------------------------------------------------------------------------

    @property
    def _n(self) -> int:
        return self.settings.code_length

    def _code(self, code: str) -> Digits:
        return Digits(code, self.settings.code_groups)

    def _groups(self) -> list[tuple[int, int]]:
        """(start, end) of each read-back group."""
        out, start = [], 0
        for size in self.settings.code_groups:
            out.append((start, start + size))
            start += size
        return out

    def _end(self, state: ResetState, outcome: Outcome, *says: Say) -> Result:
        # A finished call keeps who called, its outcome and its counters, nothing secret.
        done = ResetState(
            phase=Phase.DONE,
            call_id=state.call_id,
            caller=state.caller,
            attempts=state.attempts,
            outcome=outcome,
        )
        return done, (*says, EndCall(outcome))

    def _ignore(self, state: ResetState, _event: Event) -> Result:
        return state, ()

    def _engine_failed(self, state: ResetState, _event: Event) -> Result:
        return self._end(state, Outcome.TECHNICAL_ERROR, Say("technical_error"))

    def _hung_up(self, state: ResetState, _event: Event) -> Result:
        issued = state.outcome is Outcome.PASSWORD_ISSUED
        return self._end(state, Outcome.PASSWORD_ISSUED if issued else Outcome.HUNG_UP)

    def _give_up(self, state: ResetState, first: str) -> Result:
        return self._end(state, Outcome.GAVE_UP, Say(first), Say("other_ways"), Say("goodbye"))

    def _ask_for_code(self, state: ResetState, *lead: Say) -> Result:
        """Ask for (the rest of) the code and listen for digits."""
        remaining = self._n - len(state.digits)
        if state.digits:
            ask = Say("heard_partial", {"count": len(state.digits), "remaining": remaining})
        else:
            ask = Say("ask_code")
        new = replace(state, phase=Phase.COLLECT)
        return new, (*lead, ask, Listen.digits(remaining))

    def _failed_attempt(self, state: ResetState, *lead: Say, hint: bool = False) -> Result:
        """Start the code again (or give up after the last attempt); ``hint``: say how to get
        through (keypad, or slowly), the keypad first after repeated rejected read-backs."""
        if state.attempts >= self.settings.max_attempts:
            return self._end(
                state,
                Outcome.GAVE_UP,
                *lead,
                Say("too_many_attempts"),
                Say("other_ways"),
                Say("goodbye"),
            )
        new = replace(
            state,
            phase=Phase.COLLECT,
            attempts=state.attempts + 1,
            digits="",
            unsure=frozenset(),
            candidate="",
            repair_group=-1,
            silences=0,
            unclear=0,
            unusable=0,
        )
        if state.rejections >= self.settings.keypad_after_rejections:
            asks: tuple[Say, ...] = (Say("keypad_first"),)
        elif hint:
            asks = (Say("ask_code_again"), Say("read_slowly"))
        else:
            asks = (Say("ask_code_again"),)
        return new, (*lead, *asks, Listen.digits(self._n))

    def _miscounted(self, state: ResetState, reading: TurnReading) -> tuple[ResetState, bool]:
        """Count a spoken reading of the wrong length; whether the caller now needs the hint."""
        if reading.keyed:
            return state, False
        state = replace(state, miscounts=state.miscounts + 1)
        return state, state.miscounts >= self.settings.hint_after_miscounts

    # -- reading caller input -------------------------------------------------------------------

    def read(self, event: Heard | Keypad) -> TurnReading:
        """How the dialog reads a caller turn, in every phase (and the ``hear`` command, the
        reports and the benchmarks, which must read it the same way)."""
        if isinstance(event, Keypad):
            keys = self.reader.keypad_digits(event.keys)
            answer = self.reader.keypad_yesno(event.keys)
            return TurnReading(
                keys.digits,
                keys.restart,
                keys.usable,
                answer=None if answer is None else answer.value,
                keyed=True,
            )
        reading = self._read_recognition(event.recognition)
        text = event.recognition.text
        spoken = self.reader.read_yesno(text) if text else None
        return replace(reading, answer=None if spoken is None else spoken.value)

    def _read_recognition(self, recognition: Recognition) -> TurnReading:
        """Digits from the best usable hypothesis; positions where alternatives of the same
        length disagree, whose word confidence is low, or that no word said (the reader's
        guess for a "mươi" with no digit before it: :attr:`DigitReading.guessed`) are marked
        unsure."""
        readings = [(h, self.reader.read_digits(h.text)) for h in recognition.hypotheses]
        usable = [(h, r) for h, r in readings if r.usable]
        if not usable:
            return TurnReading("", False, False)
        best_h, best = usable[0]
        unsure: set[int] = set()
        rival = self.settings.rival_confidence
        for h, other in usable[1:]:
            if h.confidence is not None and h.confidence < rival:
                continue  # a far-fetched alternative does not make the reading unsure
            if other.restart == best.restart and len(other.digits) == len(best.digits):
                unsure |= {
                    i
                    for i, (a, b) in enumerate(zip(best.digits, other.digits, strict=False))
                    if a != b
                }
        unsure |= self._low_confidence_positions(best_h, best.digits)
        unsure |= set(best.guessed)
        return TurnReading(best.digits, best.restart, True, frozenset(unsure))

    def _low_confidence_positions(self, hyp: Hypothesis, digits: str) -> set[int]:
        low = self.settings.low_confidence
        words = hyp.text.split()
        if hyp.word_confidences and len(hyp.word_confidences) == len(words):
            # One word per digit (a digit-by-digit reading): word scores map onto digits.
            if len(words) == len(digits):
                return {i for i, c in enumerate(hyp.word_confidences) if c < low}
            if min(hyp.word_confidences) < low:
                return set(range(len(digits)))
        elif hyp.confidence is not None and hyp.confidence < low:
            return set(range(len(digits)))
        return set()

    def interpret(self, mode: ListenMode, event: Event) -> dict[str, str | None]:
        """How a turn is heard in ``mode``, exactly as the dialog reads it (for reports and the
        ``hear`` command): ``{"digits": ...}`` or ``{"answer": "yes"|"no"|None}``."""
        if isinstance(event, Heard | Keypad):
            r = self.read(event)
            if mode is ListenMode.DIGITS:
                return {"digits": r.digits if r.usable else None}
            return {"answer": r.answer}
        return {"digits": None} if mode is ListenMode.DIGITS else {"answer": None}

    # -- START ----------------------------------------------------------------------------------

    def _start(self, state: ResetState, event: Event) -> Result:
        assert isinstance(event, CallStarted)
        state = replace(state, call_id=event.call_id, caller=event.caller or None)
        if not state.caller:
            return self._end(
                state,
                Outcome.NO_CALLER_ID,
                Say("greeting"),
                Say("no_caller_id"),
                Say("other_ways"),
                Say("goodbye"),
            )
        state = replace(state, attempts=1)
        return self._ask_for_code(state, Say("greeting"))

    # -- COLLECT --------------------------------------------------------------------------------

    def _collect(self, state: ResetState, reading: TurnReading) -> Result:
        state = replace(state, silences=0)
        if not reading.usable:
            if state.unusable >= self.settings.max_unusable:
                return self._failed_attempt(replace(state, unusable=0), Say("not_understood"))
            state = replace(state, unusable=state.unusable + 1)
            return self._ask_for_code(state, Say("not_understood"))
        state = replace(state, unusable=0)
        if reading.restart:
            state = replace(state, digits="", unsure=frozenset())
            if not reading.digits:
                return replace(state, phase=Phase.COLLECT), (Say("restart"), Listen.digits(self._n))
        offset = len(state.digits)
        digits = state.digits + reading.digits
        unsure = state.unsure | {offset + i for i in reading.unsure}
        state = replace(state, digits=digits, unsure=frozenset(unsure))
        if len(digits) > self._n:
            state, hint = self._miscounted(state, reading)
            lead = Say("too_many_digits", {"count": len(digits)})
            return self._failed_attempt(state, lead, hint=hint)
        if len(digits) < self._n:
            # More than half of what was asked, yet short: a whole reading that lost digits
            # (a smaller part is a code read in parts, which is fine).
            hint = False
            if 2 * len(reading.digits) > self._n - offset:
                state, hint = self._miscounted(state, reading)
            new, actions = self._ask_for_code(state)
            if hint:  # before the Listen
                actions = (*actions[:-1], Say("read_slowly"), actions[-1])
            return new, actions
        return self._complete(state)

    def _complete(self, state: ResetState) -> Result:
        """All digits are in: read them back, saying so when some were uncertain.

        An uncertain code is read back first rather than one of its groups asked again: most
        uncertain codes are right (on the robustness panel's tuning conditions 92 right codes
        had a digit marked unsure, against at most 24 wrong ones), and a right one then costs
        the caller one "đúng" instead of a group read again and a read-back. Only a "không"
        to it asks for the uncertain group (:meth:`_confirm`)."""
        code = state.digits
        state = replace(state, candidate=code, unclear=0, silences=0)
        prompt = "read_back_unsure" if self._unsure_groups(state) else "read_back"
        new = replace(state, phase=Phase.CONFIRM)
        return new, (Say(prompt, {"code": self._code(code)}), Listen.yesno())

    def _unsure_groups(self, state: ResetState) -> list[int]:
        """The read-back groups of the candidate holding a digit the recogniser was unsure of."""
        groups = self._groups()
        return [i for i, (a, b) in enumerate(groups) if any(a <= p < b for p in state.unsure)]

    def _collect_silence(self, state: ResetState, _event: Event) -> Result:
        if state.silences >= self.settings.max_reprompts:
            return self._give_up(state, "gave_up")
        state = replace(state, silences=state.silences + 1)
        return self._ask_for_code(state, Say("no_input"))

    # -- REPAIR (one uncertain group asked again) ---------------------------------------------

    def _repair(self, state: ResetState, reading: TurnReading) -> Result:
        a, b = self._groups()[state.repair_group]
        if reading.usable and not reading.restart and len(reading.digits) == b - a:
            code = state.candidate[:a] + reading.digits + state.candidate[b:]
            unsure = {p for p in state.unsure if not a <= p < b} | {a + i for i in reading.unsure}
            state = replace(state, digits=code, unsure=frozenset(unsure))
            return self._complete(state)
        if reading.usable and len(reading.digits) == self._n:
            state = replace(state, digits=reading.digits, unsure=reading.unsure)
            return self._complete(state)
        # Not the group: read back what we have, saying we are not sure; the caller decides.
        new = replace(state, phase=Phase.CONFIRM, unclear=0)
        return new, (Say("read_back_unsure", {"code": self._code(state.candidate)}), Listen.yesno())

    def _repair_silence(self, state: ResetState, _event: Event) -> Result:
        new = replace(state, phase=Phase.CONFIRM, silences=1, unclear=0)
        say = Say("read_back_unsure", {"code": self._code(state.candidate)})
        return new, (Say("no_input"), say, Listen.yesno())

    # -- CONFIRM --------------------------------------------------------------------------------

    def _confirm_input(self, state: ResetState, reading: TurnReading) -> Result:
        # A whole code read again instead of yes/no is a correction: read it back afresh.
        if reading.usable and not reading.restart and len(reading.digits) == self._n:
            fresh = replace(state, digits=reading.digits, unsure=reading.unsure, repair_group=-1)
            return self._complete(fresh)
        return self._confirm(state, reading.answer)

    def _confirm(self, state: ResetState, answer: str | None) -> Result:
        state = replace(state, silences=0)
        if answer == "yes":
            confirmed = state.candidate  # exactly the code that was read back
            new = replace(state, phase=Phase.VERIFY, confirmed=confirmed)
            assert new.caller is not None
            return new, (Lookup(new.caller, confirmed),)
        if answer == "no":
            state = replace(state, rejections=state.rejections + 1)
            bad = self._unsure_groups(state)
            keypad = state.rejections >= self.settings.keypad_after_rejections
            if len(bad) == 1 and state.repair_group < 0 and not keypad:
                # the one group it was unsure of is the likely wrong one: ask for just that
                a, b = self._groups()[bad[0]]
                new = replace(state, phase=Phase.REPAIR, repair_group=bad[0], unclear=0)
                say = Say("ask_group", {"ordinal": bad[0] + 1, "count": b - a})
                return new, (say, Say("read_slowly"), Listen.digits(b - a))
            return self._failed_attempt(state, hint=True)
        if state.unclear >= self.settings.max_unclear:
            return self._failed_attempt(state)
        new = replace(state, unclear=state.unclear + 1)
        return new, (Say("confirm_unclear", {"code": self._code(state.candidate)}), Listen.yesno())

    def _confirm_silence(self, state: ResetState, _event: Event) -> Result:
        if state.silences >= self.settings.max_reprompts:
            return self._give_up(state, "gave_up")
        new = replace(state, silences=state.silences + 1)
        say = Say("confirm_unclear", {"code": self._code(state.candidate)})
        return new, (Say("no_input"), say, Listen.yesno())

    # -- VERIFY / ISSUE -------------------------------------------------------------------------

    def _verified(self, state: ResetState, event: Event) -> Result:
        assert isinstance(event, LookupResult)
        if event.throttled:
            # Decided by the store before any lookup: the same words whether the code exists.
            return self._end(
                state, Outcome.THROTTLED, Say("throttled"), Say("other_ways"), Say("goodbye")
            )
        if not event.matched:
            return self._end(state, Outcome.MISMATCH, Say("mismatch"), Say("goodbye"))
        assert state.caller is not None
        return replace(state, phase=Phase.ISSUE), (IssuePassword(state.caller, state.confirmed),)

    def _password(self, state: ResetState, prompt: str) -> Say:
        digits = Digits(state.password, self.settings.password_groups, secret=True)
        return Say(prompt, {"password": digits})

    def _issued(self, state: ResetState, event: Event) -> Result:
        assert isinstance(event, PasswordIssued)
        new = replace(
            state,
            phase=Phase.OFFER_REPEAT,
            password=event.password,
            outcome=Outcome.PASSWORD_ISSUED,
            silences=0,
        )
        return new, (
            self._password(new, "password"),
            self._password(new, "password_repeat"),
            Say("change_reminder"),
            Say("offer_repeat"),
            Listen.yesno(),
        )

    # -- OFFER_REPEAT ---------------------------------------------------------------------------

    def _offer_input(self, state: ResetState, reading: TurnReading) -> Result:
        return self._offer(state, reading.answer == "yes")

    def _offer_silence(self, state: ResetState, _event: Event) -> Result:
        return self._offer(state, False)

    def _offer(self, state: ResetState, again: bool) -> Result:
        says = (self._password(state, "password_repeat"),) if again else ()
        return self._end(state, Outcome.PASSWORD_ISSUED, *says, Say("goodbye"))
