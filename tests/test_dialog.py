"""Scripted conversations through the pure transition function: whole action sequences."""

from __future__ import annotations

import pytest

from assistant.core.dialog import (
    Action,
    CallStarted,
    Digits,
    EndCall,
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
from assistant.core.errors import ConfigError
from assistant.core.ports import Hypothesis, Recognition
from assistant.core.settings import DialogSettings
from assistant.language.numbers import NumberReader
from dialogs.reset import Phase, ResetDialog, ResetState

CALLER = "0912345678"
CODE = "0123456789"
PW = "48150962"


@pytest.fixture(scope="module")
def dialog() -> ResetDialog:
    return ResetDialog(NumberReader.load())


def converse(dialog: ResetDialog, events: list[Event]) -> tuple[ResetState, list[Action]]:
    state = dialog.initial()
    actions: list[Action] = []
    for event in events:
        state, out = dialog.step(state, event)
        actions.extend(out)
    return state, actions


def code(value: str = CODE) -> Digits:
    return Digits(value, (4, 3, 3))


def pw(prompt: str) -> Say:
    return Say(prompt, {"password": Digits(PW, (4, 4), secret=True)})


GREET = [Say("greeting"), Say("ask_code"), Listen.digits(10)]
READ_BACK = [Say("read_back", {"code": code()}), Listen.yesno()]
ISSUED = [
    pw("password"),
    pw("password_repeat"),
    Say("change_reminder"),
    Say("offer_repeat"),
    Listen.yesno(),
]
SUCCESS_TAIL = [Lookup(CALLER, CODE), IssuePassword(CALLER, CODE), *ISSUED]


def test_happy_path(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("dạ mã số của tôi là không một hai ba bốn năm sáu bảy tám chín"),
            Heard.text("đúng rồi"),
            LookupResult(True),
            PasswordIssued(PW),
            Heard.text("không"),
        ],
    )
    assert actions == [
        *GREET,
        *READ_BACK,
        *SUCCESS_TAIL,
        Say("goodbye"),
        EndCall(Outcome.PASSWORD_ISSUED),
    ]
    assert state.phase is Phase.DONE and state.outcome is Outcome.PASSWORD_ISSUED
    assert state.password == ""  # not kept once the call is over


def test_one_more_repetition_on_request(dialog: ResetDialog) -> None:
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Keypad(CODE),
            Keypad("1"),
            LookupResult(True),
            PasswordIssued(PW),
            Heard.text("có"),
        ],
    )
    assert actions[-3:] == [pw("password_repeat"), Say("goodbye"), EndCall(Outcome.PASSWORD_ISSUED)]


def test_code_over_three_utterances(dialog: ResetDialog) -> None:
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không một hai ba"),
            Heard.text("dạ bốn lăm sáu"),
            Heard.text("bảy tám chín"),
            Heard.text("đúng"),
        ],
    )
    assert actions == [
        *GREET,
        Say("heard_partial", {"count": 4, "remaining": 6}),
        Listen.digits(6),
        Say("heard_partial", {"count": 7, "remaining": 3}),
        Listen.digits(3),
        *READ_BACK,
        Lookup(CALLER, CODE),
    ]


def test_grouped_readings(dialog: ResetDialog) -> None:
    # 01 23 45 67 89 read in pairs, with regional variants.
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không một, hai mươi ba, bốn mươi lăm, sáu mươi bảy, tám mươi chín"),
            Heard.text("vâng đúng rồi"),
        ],
    )
    assert actions == [*GREET, *READ_BACK, Lookup(CALLER, CODE)]


def test_keypad_code_mixed_with_speech(dialog: ResetDialog) -> None:
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Keypad("01234"),
            Heard.text("năm sáu bảy tám chín"),
            Keypad("1"),
        ],
    )
    assert actions == [
        *GREET,
        Say("heard_partial", {"count": 5, "remaining": 5}),
        Listen.digits(5),
        *READ_BACK,
        Lookup(CALLER, CODE),
    ]


def test_khong_is_zero_while_collecting_and_no_while_confirming(dialog: ResetDialog) -> None:
    code0 = "0000000000"
    state, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không không không không không"),
            Heard.text("không không không không không"),
            Heard.text("không"),
        ],
    )
    assert actions == [
        *GREET,
        Say("heard_partial", {"count": 5, "remaining": 5}),
        Listen.digits(5),
        Say("read_back", {"code": code(code0)}),
        Listen.yesno(),
        Say("ask_code_again"),
        Say("read_slowly"),
        Listen.digits(10),
    ]
    assert state.attempts == 2 and state.digits == ""


