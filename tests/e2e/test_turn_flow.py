"""Turn flow in emulated calls (real Whisper, Piper, VAD; scripted LLM): answers started at the first pause
(used when the transcript holds, cancelled when the caller carries on), the pre-roll that keeps a short
first word, backchannels that are not answered, the idle reprompt and its polite hang-up."""
import numpy as np

from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float, resample
from voiceagent.testing import llm_server as L

from .conftest import place_call, segment_texts, silence, speak, wait_for

# a long end-of-turn window at real speed, so the speculative transcript of the first pause is always
# ready (and the LLM asked) before the turn ends, however busy the machine is
EARLY = dict(end_of_turn_ms=4000, pause_ms=120, smart_turn=False)  # the fixed rule: a long pause stays a pause


# the caller pauses until the preemptive request is made (the speculative transcript of a loaded 2-core
# machine can take longer than any fixed pause), at most END_OF_TURN_MS: then carries on
LONG_PAUSE = dict(EARLY, end_of_turn_ms=5000)


def carry_on_after_the_early_request(ch, llm, models):
    ch.say(speak(models, "When do you open?"))
    assert llm.wait_requests(1, timeout=4.5), "no preemptive request within the pause"
    ch.say(speak(models, "On Sunday, I mean."))


def user_messages(body):
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def joined(*parts):
    """One caller utterance from (pcm, rate) parts; a float is that many seconds of silence."""
    rate = next(p[1] for p in parts if not isinstance(p, float))
    pcm = [silence(p, rate)[0] if isinstance(p, float) else p[0] for p in parts]
    assert all(isinstance(p, float) or p[1] == rate for p in parts)
    return b"".join(pcm), rate


def test_a_preemptive_answer_is_used_when_the_transcript_holds(make_stack, make_voice, llm, models):
    voice = make_voice(**EARLY)
    llm.push(L.text("We open at nine in the morning."))
    ch, sess = place_call(make_stack, voice, speed=1.0)
    ch.say(speak(models, "When do you open?"))
    assert wait_for(lambda: voice.turns and voice.turns[-1].said, 30), "no answer"
    turn = voice.turns[-1]
    assert turn.preemptive is True, turn
    assert len(llm.requests) == 1 and llm.cancelled == 0, [user_messages(b) for b in llm.requests]
    assert "open" in user_messages(llm.requests[0])[-1].lower()
    assert turn.said == ["We open at nine in the morning."]
    assert wait_for(lambda: len(ch.segments) >= 2, 20)
    assert segment_texts(sess, ch)[-1][0] == "We open at nine in the morning."
    ch.hangup()


def test_a_preemptive_answer_is_cancelled_when_the_caller_carries_on(make_stack, make_voice, llm, models):
    def answer(body):
        said = user_messages(body)[-1].lower()
        if "sunday" in said:
            return L.text("On Sunday we open at ten.")
        return L.text("We open at nine.", stall_after=0, stall_seconds=90)  # still being written when cancelled

    llm.handler = answer
    voice = make_voice(**LONG_PAUSE)
    ch, sess = place_call(make_stack, voice, speed=1.0)
    carry_on_after_the_early_request(ch, llm, models)
    assert llm.cancelled_event.wait(30), "the preemptive stream was never closed"
    assert wait_for(lambda: voice.turns and voice.turns[-1].said, 30), "no answer"
    first = user_messages(llm.requests[0])[-1].lower()
    assert "open" in first and "sunday" not in first, first
    assert "sunday" in user_messages(llm.requests[-1])[-1].lower()
    assert voice.turns[-1].said == ["On Sunday we open at ten."]
    assert len(voice.turns) == 1  # one turn: the fragment was never answered
    ch.hangup()


def test_a_tool_the_preemptive_stream_asks_for_is_never_run_when_the_caller_carries_on(
        make_stack, make_voice, llm, models):
    def answer(body):
        said = user_messages(body)[-1].lower()
        if "sunday" in said:
            return L.text("On Sunday we open at ten.")
        return L.tool_call("get_datetime", {})  # the fragment's answer wants a tool: held, never run

    llm.handler = answer
    voice = make_voice(**LONG_PAUSE)
    ch, _ = place_call(make_stack, voice, speed=1.0)
    carry_on_after_the_early_request(ch, llm, models)
    assert wait_for(lambda: voice.turns and voice.turns[-1].said, 30), "no answer"
    assert len(llm.requests) >= 2 and "sunday" not in user_messages(llm.requests[0])[-1].lower()
    assert voice.turns[-1].tools == [] and voice.turns[-1].said == ["On Sunday we open at ten."]
    assert not any(m["role"] == "tool" for b in llm.requests for m in b["messages"])  # no tool result ever sent
    ch.hangup()


def hesitant_question(models):
    """ "Is — the restaurant open on Sunday evening?": a short first word (shorter than MIN_SPEECH_MS) and a
    hesitation long enough that the endpointer drops it as a click and starts the turn at "the"."""
    pcm, rate = speak(models, "Is the restaurant open on Sunday evening?")
    x = pcm16_to_float(pcm)
    if rate != 16000:
        x = resample(x, rate, 16000)
    cut = int(0.215 * 16000)  # after "Is" (Piper, noise 0: the same samples every run)
    gap = np.zeros(int(0.35 * 16000), dtype=np.float32)
    return float_to_pcm16(np.concatenate([x[:cut], gap, x[cut:]])), 16000


def test_the_pre_roll_keeps_a_short_first_word(make_stack, make_voice, llm, models):
    voice = make_voice()  # SPEECH_PREROLL_MS's default
    llm.push(L.text("Yes, until ten."))
    ch, _ = place_call(make_stack, voice)
    ch.say(hesitant_question(models))
    assert llm.wait_requests(1, 30), "the question never reached the LLM"
    said = user_messages(llm.requests[0])[-1]
    assert said.lower().startswith("is the restaurant"), said
    ch.hangup()


def test_a_backchannel_after_a_statement_is_not_answered(make_stack, make_voice, llm, models):
    voice = make_voice()
    llm.push(L.text("Your table for two is booked."), L.text("We open at nine."))
    ch, sess = place_call(make_stack, voice)
    ch.say(speak(models, "Please book a table for two."))
    assert wait_for(lambda: voice.turns and voice.turns[-1].said and len(ch.segments) >= 2, 30)
    ch.say(joined(speak(models, "Okay."), 1.5,
                  speak(models, "When do you open?")))
    assert llm.wait_requests(2, 30), "the question after the backchannel never reached the LLM"
    assert wait_for(lambda: len(voice.turns) >= 2 and voice.turns[-1].said, 30)
    users = user_messages(llm.requests[1])
    assert len(users) == 2 and "open" in users[-1].lower(), users  # "Okay." was never a turn
    assert len(llm.requests) == 2
    ch.hangup()


def test_idle_reprompts_then_a_polite_hang_up(make_stack, make_voice, llm, models):
    voice = make_voice(idle_reprompt_s=3.0, idle_reprompts=2)
    ch, sess = place_call(make_stack, voice)
    assert ch.wait_hangup(60), "the agent never hung up on the silent line"
    texts = [t for t, _ in segment_texts(sess, ch)]
    profile = voice.kit.profiles.select(None, None)
    assert texts[1:] == [profile.phrases.still_there] * 2 + [profile.phrases.goodbye], texts
    assert sess.ended_by == "agent"
    assert llm.requests == []
