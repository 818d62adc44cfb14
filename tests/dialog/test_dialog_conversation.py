"""The conversation state machine against the scripted server (real HTTP through litellm)."""
import json

import gevent
import pytest

from voiceagent.config import load_settings
from voiceagent.dialog.conversation import (CUT_OFF_MARK, DialogKit, HangupRequested, Say, ToolFinished,
                                            ToolStarted, TransferRequested)
from voiceagent.dialog.llm import LlmClient
from voiceagent.testing import llm_server as S


def run(gen):
    return list(gen)


def says(events, kind=None):
    return [e.text for e in events if isinstance(e, Say) and (kind is None or e.kind == kind)]


def tool_messages(request):
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_sentences_arrive_before_the_stream_ends(server, make_conv):
    server.push(S.text("Hello there. " + "This takes a while to say, word by word " * 3 + "done.", chunk_delay=0.03))
    conv = make_conv()
    gen = conv.respond("hi")
    first = next(gen)
    assert first == Say("Hello there.") and server.completed == 0  # the LLM is still writing
    rest = list(gen)
    assert server.completed == 1 and says(rest)[-1].endswith("done.")
    t = conv.last_timings
    assert t.first_token is not None and t.first_sentence is not None and t.first_sentence <= t.total
    assert "llm_ttft_ms" in t and t["llm_first_sentence_ms"] == t.first_sentence * 1000


def test_system_prompt_has_local_time_and_caller(server, make_conv):
    server.push(S.text("Okay."))
    run(make_conv().respond("hi"))
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert system["content"] == "You help. Time 3:07 PM Tuesday March 5, 2024 in Europe/Paris; caller +15551234567."


def test_default_profile_keeps_the_prompt_static_and_sends_call_facts_separately(server):
    from datetime import datetime, timezone

    from voiceagent.dialog.conversation import Conversation
    from voiceagent.dialog.llm import LlmClient
    from voiceagent.dialog.profiles import Profile
    from voiceagent.dialog.tools import FixedClock, ToolContext, ToolRegistry

    def messages_at(minute):
        server.push(S.text("Okay."))
        clock = FixedClock(datetime(2024, 3, 5, 14, minute, tzinfo=timezone.utc))
        prof = Profile(name="p", timezone="UTC")
        conv = Conversation(prof, LlmClient(server.base_url, "m", timeout=5), ToolRegistry(),
                            ToolContext(caller="+15550001111", clock=clock), clock)
        run(conv.respond("hi"))
        return server.requests[-1]["messages"]

    a, b = messages_at(7), messages_at(8)
    assert a[0] == b[0] and a[0]["role"] == "system" and "{" not in a[0]["content"]  # cacheable prefix
    assert a[1]["role"] == "system" and "2:07 PM" in a[1]["content"] and "+15550001111" in a[1]["content"]
    assert "2:08 PM" in b[1]["content"]