def test_correction_after_wrong_read_back(dialog: ResetDialog) -> None:
    wrong = "0123456788"
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không một hai ba bốn năm sáu bảy tám tám"),
            Heard.text("sai rồi"),
            Heard.text("không một hai ba bốn năm sáu bảy tám chín"),
            Heard.text("đúng rồi"),
        ],
    )
    assert actions == [
        *GREET,
        Say("read_back", {"code": code(wrong)}),
        Listen.yesno(),
        Say("ask_code_again"),
        Say("read_slowly"),
        Listen.digits(10),
        *READ_BACK,
        Lookup(CALLER, CODE),  # only the code confirmed last reaches the lookup
    ]


def test_code_read_again_while_confirming_is_read_back_afresh(dialog: ResetDialog) -> None:
    _, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Keypad("0123456788"),
            Heard.text("không một hai ba bốn năm sáu bảy tám chín"),
            Heard.text("đúng"),
        ],
    )
    assert actions[-3:] == [*READ_BACK, Lookup(CALLER, CODE)][-3:]
    assert [a for a in actions if isinstance(a, Lookup)] == [Lookup(CALLER, CODE)]


@pytest.mark.parametrize("known_code", [CODE, "9999999999"])
def test_mismatch_is_the_same_for_unknown_and_known_code(
    dialog: ResetDialog, known_code: str
) -> None:
    # The dialog cannot tell the two cases apart: the store answers only matched / not matched.
    _, actions = converse(
        dialog, [CallStarted("c1", CALLER), Keypad(known_code), Keypad("1"), LookupResult(False)]
    )
    assert actions[-4:] == [
        Lookup(CALLER, known_code),
        Say("mismatch"),
        Say("goodbye"),
        EndCall(Outcome.MISMATCH),
    ]


@pytest.mark.parametrize("caller", [None, ""])
def test_withheld_caller_number(dialog: ResetDialog, caller: str | None) -> None:
    state, actions = converse(dialog, [CallStarted("c1", caller)])
    assert actions == [
        Say("greeting"),
        Say("no_caller_id"),
        Say("other_ways"),
        Say("goodbye"),
        EndCall(Outcome.NO_CALLER_ID),
    ]
    assert dialog.is_final(state)


def test_silence_three_times(dialog: ResetDialog) -> None:
    _, actions = converse(dialog, [CallStarted("c1", CALLER), NoInput(), NoInput(), NoInput()])
    assert actions == [
        *GREET,
        Say("no_input"),
        Say("ask_code"),
        Listen.digits(10),
        Say("no_input"),
        Say("ask_code"),
        Listen.digits(10),
        Say("gave_up"),
        Say("other_ways"),
        Say("goodbye"),
        EndCall(Outcome.GAVE_UP),
    ]


def test_silence_never_confirms(dialog: ResetDialog) -> None:
    _state, actions = converse(
        dialog, [CallStarted("c1", CALLER), Keypad(CODE), NoInput(), NoInput(), NoInput()]
    )
    assert not any(isinstance(a, Lookup) for a in actions)
    assert actions[-1] == EndCall(Outcome.GAVE_UP)


def test_unclear_answers_never_confirm(dialog: ResetDialog) -> None:
    events: list[Event] = [CallStarted("c1", CALLER)]
    for _ in range(3):
        events += [Keypad(CODE)] + [Heard.text("ờ để tôi xem")] * 3
    _state, actions = converse(dialog, events)
    assert not any(isinstance(a, Lookup) for a in actions)
    assert actions.count(Say("confirm_unclear", {"code": code()})) == 6
    assert actions[-1] == EndCall(Outcome.GAVE_UP)


def test_contradictory_answer_is_unclear(dialog: ResetDialog) -> None:
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Keypad(CODE), Heard.text("đúng sai")])
    assert actions[-2:] == [Say("confirm_unclear", {"code": code()}), Listen.yesno()]


