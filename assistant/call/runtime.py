"""The small runtime that executes a dialog's actions for one call.

The dialog decides; the runtime does: it speaks and listens through a :class:`Channel` (typed
text, replayed WAV files, a microphone, a phone line), asks the :class:`AccountStore`, and feeds
the results back as events. It keeps a transcript (masked unless asked otherwise) and a summary
with per-stage timings. The clock is injected, so tests control time.

Secrets in the transcript: the password is masked unless ``reveal_password``, and so are the
codes (the read-back, the digits heard or keyed while collecting them) unless
``reveal_codes``. Every call that starts leaves exactly one audit row: the reset writes its
own, the end of the call writes the others, and a call cut short (hung up during its last
prompts, an engine failing) is audited on the way out with the outcome the dialog reached.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from assistant.core.dialog import (
    Action,
    CallStarted,
    Dialog,
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
from assistant.core.errors import (
    AssistantError,
    AudioError,
    RecognizerError,
    StoreError,
    SynthesizerError,
    ThrottledError,
    TransportError,
)
from assistant.core.ports import AccountStore, CallerId, CallerSource, ListenMode, LookupVerdict
from assistant.language.phone import mask_digits, mask_phone
from assistant.language.prompts import Prompts

log = logging.getLogger("assistant.call")


class SayResult(StrEnum):
    DONE = "done"
    INTERRUPTED = "interrupted"  # barge-in: the caller started talking or pressed a key
    HUNG_UP = "hung_up"


#: Where a channel reports per-stage seconds; the runtime owns the summary behind it.
StageSink = Callable[[str, float], None]


class Channel(Protocol):
    """How the caller is reached. ``attach`` receives the runtime's timing sink before the call
    starts; ``say`` plays one prompt (``interruptible`` when barge-in is allowed); ``listen``
    returns the caller's next turn as an event (Heard, Keypad, NoInput or HungUp); ``close``
    ends the call from the box's side."""

    def attach(self, stage: StageSink) -> None: ...

    def say(self, say: Say, *, interruptible: bool) -> SayResult: ...

    def listen(self, listen: Listen) -> Event: ...

    def close(self, outcome: Outcome) -> None: ...


@dataclass
class Turn:
    """One exchange: what the box said, then what it heard (masked unless revealed)."""

    box: str = ""
    mode: str | None = None
    heard: str | None = None
    keys: str | None = None
    parsed: dict[str, str | None] = field(default_factory=dict)
    event: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": self.box.strip(),
            "heard": self.heard,
            "digits": self.parsed.get("digits"),
        }
        if self.mode is not None:
            out["mode"] = self.mode
            out["event"] = self.event
        if "answer" in self.parsed:
            out["answer"] = self.parsed["answer"]
        if self.keys is not None:
            out["keys"] = self.keys
        return out


@dataclass
class CallSummary:
    call_id: str
    caller_masked: str
    caller_source: str
    outcome: str | None = None
    error: str | None = None  # the stable code of an engine failure mid-call
    error_message: str | None = field(default=None, repr=False)  # for people; nothing secret
    turns: list[Turn] = field(default_factory=list)
    started_at: float = 0.0  # wall clock, seconds since the epoch
    duration_s: float = 0.0
    stages: dict[str, list[float]] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)  # only kept when revealed

    def add_stage(self, name: str, seconds: float) -> None:
        self.stages.setdefault(name, []).append(round(seconds, 4))

    def as_dict(self, *, reveal_password: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "call_id": self.call_id,
            "caller": self.caller_masked,
            "caller_source": self.caller_source,
            "duration_s": round(self.duration_s, 3),
            "turns": [t.as_dict() for t in self.turns],
            "stages": self.stages,
        }
        if self.error:
            out["error"] = self.error
        if reveal_password and self.password is not None:
            out["password"] = self.password
        return out