def test_tool_call_result_goes_back_and_answer_is_spoken(server, make_conv):
    server.push(S.tool_call("get_datetime", {}), S.text("It is seven past three."))
    events = run(make_conv().respond("What time is it?"))
    assert [type(e).__name__ for e in events] == ["ToolStarted", "ToolFinished", "Say"]
    assert events[1].ok and events[1].result["time"] == "3:07 PM" and events[1].result["weekday"] == "Tuesday"
    second = server.requests[1]
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "get_datetime"
    (tool_msg,) = tool_messages(second)
    assert tool_msg["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool_msg["content"])["timezone"] == "Europe/Paris"


def test_multiple_tool_rounds(server, make_conv):
    server.push(S.tool_call("add_numbers", {"a": 1, "b": 2}), S.tool_call("add_numbers", {"a": 3, "b": 4}),
                S.text("Three and seven."))
    events = run(make_conv().respond("add stuff"))
    assert [e.result for e in events if isinstance(e, ToolFinished)] == [{"sum": 3}, {"sum": 7}]
    assert says(events) == ["Three and seven."]
    assert len(server.requests) == 3 and len(tool_messages(server.requests[2])) == 2


def test_tool_rounds_are_bounded_then_tools_are_withheld(server, make_conv):
    server.push(*[S.tool_call("add_numbers", {"a": 1, "b": 1}) for _ in range(2)], S.text("Enough."))
    events = run(make_conv(max_tool_rounds=2).respond("loop"))
    assert says(events) == ["Enough."]
    assert "tools" in server.requests[1] and "tools" not in server.requests[2]


def test_json_tool_call_in_text_is_run_and_not_spoken(server, make_conv):
    server.push(S.json_tool_text("add_numbers", {"a": 20, "b": 22}, style="fence"), S.text("It's forty-two."))
    events = run(make_conv().respond("add"))
    assert says(events) == ["It's forty-two."]
    assert [e for e in events if isinstance(e, ToolFinished)][0].result == {"sum": 42}


def test_invalid_json_arguments_become_a_failed_tool_result(server, make_conv):
    server.push(S.tool_call("add_numbers", '{"a": 1,'), S.text("Sorry, let me retry."))
    events = run(make_conv().respond("add"))
    fin = [e for e in events if isinstance(e, ToolFinished)][0]
    assert not fin.ok and "not valid JSON" in fin.result["error"]
    assert "invalid arguments" in tool_messages(server.requests[1])[0]["content"]
    assert says(events) == ["Sorry, let me retry."]


def test_schema_mismatch_becomes_a_failed_tool_result(server, make_conv):
    server.push(S.tool_call("add_numbers", {"a": "many"}), S.text("Hmm."))
    events = run(make_conv().respond("add"))
    fin = [e for e in events if isinstance(e, ToolFinished)][0]
    assert not fin.ok and "a: " in fin.result["error"] and "b: Field required" in fin.result["error"]


def test_raising_tool_is_reported_and_the_conversation_continues(server, make_conv):
    server.push(S.tool_call("explode", {}), S.text("That failed, sorry."), S.text("Still here."))
    conv = make_conv()
    events = run(conv.respond("do it"))
    fin = [e for e in events if isinstance(e, ToolFinished)][0]
    assert not fin.ok and "database is on fire" in fin.result["error"]
    assert json.loads(tool_messages(server.requests[1])[0]["content"])["error"].startswith("RuntimeError")
    assert says(run(conv.respond("again"))) == ["Still here."]


def test_unknown_tool_from_the_llm_is_a_failed_result(server, make_conv):
    server.push(S.tool_call("rm_rf", {}), S.text("Cannot."))
    events = run(make_conv().respond("x"))
    assert "unknown tool" in [e for e in events if isinstance(e, ToolFinished)][0].result["error"]


def test_slow_tool_gets_a_thinking_phrase_first(server, make_conv):
    server.push(S.tool_call("slow_lookup", {}), S.text("Found it."))
    events = run(make_conv().respond("look it up"))
    assert isinstance(events[0], Say) and events[0].kind == "filler" and events[0].text in ("One moment.", "Let me check.")


def test_http_500_is_an_apology_and_the_call_continues(server, make_conv):
    server.push(S.error(500), S.text("Back again."))
    conv = make_conv()
    events = run(conv.respond("hi"))
    assert events == [Say(conv.profile.phrases.apology, kind="apology")]
    assert says(run(conv.respond("hi again"))) == ["Back again."] and conv.failures == 0


def test_timeout_is_an_apology(server, make_conv):
    server.push(S.stall(3))
    conv = make_conv(llm=LlmClient(server.base_url, "scripted", timeout=0.4))
    with gevent.Timeout(3):
        events = run(conv.respond("hi"))
    assert [e.kind for e in events] == ["apology"] and conv.last_timings.failed


def test_repeated_failures_say_goodbye_and_hang_up(server, make_conv):
    server.push(S.error(500), S.error(503), S.error(500))
    conv = make_conv(max_failures=3)
    assert [e.kind for e in run(conv.respond("a"))] == ["apology"]
    assert [e.kind for e in run(conv.respond("b"))] == ["apology"]
    events = run(conv.respond("c"))
    assert events == [Say(conv.profile.phrases.failure_goodbye, kind="goodbye"), HangupRequested("llm_failures")]


def test_cancel_stops_the_reply_and_closes_the_stream(server, make_conv):
    server.push(S.text("First sentence here. " + "and more words " * 200, chunk_delay=0.01))
    conv = make_conv()
    events = []
    with gevent.Timeout(5):
        for e in conv.respond("tell me a story"):
            events.append(e)
            if len(events) == 1:
                gevent.spawn(conv.cancel)  # barge-in arrives from the VAD greenlet
    assert server.cancelled_event.wait(5)
    assert says(events)[0] == "First sentence here." and conv.last_timings.cancelled
    assert server.completed == 0


def test_abandoned_generator_closes_the_stream(server, make_conv):
    server.push(S.text("One. " + "two " * 300, chunk_delay=0.01))
    gen = make_conv().respond("x")
    next(gen)
    gen.close()
    assert server.cancelled_event.wait(5)


def test_history_keeps_only_what_was_heard(server, make_conv):
    server.push(S.text("One is heard. Two is cut. Three never played."), S.text("Okay."))
    conv = make_conv()
    events = run(conv.respond("count"))
    s1, s2, s3 = [e for e in events if isinstance(e, Say)]
    conv.record_heard([s1], s2)
    run(conv.respond("go on"))
    msgs = server.requests[1]["messages"]
    assistant = [m for m in msgs if m["role"] == "assistant"]
    assert assistant[-1]["content"] == "One is heard. Two is cut." + CUT_OFF_MARK
    assert "Three" not in json.dumps(msgs)
    assert msgs[-1] == {"role": "user", "content": "go on"}


def test_reply_not_heard_at_all_is_dropped_but_tool_calls_stay(server, make_conv):
    server.push(S.tool_call("get_datetime", {}, text="Let me look."), S.text("It is three."), S.text("Fine."))
    conv = make_conv()
    run(conv.respond("time?"))
    conv.record_heard([], None)
    run(conv.respond("next"))
    msgs = server.requests[2]["messages"]
    assistants = [m for m in msgs if m["role"] == "assistant"]
    assert len(assistants) == 1 and assistants[0]["tool_calls"] and not assistants[0].get("content")
    assert len(tool_messages(server.requests[2])) == 1


def test_history_window_is_bounded(server, make_conv):
    conv = make_conv(history_turns=2)
    for i in range(4):
        server.push(S.text(f"Reply {i}."))
        run(conv.respond(f"question {i}"))
    users = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "user"]
    assert users == ["question 2", "question 3"]