@pytest.mark.parametrize(
    "events",
    [
        [HungUp()],
        [CallStarted("c1", CALLER), HungUp()],
        [CallStarted("c1", CALLER), Heard.text("không một hai"), HungUp()],
        [CallStarted("c1", CALLER), Keypad(CODE), HungUp()],
        [CallStarted("c1", CALLER), Keypad(CODE), Keypad("1"), HungUp()],
    ],
)
def test_hang_up_mid_flow(dialog: ResetDialog, events: list[Event]) -> None:
    state, actions = converse(dialog, events)
    assert actions[-1] == EndCall(Outcome.HUNG_UP)
    assert dialog.is_final(state)
    after, more = dialog.step(state, HungUp())  # a second hang-up changes nothing
    assert (after, more) == (state, ())


def test_hang_up_after_password_stays_issued(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Keypad(CODE),
            Keypad("1"),
            LookupResult(True),
            PasswordIssued(PW),
            HungUp(),
        ],
    )
    assert actions[-1] == EndCall(Outcome.PASSWORD_ISSUED)
    assert state.outcome is Outcome.PASSWORD_ISSUED


def test_three_failed_attempts(dialog: ResetDialog) -> None:
    events: list[Event] = [CallStarted("c1", CALLER)]
    events += [Keypad(CODE), Heard.text("không phải")] * 3
    state, actions = converse(dialog, events)
    # The first rejected read-back: again, with the way through; the second: the keypad first.
    assert actions.count(Say("ask_code_again")) == 1
    assert actions.count(Say("read_slowly")) == 1
    assert actions.count(Say("keypad_first")) == 1
    assert actions[-4:] == [
        Say("too_many_attempts"),
        Say("other_ways"),
        Say("goodbye"),
        EndCall(Outcome.GAVE_UP),
    ]
    assert state.attempts == 3
    assert not any(isinstance(a, Lookup) for a in actions)


def test_too_many_digits_asks_to_read_again(dialog: ResetDialog) -> None:
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Keypad("012345678901")])
    assert actions[-3:] == [
        Say("too_many_digits", {"count": 12}),
        Say("ask_code_again"),
        Listen.digits(10),
    ]


def test_nothing_usable_asks_to_read_again(dialog: ResetDialog) -> None:
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Heard.text("xin chào cảm ơn")])
    assert actions[-3:] == [Say("not_understood"), Say("ask_code"), Listen.digits(10)]


def test_caller_can_start_again(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog,
        [CallStarted("c1", CALLER), Heard.text("không một hai"), Heard.text("đọc lại từ đầu")],
    )
    assert actions[-2:] == [Say("restart"), Listen.digits(10)]
    assert state.digits == ""
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Keypad("012"), Keypad("*0123456789")])
    assert actions[-2:] == READ_BACK


def unsure_second_group() -> Heard:
    """The whole code, the recogniser torn over "năm sáu" (the second group, 3 digits)."""
    words = "không một hai ba bốn năm sáu bảy tám chín"
    return Heard(
        Recognition(
            (
                Hypothesis(words, 0.55),
                Hypothesis(words.replace("sáu", "sau ba"), 0.3),
                Hypothesis(words.replace("năm", "lăm").replace("sáu", "hai"), 0.15),
            )
        )
    )


UNSURE_READ_BACK = [Say("read_back_unsure", {"code": code()}), Listen.yesno()]


def test_an_uncertain_code_is_read_back_first_and_a_yes_confirms_it(dialog: ResetDialog) -> None:
    # most uncertain codes are right: one "đúng" gets the caller through
    state, actions = converse(dialog, [CallStarted("c1", CALLER), unsure_second_group()])
    assert actions[-2:] == UNSURE_READ_BACK
    assert state.phase is Phase.CONFIRM and state.candidate == CODE
    state, more = dialog.step(state, Heard.text("đúng rồi"))
    assert more == (Lookup(CALLER, CODE),)


def test_a_no_to_an_uncertain_code_asks_again_for_its_uncertain_group(
    dialog: ResetDialog,
) -> None:
    state, actions = converse(
        dialog, [CallStarted("c1", CALLER), unsure_second_group(), Heard.text("không")]
    )
    assert actions[-5:] == [
        *UNSURE_READ_BACK,
        Say("ask_group", {"ordinal": 2, "count": 3}),
        Say("read_slowly"),  # a rejected read-back says how to get through
        Listen.digits(3),
    ]
    assert state.phase is Phase.REPAIR and state.rejections == 1 and state.attempts == 1
    state, more = dialog.step(state, Heard.text("bốn năm bảy"))  # the caller's real group
    assert more == (Say("read_back", {"code": code("0123457789")}), Listen.yesno())
    state, more = dialog.step(state, Heard.text("đúng"))
    assert more == (Lookup(CALLER, "0123457789"),)  # exactly the code read back


