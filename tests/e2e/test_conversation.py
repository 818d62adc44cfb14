"""A caller talks to the agent through the emulator: real Whisper, Piper, VAD; a scripted LLM over HTTP."""
import json

import gevent

from voiceagent.dialog.conversation import CUT_OFF_MARK
from voiceagent.testing import llm_server as L

from .conftest import (loudest_slice, noise, place_call, segment_texts, silence, speak, transcribe_heard,
                       wait_for)

STAGE_TIMINGS = ("endpoint_wait_ms", "stt_ms", "llm_first_sentence_ms", "tts_first_ms", "voice_to_voice_ms")

LONG_REPLY = [  # a long first sentence, so the next ones are queued while it plays
    "The forecast for today is mild and mostly dry, with a light breeze from the west and a few clouds "
    "drifting over the hills during the morning hours.",
    "Fog may linger by the river.",
    "The sun comes out later.",
    "Temperatures will reach about twenty degrees in the city centre and a little less along the coast.",
    "In the evening clouds will gather again and there could be a short shower before midnight, so take "
    "an umbrella if you are going out late.",
]


def test_what_time_is_it_tool_round_trip(make_emulator, make_worker, voice, llm, models):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is half past ten in the morning."))
    emu = make_emulator(speed=2.0)
    w = make_worker([emu], dialog_factory=voice.dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert wait_for(lambda: len(ch.segments) >= 1), "no greeting"
    ch.say(speak(models, "What time is it?"))
    assert llm.wait_requests(2, timeout=20), "the tool result never went back to the LLM"
    first, second = llm.requests[0], llm.requests[1]
    assert "time" in first["messages"][-1]["content"].lower()
    assert any(t["function"]["name"] == "get_datetime" for t in first.get("tools", []))
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msgs and json.loads(tool_msgs[-1]["content"])
    assert wait_for(lambda: len(ch.segments) >= 2 and voice.turns, 20)
    turn = voice.turns[-1]
    assert "time" in turn.heard.lower()
    assert turn.tools and turn.tools[0]["name"] == "get_datetime" and turn.tools[0]["ok"]
    assert turn.said == ["It is half past ten in the morning."]
    heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
    assert "half past" in heard and ("ten" in heard or "10" in heard), heard
    assert turn.timings["voice_to_voice_ms"] > 0
    ch.hangup()


def test_barge_in_breaks_playback_cancels_the_llm_and_keeps_only_what_was_heard(
        make_emulator, make_worker, voice, llm, models):
    # the reply streams word by word for ~4 s: it is still being written when the caller interrupts
    llm.push(L.text(" ".join(LONG_REPLY), chunk_delay=0.04), L.text("Tomorrow will be sunny."))
    ch, sess = place_call(make_emulator, make_worker, voice)
    ch.say(speak(models, "What is the weather like?"))
    # the caller interrupts while the first sentence plays and the second is already queued
    assert wait_for(lambda: len(sess.playbacks) >= 3, 20), "the answer never started"
    first = sess.playbacks[1]
    assert first.started.wait(10) and first.status == "playing", first.status
    question = speak(models, "And what about tomorrow?")
    ch.say(question)
    assert llm.wait_requests(2, timeout=20), "the caller's new question never reached the LLM"
    assert llm.cancelled_event.wait(5), "the LLM stream was not cancelled"
    assert llm.completed == 0 or llm.cancelled == 1
    assert sess.barge_ins, "uuid_break was never sent"

    # playback: what played of the first reply is a prefix of it, the last piece broken, nothing after it
    assert wait_for(lambda: len(voice.turns) >= 2, 20), "the second answer never finished"
    interrupted, answered = voice.turns[0], voice.turns[1]
    said = interrupted.said  # the pieces handed to FreeSWITCH (long sentences are split at commas)
    assert " ".join(LONG_REPLY).startswith(" ".join(said)), said
    heard = segment_texts(sess, ch)[1:]
    statuses = [seg["status"] for _, seg in heard]
    assert "break" in statuses, statuses
    cut_at = statuses.index("break")
    assert [t for t, _ in heard[:cut_at + 1]] == said[:cut_at + 1], heard
    assert [t for t, _ in heard[cut_at + 1:]] == ["Tomorrow will be sunny."], heard
    assert all(s == "done" for s in statuses[:cut_at] + statuses[cut_at + 1:]), statuses
    queued = [p for p in sess.playbacks if p.text in said[cut_at + 1:]]
    assert queued and all(p.status == "cancelled" for p in queued), [(p.text, p.status) for p in sess.playbacks]

    # the next request: the new speech as the user message, the interrupted reply as it was heard
    msgs = llm.requests[1]["messages"]
    assert msgs[-1]["role"] == "user" and "tomorrow" in msgs[-1]["content"].lower(), msgs[-1]
    assert "weather" in msgs[-3]["content"].lower() and msgs[-3]["role"] == "user", msgs
    assistant = msgs[-2]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == " ".join(said[:cut_at + 1]) + CUT_OFF_MARK, assistant
    unheard = " ".join(LONG_REPLY)[len(" ".join(said[:cut_at + 1])):]
    assert unheard.strip() and unheard.strip()[:20] not in json.dumps(msgs)
    for piece in said[cut_at + 1:]:
        assert piece not in json.dumps(msgs)

    assert interrupted.interrupted and not answered.interrupted
    assert interrupted.heard_by_caller[-1].endswith(" —")
    for turn in (interrupted, answered):
        for key in STAGE_TIMINGS:
            assert turn.timings.get(key, -1) >= 0, (key, turn.timings)
    assert answered.timings["playback_start_ms"] >= 0, answered.timings
    assert not any(k.startswith("_") for t in voice.turns for k in t.timings), "internal keys leaked"
    barge = [d for kind, _, d in voice.events if kind == "barge_in"]
    assert barge and barge[0]["onset_to_break_ms"] > 0
    assert "sunny" in transcribe_heard(models, ch, start=heard[cut_at + 1][1]["start"])
    ch.hangup()
