"""A caller talks to the agent through the emulator: real Whisper, Piper, VAD; a scripted LLM over HTTP."""
import json

import gevent

from voiceagent.dialog.conversation import CUT_OFF_MARK
from voiceagent.speech.audio import pcm16_to_float, rms_dbfs
from voiceagent.testing import llm_server as L

from .conftest import (heard_like, loudest_slice, noise, place_call, segment_texts, silence, speak,
                       transcribe_heard, wait_for)

STAGE_TIMINGS = ("endpoint_wait_ms", "stt_ms", "llm_first_sentence_ms", "tts_first_ms", "voice_to_voice_ms")

LONG_REPLY = [  # a long first sentence, so the next ones are queued while it plays
    "The forecast for today is mild and mostly dry with a light breeze from the west and a few clouds "
    "drifting over the hills during the morning hours.",
    "Fog may linger by the river.",
    "The sun comes out later.",
    "Temperatures will reach about twenty degrees in the city centre and a little less along the coast.",
    "In the evening clouds will gather again and there could be a short shower before midnight, so take "
    "an umbrella if you are going out late.",
]


def test_what_time_is_it_tool_round_trip(make_stack, voice, llm, models):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is half past ten in the morning."))
    ch, _ = place_call(make_stack, voice)
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
    assert turn.said == ["It is half past ten in the morning."] and not turn.ack  # ACK_AFTER_MS=0: never
    heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
    assert heard_like(heard, "half past") and heard_like(heard, "morning"), heard  # ("ten" may be heard as "and")
    assert turn.timings["voice_to_voice_ms"] > 0
    ch.hangup()


def test_barge_in_breaks_playback_cancels_the_llm_and_keeps_only_what_was_heard(
        make_stack, voice, llm, models):
    # the reply streams its first three sentences, then holds the stream open: it is still being written
    # when the caller interrupts, however slow the machine is
    streamed = len(" ".join(LONG_REPLY[:3]).split())
    llm.push(L.text(" ".join(LONG_REPLY), chunk_delay=0.02, stall_after=streamed, stall_seconds=60),
             L.text("Tomorrow will be sunny."))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "What is the weather like?"))
    # the caller interrupts while the first sentence plays and the second is already queued
    def playing_with_more_queued():
        reply = sess.playbacks[1:]
        return any(p.status == "playing" for p in reply) and not reply[-1].started.is_set()

    assert wait_for(playing_with_more_queued, 20), [(p.text, p.status) for p in sess.playbacks]
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
    assert len(barge) == 1 and barge[0]["onset_to_break_ms"] > 0, barge
    assert len(sess.barge_ins) == 1, f"uuid_break sent {len(sess.barge_ins)} times for one interruption"
    assert heard_like(transcribe_heard(models, ch, start=heard[cut_at + 1][1]["start"]), "sunny")
    ch.hangup()


def test_a_short_cough_during_the_answer_does_not_interrupt(make_stack, voice, llm, models):
    answer = ["Apples grow on trees in many parts of the world.", "They are picked in the autumn.",
              "Most of them are eaten fresh or pressed into juice."]
    llm.push(L.text(" ".join(answer)))
    ch, sess = place_call(make_stack, voice)
    # a backchannel syllable Whisper does hear ("Yeah"), with less speech than BARGE_IN_MIN_MS
    cough = loudest_slice(speak(models, "Yeah."), 320)
    ch.say(speak(models, "Tell me about apples."))
    assert wait_for(lambda: len(sess.playbacks) >= 2, 20), "the answer never started"
    assert sess.playbacks[1].started.wait(10)
    ch.say(cough)
    assert wait_for(lambda: voice.turns, 20), "the answer never finished"
    assert ch.fork.audio.idle(), "the cough was not sent before the answer ended"
    assert not sess.barge_ins, "uuid_break was sent for a cough"
    played = segment_texts(sess, ch)[1:]
    assert [t for t, _ in played] == answer, played
    assert all(seg["status"] == "done" for _, seg in played), played
    assert len(llm.requests) == 1 and not voice.turns[0].interrupted
    ch.hangup()