def test_a_second_no_after_the_group_starts_the_code_again_on_the_keypad(
    dialog: ResetDialog,
) -> None:
    events: list[Event] = [CallStarted("c1", CALLER), unsure_second_group(), Heard.text("không")]
    events += [Heard.text("bốn năm sáu"), Heard.text("không")]
    state, actions = converse(dialog, events)
    assert actions[-4:] == [*READ_BACK, Say("keypad_first"), Listen.digits(10)]
    assert state.rejections == 2 and state.attempts == 2 and state.phase is Phase.COLLECT


def test_the_keypad_threshold_wins_over_asking_for_the_group() -> None:
    eager = ResetDialog(NumberReader.load(), DialogSettings(keypad_after_rejections=1))
    _, actions = converse(
        eager, [CallStarted("c1", CALLER), unsure_second_group(), Heard.text("không")]
    )
    assert actions[-2:] == [Say("keypad_first"), Listen.digits(10)]


def test_low_word_confidence_over_several_groups_is_read_back_as_unsure(
    dialog: ResetDialog,
) -> None:
    words = "không một hai ba bốn năm sáu bảy tám chín"
    conf = (0.9, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9, 0.9)
    heard = Heard(Recognition((Hypothesis(words, 0.5, conf),)))
    _, actions = converse(dialog, [CallStarted("c1", CALLER), heard])
    assert actions[-2:] == [Say("read_back_unsure", {"code": code()}), Listen.yesno()]


def test_a_bare_muoi_is_read_back_as_unsure_and_its_group_asked_for(
    dialog: ResetDialog,
) -> None:
    # "ba mươi tư ..." with its "ba" lost on the line: every word heard surely, yet the tens
    # digit of "mươi tư" is the reader's guess, so the code is not read back as certain
    words = "mươi tư năm sáu bảy tám chín không một hai"
    heard = Heard(Recognition((Hypothesis(words, 0.97, (0.99,) * 10),)))
    state, actions = converse(dialog, [CallStarted("c1", CALLER), heard])
    assert actions[-2:] == [Say("read_back_unsure", {"code": code("1456789012")}), Listen.yesno()]
    assert state.unsure == frozenset({0})
    state, more = dialog.step(state, Heard.text("không"))
    assert more[0] == Say("ask_group", {"ordinal": 1, "count": 4})
    # the same words with the tens said are a sure reading
    sure = Heard(Recognition((Hypothesis("ba " + words, 0.97, (0.99,) * 11),)))
    _, actions = converse(dialog, [CallStarted("c1", CALLER), sure])
    assert actions[-2:] == [Say("read_back", {"code": code("3456789012")}), Listen.yesno()]


def test_settings_change_the_limits() -> None:
    dialog = ResetDialog(NumberReader.load(), DialogSettings(max_attempts=1))
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Keypad(CODE), Keypad("2")])
    assert actions[-1] == EndCall(Outcome.GAVE_UP)


def test_interpret_follows_the_mode(dialog: ResetDialog) -> None:
    from assistant.core.ports import ListenMode

    heard = Heard.text("không")
    assert dialog.interpret(ListenMode.DIGITS, heard) == {"digits": "0"}
    assert dialog.interpret(ListenMode.YESNO, heard) == {"answer": "no"}
    assert dialog.interpret(ListenMode.YESNO, Keypad("1")) == {"answer": "yes"}


def test_far_fetched_alternatives_do_not_make_a_reading_unsure(dialog: ResetDialog) -> None:
    words = "không một hai ba bốn năm sáu bảy tám chín"
    heard = Heard(
        Recognition((Hypothesis(words, 0.9), Hypothesis(words.replace("sáu", "hai"), 0.05)))
    )
    _, actions = converse(dialog, [CallStarted("c1", CALLER), heard])
    assert actions[-2:] == READ_BACK


# -- a caller who is not understood gets a way through -------------------------------------------


def test_a_code_read_in_parts_gets_no_hint(dialog: ResetDialog) -> None:
    _, actions = converse(
        dialog,
        [CallStarted("c1", CALLER), Heard.text("không một hai ba"), Heard.text("bốn năm sáu")],
    )
    assert Say("read_slowly") not in actions


