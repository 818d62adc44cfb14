"""Timers and callbacks set by voice, fired by the real parts: the LLM (scripted) calls the tool in an emulated
call, ``voiceagent jobs worker`` (RQ and its scheduler, a process) runs the schedule when due, and the caller
hears the timer on the same call, or is called back (the emulator answers) and hears it, or the reason of
the callback they asked for."""
import redis

from tests.jobs_procs import jobs_worker  # noqa: F401 - fixture
from voiceagent.config import load_settings
from voiceagent.emulator.stack import CALLER_NUMBER
from voiceagent.records.client import CallClient
from voiceagent.schedules.service import Schedules
from voiceagent.testing import llm_server as L

from .conftest import heard_like, place_call, segment_texts, speak, transcribe_heard, wait_for

PROFILES = """
profiles:
  - name: home
    timezone: America/New_York
    greeting: "Hello, how can I help?"
    tools: [set_timer, schedule_callback, list_scheduled, cancel_scheduled, hang_up]
"""


def _voice(make_voice, tmp_path, redis_prefix):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    # the worker's scheduler writes under the test's prefix; 1 s timers are allowed here (TIMER_MIN_SECONDS)
    return make_voice(profiles_file=str(path), redis_prefix=redis_prefix, timer_min_seconds=1)


def _only_schedule(redis_prefix):
    sv = Schedules.from_settings(load_settings(redis_prefix=redis_prefix))
    ids = sv.store.ids()
    assert len(ids) == 1, ids
    return sv, sv.store.get(ids[0])


def _run(sv, sched, worker, timeout=40):
    assert wait_for(lambda: sv.store.run(sched.id, sched.next_due) is not None, timeout), worker.logs()
    return sv.store.run(sched.id, sched.next_due)


def _callback_channel(emu, call_id):
    assert wait_for(lambda: call_id in emu.channels and emu.channels[call_id].answered, 40), "never called back"
    ch = emu.channels[call_id]
    assert wait_for(lambda: ch.segments and all(s["status"] == "done" for s in ch.segments), 40), "no opening"
    return ch


def test_a_timer_set_in_a_call_is_said_into_that_call_while_the_caller_is_there(
        make_stack, make_voice, llm, models, tmp_path, redis_prefix, jobs_worker):
    voice = _voice(make_voice, tmp_path, redis_prefix)
    llm.push(L.tool_call("set_timer", {"seconds": 3, "label": "the oven"}), L.text("Okay, the timer is set."))
    worker = jobs_worker()
    stack = make_stack(voice)
    ch, sess = place_call(make_stack, voice, stack=stack, caller=CALLER_NUMBER)
    ch.say(speak(models, "Set a timer for three seconds for the oven."))
    assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
    tool_msgs = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[-1].startswith("Timer set: a timer for the oven in 3 seconds"), tool_msgs
    sv, sched = _only_schedule(redis_prefix)
    assert sched.kind == "timer" and sched.owner == CALLER_NUMBER and sched.origin_call == sess.id

    def timer_played():
        return [seg for text, seg in segment_texts(sess, ch)
                if text == "Your timer for the oven is up." and seg["status"] == "done"]
    assert wait_for(timer_played, 60), (segment_texts(sess, ch), worker.logs())
    run = sv.store.run(sched.id, sched.next_due)
    assert run.status == "said" and run.call_id == sess.id
    heard = transcribe_heard(models, ch, start=timer_played()[0]["start"])
    assert heard_like(heard, "your timer for the oven is up"), heard
    assert [c for c in stack.emulator.all_channels() if c.destination == CALLER_NUMBER] == []  # nobody dialed
    ch.hangup()


def test_a_timer_calls_the_caller_back_after_they_hung_up(
        make_stack, make_voice, llm, models, tmp_path, redis_prefix, jobs_worker):
    voice = _voice(make_voice, tmp_path, redis_prefix)
    llm.push(L.tool_call("set_timer", {"seconds": 8, "label": "the laundry"}), L.text("Timer set."))
    worker = jobs_worker()
    stack = make_stack(voice, originate_gateway="carrier1")
    stack.emulator.script_destination(CALLER_NUMBER, outcome="answer")
    ch, sess = place_call(make_stack, voice, stack=stack, caller=CALLER_NUMBER)
    ch.say(speak(models, "Set a timer for eight seconds for the laundry."))
    assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
    ch.hangup()  # gone before the timer ends
    sv, sched = _only_schedule(redis_prefix)
    run = _run(sv, sched, worker)
    assert run.status == "placed" and run.call_id, run
    rec = CallClient(redis.Redis(), redis_prefix).get(run.call_id)
    assert rec.priority == "high" and rec.to == CALLER_NUMBER and rec.profile == "home"
    back = _callback_channel(stack.emulator, run.call_id)
    heard = transcribe_heard(models, back)
    assert heard_like(heard, "your timer for the laundry is up"), heard
    back.hangup()


def test_a_callback_call_opens_with_its_reason_and_the_conversation_knows_it(
        make_stack, make_voice, llm, models, tmp_path, redis_prefix, jobs_worker):
    voice = _voice(make_voice, tmp_path, redis_prefix)
    llm.push(L.tool_call("schedule_callback", {"reason": "the invoice", "in_minutes": 0.1}),
             L.text("I will call you back."), L.text("The invoice is paid."))
    worker = jobs_worker()
    stack = make_stack(voice, originate_gateway="carrier1")
    stack.emulator.script_destination(CALLER_NUMBER, outcome="answer")
    ch, sess = place_call(make_stack, voice, stack=stack, caller=CALLER_NUMBER)
    ch.say(speak(models, "Call me back about the invoice in a few seconds."))
    assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
    ch.hangup()
    sv, sched = _only_schedule(redis_prefix)
    assert sched.kind == "callback" and sched.owner == CALLER_NUMBER
    run = _run(sv, sched, worker)
    assert run.status == "placed", run
    back = _callback_channel(stack.emulator, run.call_id)
    heard = transcribe_heard(models, back)
    assert heard_like(heard, "calling you back as you asked the invoice"), heard
    back.say(speak(models, "Is it paid?"))
    assert llm.wait_requests(3, timeout=30), "the callback's conversation never asked the LLM"
    system = " ".join(m["content"] for m in llm.requests[2]["messages"] if m["role"] == "system")
    assert "The reason: the invoice" in system, system
    back.hangup()