def test_hang_up_tool_ends_after_the_goodbye(server, make_conv):
    server.push(S.tool_call("hang_up", {}, text="Goodbye, take care!"))
    events = run(make_conv().respond("bye"))
    assert [type(e).__name__ for e in events] == ["Say", "ToolStarted", "ToolFinished", "HangupRequested"]
    assert events[0].text == "Goodbye, take care!" and len(server.requests) == 1


def test_hang_up_without_words_says_the_profile_goodbye(server, make_conv):
    server.push(S.tool_call("hang_up", {}))
    conv = make_conv()
    events = run(conv.respond("bye"))
    assert says(events, "goodbye") == [conv.profile.phrases.goodbye] and events[-1] == HangupRequested("assistant")


def test_transfer_tool_requests_the_configured_destination(server, make_conv):
    server.push(S.tool_call("transfer_call", {"target": "Sales"}, text="Connecting you to sales."))
    events = run(make_conv().respond("sales please"))
    assert events[-1] == TransferRequested("1002")


def test_transfer_to_unknown_target_is_a_failed_result(server, make_conv):
    server.push(S.tool_call("transfer_call", {"target": "ceo"}), S.text("I can connect you to operator or sales."))
    events = run(make_conv().respond("ceo please"))
    fin = [e for e in events if isinstance(e, ToolFinished)][0]
    assert not fin.ok and "operator, sales" in fin.result["error"]
    assert not any(isinstance(e, TransferRequested) for e in events)


