"""The backchannel rule (calls/backchannel.py) and the transcript normalisation preemptive answers match on."""
from types import SimpleNamespace

from voiceagent.calls.backchannel import is_backchannel, is_false_alarm, is_ignored_backchannel
from voiceagent.calls.preemptive import normalise
from voiceagent.calls.turns import Turn
from voiceagent.config import Settings
from voiceagent.config.dialog import TurnFlowSettings

WORDS = TurnFlowSettings.model_fields["backchannel_words"].default


def test_whole_transcripts_of_backchannels_only():
    for text in ("Mm-hmm.", "mm hmm", "Mhm.", "Uh-huh.", "Yeah.", "Okay.", "OK", "Yeah, yeah.", "Okay, got it.",
                 "I see."):
        assert is_backchannel(text, WORDS), text
    for text in ("", "Yeah, and what about Sunday?", "Okay, book it for two.", "See you", "yes please",
                 "yeah yeah yeah yeah"):
        assert not is_backchannel(text, WORDS), text


def test_one_list_decides_a_false_alarm_over_the_agent_too():
    # the barge-in's resume rule reads the same BACKCHANNEL_WORDS (there is no second list)
    # "MMHM": how Whisper base wrote Piper's "Mm-hm." in the latency bench
    for text in ("", " . ", "Mm-hmm.", "MMHM", "uh huh", "Mmm.", "Okay, okay.", "Yes.", "Got it."):
        assert is_false_alarm(text, WORDS), text
    for text in ("Wait.", "Stop, please.", "2.", "Okay, stop.", "No."):
        assert not is_false_alarm(text, WORDS), text
    assert not is_false_alarm("Okay.", "mm-hm,yeah"), "the list given is the list used"
    assert "barge_in_backchannels" not in Settings.model_fields


def dialog(said, talking=False, asking=False):
    d = SimpleNamespace(s=SimpleNamespace(backchannel_words=WORDS), turns=[Turn(index=1, said=said)],
                        purpose=SimpleNamespace(asking=asking))
    d._agent_talking = lambda: talking
    return d


def test_ignored_while_the_agent_talks_or_after_a_statement_answered_after_a_question():
    assert is_ignored_backchannel(dialog(["Your table is booked."]), "Okay.")
    assert is_ignored_backchannel(dialog(["Shall I book it?"], talking=True), "Yeah.")
    assert not is_ignored_backchannel(dialog(["Shall I book it?"]), "Yeah.")
    assert not is_ignored_backchannel(dialog(["Your table is booked."], asking=True), "Yes.")
    assert not is_ignored_backchannel(dialog(["Your table is booked."]), "Okay, and on Sunday?")


def test_transcripts_match_whatever_the_punctuation_and_case():
    assert normalise("When do you open?") == normalise("when do you open") == "when do you open"
    assert normalise("I'd like, um, a table.") == "i'd like um a table"