def test_llm_error_and_timeout_are_apologised_for_and_the_call_goes_on(
        make_stack, make_voice, llm, models):
    voice = make_voice(llm_timeout=1.0)
    llm.push(L.error(500), L.stall(2.5), L.text("Apples are crisp and sweet."))
    ch, sess = place_call(make_stack, voice, speed=4.0)
    apology = voice.kit.profiles.select().phrases.apology
    question = speak(models, "Tell me about apples.")
    for n, failure in ((1, "500"), (2, "timeout")):
        start = len(ch.segments)
        ch.say(question)
        assert llm.wait_requests(n, timeout=20), f"question {n} never reached the LLM"
        assert wait_for(lambda: len(voice.turns) >= n, 20), f"no reply after the {failure}"
        assert voice.turns[-1].said == [apology], (failure, voice.turns[-1].said)
        assert len(ch.segments) == start + 1 and ch.segments[-1]["status"] == "done"
        if failure == "500":  # the phrase is cached: what the caller hears is the same both times
            heard = transcribe_heard(models, ch, start=ch.segments[start]["start"])
            assert heard_like(heard, "sorry"), (failure, heard)
    ch.say(question)
    assert wait_for(lambda: len(voice.turns) >= 3, 20), "no answer after the failures"
    assert voice.turns[-1].said == ["Apples are crisp and sweet."]
    heard = transcribe_heard(models, ch, start=ch.segments[-1]["start"])
    assert heard_like(heard, "crisp") and "sorry" not in heard, heard
    assert not ch.hangup_cause, "the call ended after two failures"
    ch.hangup()


