"""A call's purpose: its opening, its instructions, and the choice question's matching."""
import pytest

from voiceagent.dialog.purpose import CallPurpose, ChoiceTracker, Step
from voiceagent.records.models import CallRequest, ChoiceQuestion

YES_NO = {"question": "Will you come on {day}?", "options": [{"value": "yes", "digit": "1"},
                                                              {"value": "no", "digit": "2"}]}


def _tracker(**kw):
    return ChoiceTracker(ChoiceQuestion(**{**YES_NO, **kw}), CallRequest(to="1000", variables={"day": "Monday"}))


@pytest.mark.parametrize("said, value", [
    ("Yes.", "yes"), ("yeah sure", "yes"), ("Of course I will.", "yes"), ("No, sorry.", "no"),
    ("Nope", "no"), ("I can't make it", "no"), ("one", "yes"), ("Two.", "no"),
])
def test_spoken_answers_match_their_option(said, value):
    t = _tracker()
    reply = t.hear(said)
    assert reply.step == Step.ANSWERED and t.answer.value == value and t.answer.via == "voice"
    assert f"noted: {value}" in reply.say


@pytest.mark.parametrize("said", ["", "the weather is nice", "yes no", "not sure, yes maybe"])
def test_unclear_or_ambiguous_answers_are_asked_again(said):
    t = _tracker()
    reply = t.hear(said)
    assert reply.step == Step.ASK_AGAIN and t.answer.value is None
    assert reply.say.endswith("Will you come on Monday?")


def test_words_match_whole_words_only():
    t = _tracker(options=[{"value": "red", "words": ["crimson"]}, {"value": "blue"}])
    assert t.match("I prefer bluer things") is None
    assert t.match("Crimson, please").value == "red"


def test_dtmf_answers_and_unknown_keys_count_as_attempts():
    t = _tracker(attempts=2)
    assert t.press("7").step == Step.ASK_AGAIN
    reply = t.press("2")
    assert reply.step == Step.ANSWERED and t.answer.value == "no" and t.answer.via == "dtmf"
    assert t.answer.attempts == 2 and t.done


def test_gives_up_after_the_last_attempt():
    t = _tracker(attempts=2)
    assert t.hear("hmm").step == Step.ASK_AGAIN
    assert t.hear("what?").step == Step.GAVE_UP
    assert t.done and t.answer.value is None and t.answer.raw == "what?"


def test_opening_and_instructions_carry_the_variables():
    req = CallRequest(to="1000", message="Hi {name}.", instructions="Remind {name} of the {day} visit.",
                      variables={"name": "Ann", "day": "Monday"}, choice=YES_NO)
    p = CallPurpose(req)
    assert p.opening() == "Hi Ann. Will you come on Monday?"
    assert "Remind Ann of the Monday visit." in p.instructions() and "name = Ann" in p.instructions()
    assert CallPurpose(CallRequest(to="1000")).opening() is None