def test_dtmf_mapped_actions(server, make_conv):
    conv = make_conv()
    assert run(conv.on_dtmf("0")) == [Say(conv.profile.phrases.transfer, kind="transfer"), TransferRequested("1001")]
    assert run(conv.on_dtmf("9"))[-1] == HangupRequested("dtmf")
    assert says(run(conv.on_dtmf("5"))) == ["Our hours are nine to five."]
    assert server.requests == []


def test_dtmf_unmapped_goes_to_the_llm(server, make_conv):
    server.push(S.text("You pressed one."))
    events = run(make_conv().on_dtmf("1"))
    assert says(events) == ["You pressed one."]
    assert server.requests[0]["messages"][-1]["content"] == "The caller pressed 1 on the keypad."


def test_greeting_is_in_the_history(server, make_conv):
    server.push(S.text("Sure."))
    conv = make_conv()
    assert conv.greeting() == Say("Hi there!", kind="greeting")
    run(conv.respond("hello"))
    assert server.requests[0]["messages"][1] == {"role": "assistant", "content": "Hi there!"}


def test_say_carries_speech_normalised_text(server, make_conv):
    server.push(S.text("It costs $5.20 at 10:30."))
    (say,) = run(make_conv().respond("price"))
    assert say.text == "It costs $5.20 at 10:30." and say.speech == "It costs five dollars and twenty cents at ten thirty."


def test_demo_kit_without_llm_answers_time_with_the_rule_based_responder(tmp_path):
    s = load_settings(llm_base_url="", profiles_file="", tools_dirs="")
    kit = DialogKit.from_settings(s)
    try:
        conv = kit.conversation(direction="inbound", caller="+1555", callee="1000")
        events = run(conv.respond("What time is it?"))
        assert [type(e).__name__ for e in events[:2]] == ["ToolStarted", "ToolFinished"]
        assert says(events)[0].startswith("It is ")
        events = run(conv.respond("Thanks, goodbye"))
        assert isinstance(events[-1], HangupRequested)
    finally:
        kit.close()


def test_mutual_goodbye_without_hang_up_tool_still_ends_the_call(server, make_conv):
    server.push(S.text("Goodbye, have a nice day!"))
    events = run(make_conv().respond("Thanks, goodbye."))
    assert [type(e).__name__ for e in events] == ["Say", "HangupRequested"]
    server.push(S.text("Bye is a short word."))
    events = run(make_conv().respond("How do you spell it?"))
    assert "HangupRequested" not in [type(e).__name__ for e in events]


def test_rule_based_responder_runs_in_process_and_is_the_testing_server_s_rules():
    from voiceagent.dialog.rule_based import RuleBasedLlm, rule_based_answer
    from voiceagent.dialog.llm_types import TextDelta, ToolCall

    s = load_settings(llm_base_url="rule-based", profiles_file="", tools_dirs="")
    kit = DialogKit.from_settings(s)
    assert isinstance(kit.llm, RuleBasedLlm) and kit.demo_server is kit.llm  # no server, no litellm
    tools = [{"type": "function", "function": {"name": n}} for n in ("get_datetime", "hang_up")]
    items = list(kit.llm.stream([{"role": "user", "content": "Okay, goodbye"}], tools))
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "Goodbye, and thank you for calling."
    assert len([i for i in items if isinstance(i, TextDelta)]) > 1  # streamed word by word, like a model
    assert [(c.name, c.arguments) for c in items if isinstance(c, ToolCall)] == [("hang_up", {})]
    # the tests' HTTP server serves the same rules
    body = {"messages": [{"role": "user", "content": "what time is it"}], "tools": tools}
    reply = S.rule_based(body)
    answer = rule_based_answer(body["messages"], ["get_datetime", "hang_up"])
    assert (reply.text, list(reply.tool_calls)) == (answer.text, list(answer.tool_calls)) == ("", [("get_datetime", {})])