def test_tool_call_written_as_json_text_is_run_and_never_spoken(make_stack, voice, llm, models):
    llm.push(L.json_tool_text("get_datetime", {}), L.text("It is half past ten."))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "What time is it?"))
    assert llm.wait_requests(2, timeout=20), "the recovered tool call's result never went back to the LLM"
    second = llm.requests[1]["messages"]
    calls = [c for m in second if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == ["get_datetime"], second
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[-1]["tool_call_id"] == calls[0]["id"] and json.loads(tool_msgs[-1]["content"])
    assert wait_for(lambda: voice.turns, 20)
    turn = voice.turns[-1]
    assert turn.said == ["It is half past ten."] and turn.tools[0]["name"] == "get_datetime"
    assert len(ch.segments) == 2, segment_texts(sess, ch)
    heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
    assert heard_like(heard, "half past"), heard
    for leaked in ("{", "}", "argument", "name", "date time", "datetime"):
        assert leaked not in heard, heard
    ch.hangup()


def test_silence_and_noise_make_no_turn(make_stack, voice, llm, models):
    llm.push(L.text("Hello to you too."))
    ch, sess = place_call(make_stack, voice, speed=4.0)
    received = sess.samples_received
    ch.say(silence(1.5))
    ch.say(noise(3.0, rms=0.03))
    ch.say(silence(1.0))  # longer than END_OF_TURN_MS: a turn would end here
    assert wait_for(lambda: sess.samples_received >= received + 5.5 * sess.sample_rate, 20)
    ch.say(speak(models, "Hello there."))
    assert llm.wait_requests(1, timeout=20)
    assert wait_for(lambda: voice.turns, 20)
    users = [m["content"] for m in llm.requests[0]["messages"] if m["role"] == "user"]
    assert len(users) == 1 and "hello" in users[0].lower(), users
    assert len(llm.requests) == 1 and len(voice.turns) == 1
    ch.hangup()


def test_goodbye_hangs_up_after_the_goodbye_has_played(make_stack, voice, llm, models):
    llm.push(L.tool_call("hang_up", {}, text="Thanks for calling. Goodbye!"))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Thanks, goodbye."))
    assert ch.wait_hangup(20), "the agent never hung up"
    assert sess.ended_by == "agent"
    assert len(llm.requests) == 1 and "goodbye" in llm.requests[0]["messages"][-1]["content"].lower()
    played = segment_texts(sess, ch)
    assert [t for t, _ in played[1:]] == ["Thanks for calling.", "Goodbye!"], played
    last = played[-1][1]
    goodbye = next(p for p in sess.playbacks if p.text == "Goodbye!")
    assert all(seg["status"] == "done" for _, seg in played), played
    # the emulator also reports "done" for a playback cut short by the hangup: compare the length
    assert last["end"] - last["start"] >= goodbye.duration - 0.02, (last, goodbye.duration)
    # segment ends are start + length; the timeline has when the channel really fired each event
    hung_up_at = next(t for t, key in ch.timeline if key == "CHANNEL_HANGUP")
    stops = [t for t, key in ch.timeline if key == "PLAYBACK_STOP"]
    assert len(stops) == len(played) and stops[-1] <= hung_up_at, (stops, hung_up_at)
    assert hung_up_at >= last["end"] - 0.01, (hung_up_at, last)
    # the recording of the last segment is the goodbye itself, not silence: compare it with the audio
    # the agent synthesized (Whisper's reading of a lone "Goodbye!" is too unstable to assert on)
    pcm, rate = ch.heard_audio()
    heard_last = pcm16_to_float(pcm)[int(last["start"] * rate):int(last["end"] * rate)]
    assert rms_dbfs(heard_last) > -35.0, rms_dbfs(heard_last)
    turn = voice.turns[-1]
    assert turn.tools and turn.tools[0]["name"] == "hang_up"
    assert turn.heard_by_caller == ["Thanks for calling.", "Goodbye!"]


def test_two_calls_at_once_hear_only_their_own_answers(make_stack, voice, llm, models):
    # the answer depends on which call asks (its caller number is in the per-call system message), so
    # the check does not hinge on Whisper hearing one word right; each call must get only its own
    def by_caller(body):
        system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
        if "+15551230001" in system:
            return L.text("The capital of France is Paris.", chunk_delay=0.02)
        if "+15551230002" in system:
            return L.text("The capital of Germany is Berlin.", chunk_delay=0.02)
        return L.text("Which country did you mean?")

    llm.handler = by_caller
    stack = make_stack(voice, speed=2.0)
    (ch_a, sess_a), (ch_b, sess_b) = [place_call(make_stack, voice, stack=stack, caller=c)
                                      for c in ("+15551230001", "+15551230002")]
    ch_a.say(speak(models, "What is the capital of France?"))
    ch_b.say(speak(models, "What is the capital of Germany?"))
    calls = ((ch_a, sess_a, "paris", "berlin"), (ch_b, sess_b, "berlin", "paris"))

    def answered(ch, sess, mine):
        return any(mine in text.lower() and seg["status"] == "done" for text, seg in segment_texts(sess, ch))

    assert wait_for(lambda: all(answered(ch, sess, mine) for ch, sess, mine, _ in calls), 30), \
        [[t for t, _ in segment_texts(sess, ch)] for ch, sess, _, _ in calls]
    for ch, sess, mine, other in calls:
        said = " ".join(t for t, _ in segment_texts(sess, ch)[1:]).lower()
        assert other not in said, said  # never the other call's answer
        heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
        assert heard_like(heard, "capital") and other not in heard, (mine, heard)
    ch_a.hangup()
    ch_b.hangup()


def test_dtmf_reaches_the_llm_and_the_answer_is_played(make_stack, voice, llm, models):
    llm.push(L.text("You chose option one."))
    ch, sess = place_call(make_stack, voice)
    ch.press("1")
    assert llm.wait_requests(1, timeout=20)
    assert llm.requests[0]["messages"][-1] == {"role": "user", "content": "The caller pressed 1 on the keypad."}
    assert wait_for(lambda: voice.turns, 20), "the answer never finished"
    turn = voice.turns[-1]
    assert turn.kind == "dtmf" and turn.said == ["You chose option one."]
    assert len(ch.segments) == 2 and ch.segments[1]["status"] == "done"
    assert heard_like(transcribe_heard(models, ch, start=ch.segments[1]["start"]), "option")
    ch.hangup()


def test_warm_start_runs_one_synthetic_turn_through_every_path(make_voice, llm):
    llm.push(L.text("It is nine o'clock."), L.text("Hello."))
    voice = make_voice(llm_warm_prefix="on")
    report = voice.warm()
    for stage in ("litellm_import", "fixed_phrases", "vad_endpointer", "stt", "llm_turn", "llm_prefix", "tts_reply",
                  "encode_playback"):
        assert report.get(stage, -1) >= 0, (stage, report)
    assert report["turn_found"], "the endpointer found no turn in the synthetic question"
    assert heard_like(report["heard"], "what time is it"), report["heard"]
    assert report["said"] == "It is nine o'clock.", report
    assert llm.wait_requests(2, timeout=10), "the warm-up never reached the (local) LLM"
    assert "time" in llm.requests[0]["messages"][-1]["content"].lower()
    assert [m["role"] for m in llm.requests[1]["messages"]][:1] == ["system"]  # the static prefix, warmed last


def test_each_call_warms_its_own_prompt_prefix_while_the_greeting_plays(make_stack, make_voice, llm,
                                                                         models):
    llm.push(L.text("Hi."), L.text("Hi."), L.text("It is half past ten."))
    voice = make_voice(llm_warm_prefix="on")
    ch, sess = place_call(make_stack, voice)
    assert llm.wait_requests(1, timeout=10), "no warm-up request for the call"
    warm = llm.requests[0]["messages"]
    assert [m["role"] for m in warm] == ["system", "system", "assistant"], warm  # prompt, context, greeting
    assert "+15551230001" in warm[1]["content"]  # this call's own context, before the caller said a word
    ch.say(speak(models, "What time is it?"))
    assert llm.wait_requests(2, timeout=20)
    asked = llm.requests[1]["messages"]
    assert asked[:3] == warm and asked[-1]["role"] == "user", asked  # the real turn extends the warmed prefix
    ch.hangup()


def test_a_late_answer_is_preceded_by_a_short_acknowledgement(make_stack, make_voice, llm, models):
    llm.push(L.text("Apples are crisp and sweet.", delay=2.0))
    voice = make_voice(ack_after_ms=800, llm_timeout=5.0)
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Tell me about apples."))
    assert wait_for(lambda: voice.turns, 30), "no answer"
    turn = voice.turns[-1]
    thinking = voice.kit.profiles.select().phrases.thinking
    assert turn.ack in thinking and turn.said == ["Apples are crisp and sweet."], (turn.ack, turn.said)
    played = [t for t, _ in segment_texts(sess, ch)[1:]]
    assert played == [turn.ack, "Apples are crisp and sweet."], played  # the acknowledgement first, once
    assert 0 < turn.timings["ack_ms"] < turn.timings["answer_to_voice_ms"], turn.timings
    assert turn.timings["voice_to_voice_ms"] == turn.timings["ack_ms"]  # the caller's silence ended with it
    assert turn.heard_by_caller[-1] == "Apples are crisp and sweet."
    ch.hangup()


def test_an_answer_ready_before_the_acknowledgement_is_not_held_back_to_it(make_stack, make_voice, llm, models):
    """The reply used to join the acknowledgement's sleeping greenlet: every answer waited out ACK_AFTER_MS."""
    llm.push(L.text("Apples are crisp and sweet."))
    voice = make_voice(ack_after_ms=10000)
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Tell me about apples."))
    assert wait_for(lambda: voice.turns, 8), "the answer waited for the acknowledgement's moment"
    turn = voice.turns[-1]
    assert turn.ack == "" and turn.said == ["Apples are crisp and sweet."], (turn.ack, turn.said)
    ch.hangup()
