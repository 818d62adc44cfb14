"""Semantic end-of-turn in emulated calls (real Whisper, Piper, smart-turn; a scripted LLM): a complete
question is ended on the model's short wait, a caller pausing mid-sentence is not cut off."""
from voiceagent.testing import llm_server as L

from .conftest import place_call, silence, speak, wait_for


def decisions(voice, call_id):
    return [d for kind, cid, d in voice.events if kind == "end_of_turn" and cid == call_id]


def test_a_complete_question_ends_on_the_short_wait(make_stack, voice, llm, models):
    llm.push(L.text("Yes, Tuesday works."))
    ch, sess = place_call(make_stack, voice, speed=1.0)
    ch.say(speak(models, "Could you move my appointment to Tuesday?"))
    assert llm.wait_requests(1, timeout=30), "the question never reached the LLM"
    assert wait_for(lambda: voice.turns, 30)
    turn = voice.turns[-1]
    assert "tuesday" in turn.heard.lower()
    last = decisions(voice, sess.id)[-1]
    # the turn's own recorded wait, not wall time: what the policy asked the endpointer for (on a busy
    # machine the speculative transcript it awaits may come after SMART_TURN_MAX_WAIT_MS: applied=False)
    assert last.verdict == "complete" and last.hold_ms < voice.settings.end_of_turn_ms, last
    assert last.text and "tuesday" in last.text.lower()
    ch.hangup()


def caller_pauses_mid_sentence(ch, models):
    ch.say(speak(models, "I'd like to book, um"))
    ch.say(silence(0.9))  # longer than END_OF_TURN_MS (600 ms): silence alone would end the turn here
    ch.say(speak(models, "a table for two."))


def test_a_mid_sentence_pause_does_not_end_the_turn(make_stack, make_voice, llm, models):
    voice = make_voice(preemptive_llm=False)  # a held early request at the pause would be the first one the LLM sees
    llm.push(L.text("For what time?"), L.text("Sorry?"))
    ch, sess = place_call(make_stack, voice, speed=1.0)
    caller_pauses_mid_sentence(ch, models)
    assert wait_for(lambda: voice.turns, 40), "no turn"
    assert wait_for(lambda: llm.requests and "table" in llm.requests[0]["messages"][-1]["content"].lower(), 5), \
        [r["messages"][-1]["content"] for r in llm.requests]
    said = llm.requests[0]["messages"][-1]["content"].lower()
    assert "book" in said and "table" in said, said  # one turn: the fragment was not answered alone
    assert any(d.verdict == "incomplete" for d in decisions(voice, sess.id)), decisions(voice, sess.id)
    ch.hangup()


def test_with_smart_turn_off_the_same_pause_ends_the_turn(make_stack, make_voice, llm, models):
    voice = make_voice(smart_turn=False, preemptive_llm=False)
    llm.push(L.text("Yes?"), L.text("For what time?"))
    ch, sess = place_call(make_stack, voice, speed=1.0)
    caller_pauses_mid_sentence(ch, models)
    said = lambda: [r["messages"][-1]["content"].lower() for r in llm.requests]  # noqa: E731
    assert wait_for(lambda: any("table" in t for t in said()), 40), said()
    # cut at the pause (the fragment answered, or dropped as noise): what SMART_TURN fixes
    assert not any("book" in t and "table" in t for t in said()), said()
    assert decisions(voice, sess.id) == []
    ch.hangup()
