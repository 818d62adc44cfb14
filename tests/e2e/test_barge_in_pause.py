"""Barge-in that pauses at once and then decides (calls/barge_in.py), in emulated calls with real speech:
words stop the agent, a backchannel resumes it where it paused (the caller's recording shows the rest)."""
from voiceagent.testing import llm_server as L

from .conftest import heard_like, place_call, segment_texts, speak, transcribe_heard, wait_for

ANSWER = ["Apples grow on trees in many parts of the world, from the cold north to warm valleys in the south, "
          "and there are thousands of kinds.", "They are picked in the autumn.",
          "Most of them are eaten fresh or pressed into juice."]


def _playing(sess):
    return lambda: any(p.status == "playing" for p in sess.playbacks[1:])


def test_wait_stop_pauses_then_stops_the_agent(make_stack, voice, llm, models):
    llm.push(L.text(" ".join(ANSWER), chunk_delay=0.02), L.text("Sure, what is your question?"))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Tell me about apples."))
    assert wait_for(_playing(sess), 20), [(p.text, p.status) for p in sess.playbacks]
    ch.say(speak(models, "Wait, stop, I have another question."))
    assert llm.wait_requests(2, timeout=30), "the caller's question never became a turn"
    assert wait_for(lambda: len(voice.turns) >= 2, 30), "no answer to the interruption"
    assert len(sess.barge_ins) == 1, "uuid_break was not sent once"
    barge = [d for kind, _, d in voice.events if kind == "barge_in"]
    assert len(barge) == 1 and barge[0]["paused"] and barge[0]["decision"] == "stop", barge
    assert 0 < barge[0]["onset_to_pause_ms"] <= barge[0]["onset_to_break_ms"], barge
    assert not [d for kind, _, d in voice.events if kind == "barge_in_resume"]
    # the caller heard the answer stop at the pause: the broken file was paused first, never resumed
    played = segment_texts(sess, ch)[1:]
    broken = [seg for _, seg in played if seg["status"] == "break"]
    assert len(broken) == 1 and len(broken[0]["pauses"]) == 1, played
    paused, until = broken[0]["pauses"][0]
    assert until == broken[0]["end"] or until >= paused, broken  # paused up to the break
    assert voice.turns[0].interrupted and "question" in llm.requests[1]["messages"][-1]["content"].lower()
    assert [t for t, _ in played][-1] == "Sure, what is your question?"
    ch.hangup()


def test_a_backchannel_pauses_then_resumes_where_it_paused(make_stack, voice, llm, models):
    llm.push(L.text(" ".join(ANSWER)))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Tell me about apples."))
    assert wait_for(_playing(sess), 20), [(p.text, p.status) for p in sess.playbacks]
    ch.say(speak(models, "Mm-hmm."))
    assert wait_for(lambda: voice.turns, 40), "the answer never finished"
    resumes = [d for kind, _, d in voice.events if kind == "barge_in_resume"]
    assert len(resumes) == 1 and resumes[0]["paused"], (resumes, voice.events)
    assert not sess.barge_ins, "uuid_break was sent for a backchannel"
    played = segment_texts(sess, ch)[1:]
    assert [t for t, _ in played] == voice.turns[0].said, played
    assert all(seg["status"] == "done" for _, seg in played), played
    paused_seg = [seg for _, seg in played if seg["pauses"]]
    assert len(paused_seg) == 1 and len(paused_seg[0]["pauses"]) == 1, played
    turn = voice.turns[0]
    assert not turn.interrupted and turn.timings["false_interruption_resumes"] == 1, turn.timings
    assert len(llm.requests) == 1, "the backchannel became a turn"
    # the recording: the sentence goes on after the pause (nothing lost: its last words are heard)
    seg = paused_seg[0]
    after = transcribe_heard(models, ch, start=seg["pauses"][0][1])
    i = next(i for i, (_, s) in enumerate(played) if s is seg)
    text = played[i][0]
    if seg["end"] - seg["pauses"][0][1] > 0.5:  # the pause fell inside the sentence: its end plays after it
        assert heard_like(after, text.rstrip(".,").split()[-1]), (after, text)
    elif i + 1 < len(played):  # it fell on the sentence's last word: what plays on is the next one, from its start
        nxt = played[i + 1][0]
        assert heard_like(after, " ".join(nxt.split()[:2])), (after, text, nxt)
    ch.hangup()