def test_two_short_whole_readings_offer_the_keypad_and_slow_reading(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không một hai ba bốn năm sáu"),  # 7 of 10: a whole reading, short
            Heard.text("bảy tám"),  # 2 of 3: short again
        ],
    )
    assert actions[len(GREET) :] == [
        Say("heard_partial", {"count": 7, "remaining": 3}),
        Listen.digits(3),
        Say("heard_partial", {"count": 9, "remaining": 1}),
        Say("read_slowly"),
        Listen.digits(1),
    ]
    assert state.miscounts == 2


def test_a_caller_who_reads_four_digits_hears_four(dialog: ResetDialog) -> None:
    _, actions = converse(dialog, [CallStarted("c1", CALLER), Heard.text("không một hai ba")])
    assert actions[len(GREET) :] == [
        Say("heard_partial", {"count": 4, "remaining": 6}),
        Listen.digits(6),
    ]


def test_too_many_digits_twice_offers_the_way_through(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog,
        [
            CallStarted("c1", CALLER),
            Heard.text("không một hai ba bốn năm sáu bảy tám chín chín"),
            Heard.text("không một hai ba bốn năm sáu bảy tám chín chín chín"),
        ],
    )
    assert actions[len(GREET) :] == [
        Say("too_many_digits", {"count": 11}),
        Say("ask_code_again"),
        Listen.digits(10),
        Say("too_many_digits", {"count": 12}),
        Say("ask_code_again"),
        Say("read_slowly"),
        Listen.digits(10),
    ]
    assert state.miscounts == 2 and state.attempts == 3


def test_keyed_wrong_lengths_are_not_a_failed_reading(dialog: ResetDialog) -> None:
    state, actions = converse(
        dialog, [CallStarted("c1", CALLER), Keypad("012345678"), Keypad("012345678901")]
    )
    assert Say("read_slowly") not in actions and state.miscounts == 0


def test_rejected_read_backs_lead_to_the_keypad(dialog: ResetDialog) -> None:
    wrong = "0123456788"
    spoken = Heard.text("không một hai ba bốn năm sáu bảy tám tám")
    events: list[Event] = [CallStarted("c1", CALLER), spoken, Heard.text("không")]
    events += [spoken, Heard.text("sai")]
    state, actions = converse(dialog, events)
    assert actions[len(GREET) :] == [
        Say("read_back", {"code": code(wrong)}),
        Listen.yesno(),
        Say("ask_code_again"),
        Say("read_slowly"),
        Listen.digits(10),
        Say("read_back", {"code": code(wrong)}),
        Listen.yesno(),
        Say("keypad_first"),
        Listen.digits(10),
    ]
    assert state.rejections == 2
    _, actions = converse(dialog, [*events, Keypad(CODE), Keypad("1")])
    assert actions[-1] == Lookup(CALLER, CODE)  # the keypad then works as always


def test_the_way_through_thresholds_are_settings() -> None:
    eager = ResetDialog(
        NumberReader.load(), DialogSettings(hint_after_miscounts=1, keypad_after_rejections=1)
    )
    _, actions = converse(
        eager, [CallStarted("c1", CALLER), Heard.text("không một hai ba bốn năm sáu")]
    )
    assert actions[len(GREET) :] == [
        Say("heard_partial", {"count": 7, "remaining": 3}),
        Say("read_slowly"),
        Listen.digits(3),
    ]
    spoken = Heard.text("không một hai ba bốn năm sáu bảy tám tám")
    _, actions = converse(eager, [CallStarted("c1", CALLER), spoken, Heard.text("không")])
    assert actions[-2:] == [Say("keypad_first"), Listen.digits(10)]
    for bad in ({"hint_after_miscounts": 0}, {"keypad_after_rejections": 0}):
        with pytest.raises(ConfigError):
            DialogSettings(**bad)  # type: ignore[arg-type]


def test_the_way_through_prompts_say_keypad_and_slowly() -> None:
    from assistant.language.prompts import Prompts

    prompts = Prompts.load()
    slowly, keypad = prompts.text(Say("read_slowly")), prompts.text(Say("keypad_first"))
    for text in (slowly, keypad):
        assert "bàn phím" in text and "chậm" in text and "từng chữ số" in text
    assert keypad.index("bàn phím") < keypad.index("chậm")  # the keypad first