class CallRuntime:
    """Runs one call of ``dialog`` over ``channel`` against ``store``."""

    def __init__(
        self,
        dialog: Dialog[Any],
        store: AccountStore,
        channel: Channel,
        prompts: Prompts,
        *,
        caller: CallerId,
        call_id: str | None = None,
        reveal_password: bool = False,
        reveal_codes: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.dialog = dialog
        self.store = store
        self.channel = channel
        self.prompts = prompts
        self.caller = caller
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self.reveal = reveal_password
        self.reveal_codes = reveal_codes
        self.clock = clock
        self.summary = CallSummary(
            call_id=self.call_id,
            caller_masked=mask_phone(caller.number),
            caller_source=caller.source.value if caller.number else CallerSource.NONE.value,
            started_at=wall_clock(),
        )
        self._turn = Turn()
        self._code: str | None = None
        self._audited = False
        channel.attach(self.summary.add_stage)

    # -- running ------------------------------------------------------------------------------

    def run(self) -> CallSummary:
        start = self.clock()
        state = self.dialog.initial()
        events: list[Event] = [CallStarted(self.call_id, self.caller.number)]
        log.info(
            "call %s started, caller %s (%s)",
            self.call_id,
            self.summary.caller_masked,
            self.summary.caller_source,
        )
        try:
            while events and not self.dialog.is_final(state):
                event = events.pop(0)
                state, actions = self.dialog.step(state, event)
                events.extend(self._execute(actions))
        except AssistantError as exc:
            # Any engine failing mid-call (recogniser, voice, store, line): apologise when the
            # line still works, keep one audit row, and say which stable error code it was.
            log.error("call %s: %s failed: %s", self.call_id, _engine_of(exc), exc)
            self.summary.error = exc.code
            self.summary.error_message = exc.message
            self._fail_politely(state, exc)
        else:
            if not self._audited:  # cut short after the dialog ended (hung up on its last words)
                outcome = getattr(state, "outcome", None)
                self.summary.outcome = self.summary.outcome or (
                    outcome.value if isinstance(outcome, Outcome) else Outcome.HUNG_UP.value
                )
                self._audit(Outcome(self.summary.outcome))
        finally:
            if self._turn.box:
                self.summary.turns.append(self._turn)
            self.summary.duration_s = self.clock() - start
        log.info("call %s ended: %s", self.call_id, self.summary.outcome)
        return self.summary

    def _execute(self, actions: tuple[Action, ...]) -> list[Event]:
        out: list[Event] = []
        listens = any(isinstance(a, Listen) for a in actions)
        skip_says = False
        for action in actions:
            if isinstance(action, Say):
                if skip_says:
                    continue
                secret = any(getattr(v, "secret", False) for v in action.params.values())
                self._turn.box += self.prompts.text(self._shown(action), reveal=self.reveal) + " "
                result = self.channel.say(action, interruptible=listens and not secret)
                if result is SayResult.HUNG_UP:
                    return [HungUp()]
                skip_says = result is SayResult.INTERRUPTED
            elif isinstance(action, Listen):
                out.append(self._listen(action))
            elif isinstance(action, Lookup):
                self._code = action.code
                t0 = self.clock()
                verdict = self.store.lookup(action.caller, action.code)
                self.summary.add_stage("lookup", self.clock() - t0)
                out.append(
                    LookupResult(
                        verdict is LookupVerdict.MATCH,
                        throttled=verdict is LookupVerdict.THROTTLED,
                    )
                )
            elif isinstance(action, IssuePassword):
                t0 = self.clock()
                try:
                    password = self.store.reset_password(
                        action.caller,
                        action.code,
                        call_id=self.call_id,
                        caller_source=self.summary.caller_source,
                        peer_class=self.caller.peer.value,
                    )
                except ThrottledError:  # another call got this account's password first
                    self.summary.add_stage("issue", self.clock() - t0)
                    out.append(LookupResult(False, throttled=True))
                    continue
                self.summary.add_stage("issue", self.clock() - t0)
                if password is None:
                    out.append(LookupResult(False))
                else:
                    self._audited = True  # the reset and its audit row committed together
                    if self.reveal:
                        self.summary.password = password
                    out.append(PasswordIssued(password))
            elif isinstance(action, EndCall):
                self._finish(action.outcome)
        return out

    def _listen(self, listen: Listen) -> Event:
        t0 = self.clock()
        event = self.channel.listen(listen)
        self.summary.add_stage("listen", self.clock() - t0)
        turn = self._turn
        turn.mode = listen.spec.mode.value
        turn.event = type(event).__name__
        if isinstance(event, Heard):
            turn.heard = event.recognition.text
        elif isinstance(event, Keypad):
            turn.keys = event.keys
        interpreter = getattr(self.dialog, "interpret", None)
        if interpreter is not None:
            turn.parsed = interpreter(listen.spec.mode, event)
        if isinstance(event, NoInput | HungUp):
            turn.parsed = {k: None for k in turn.parsed}
        if not self.reveal_codes:
            as_digits = interpreter(ListenMode.DIGITS, event) if interpreter is not None else {}
            _mask_turn(turn, listen.spec.mode, as_digits.get("digits"))
        self.summary.turns.append(turn)
        self._turn = Turn()
        return event

    def _finish(self, outcome: Outcome) -> None:
        self.summary.outcome = outcome.value
        if outcome is Outcome.PASSWORD_ISSUED:  # the issued password was audited with it
            self._audited = True
        else:
            self._audit(outcome)
        self.channel.close(outcome)

    def _audit(self, outcome: Outcome) -> None:
        self.store.record(
            call_id=self.call_id,
            phone=self.caller.number,
            code=self._code,
            outcome=outcome.value,
            caller_source=self.summary.caller_source,
            peer_class=self.caller.peer.value,
        )
        self._audited = True

    def _shown(self, say: Say) -> Say:
        """``say`` as the transcript shows it: codes masked like passwords unless revealed."""
        if self.reveal_codes:
            return say
        params = {
            k: Digits(v.value, v.groups, secret=True) if isinstance(v, Digits) else v
            for k, v in say.params.items()
        }
        return Say(say.prompt, params)

    def _fail_politely(self, state: Any, error: AssistantError) -> None:
        """An engine failed: the dialog says how the call ends (the technical-error prompt and
        ``technical_error``); the prompt is skipped when the voice or the line is what failed,
        and the audit row the call has not written yet is written now, whatever else fails."""
        _state, actions = self.dialog.step(state, EngineFailed(error.code))
        closed = False
        for action in actions:
            if isinstance(action, Say):
                if isinstance(error, SynthesizerError | TransportError):
                    continue
                try:
                    self._turn.box += self.prompts.text(action) + " "
                    self.channel.say(action, interruptible=False)
                except AssistantError as exc:  # the line may be gone too; the summary says so
                    log.error("call %s: could not apologise: %s", self.call_id, exc)
            elif isinstance(action, EndCall):
                self.summary.outcome = action.outcome.value
                closed = self._close_after_failure(action.outcome)
        if not closed:  # the dialog had already ended (its last audit row failed): still close
            self.summary.outcome = Outcome.TECHNICAL_ERROR.value
            self._close_after_failure(Outcome.TECHNICAL_ERROR)

    def _close_after_failure(self, outcome: Outcome) -> bool:
        if not self._audited:
            try:
                self._audit(outcome)
            except StoreError as exc:
                log.error("call %s: no audit row, the store failed: %s", self.call_id, exc)
        try:
            self.channel.close(outcome)
        except AssistantError as exc:
            log.error("call %s: could not hang up: %s", self.call_id, exc)
        return True


#: What a masked transcript shows instead of what was heard while the caller gave digits.
MASKED_SPEECH = "(masked: spoken digits)"


def _mask_turn(turn: Turn, mode: ListenMode, as_digits: str | None) -> None:
    """Hide the digits of one turn: what was heard while collecting digits (spoken digits are
    the code), the keys and the digits read from them (last 3 kept once there are 7 or more,
    like every masked code). A yes/no answer stays, unless it reads as several digits
    (``as_digits``: a caller reading the code again instead of answering)."""
    digits = turn.parsed.get("digits")
    if digits:
        turn.parsed = {**turn.parsed, "digits": mask_digits(digits)}
    if turn.keys:
        turn.keys = mask_digits(turn.keys) if any(k.isdigit() for k in turn.keys) else turn.keys
    spoken_digits = len(as_digits or "") >= 3 or any(c.isdigit() for c in turn.heard or "")
    if turn.heard and (mode is ListenMode.DIGITS or spoken_digits):
        turn.heard = MASKED_SPEECH


def _engine_of(error: AssistantError) -> str:
    """Which engine an error came from, for the log line (the code says exactly what)."""
    kinds: tuple[tuple[type[AssistantError], str], ...] = (
        (StoreError, "account store"),
        (RecognizerError, "recogniser"),
        (SynthesizerError, "voice"),
        (TransportError, "line"),
        (AudioError, "audio"),
    )
    return next((name for kind, name in kinds if isinstance(error, kind)), "call")
