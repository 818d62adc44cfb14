"""LlmClient against the scripted server, through litellm over loopback HTTP."""
import json
import urllib.request

import gevent
import pytest

from voiceagent.dialog.llm import LlmClient, LlmError, TextDelta, ToolCall, extract_text_tool_calls
from voiceagent.testing import llm_server as S

TOOLS = [{"type": "function", "function": {"name": "get_datetime", "description": "time",
                                           "parameters": {"type": "object", "properties": {}}}},
         {"type": "function", "function": {"name": "add_numbers", "description": "add",
                                           "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}]
MSGS = [{"role": "user", "content": "hi"}]


def items(stream):
    return list(stream)


def test_text_streams_as_deltas_and_request_is_recorded(server, llm):
    server.push(S.text("Hello there. How are you?"))
    stream = llm.stream(MSGS, TOOLS)
    out = items(stream)
    assert all(isinstance(i, TextDelta) for i in out) and len(out) > 1
    assert "".join(i.text for i in out) == "Hello there. How are you?"
    assert stream.time_to_first_token is not None and stream.time_to_first_token >= 0
    req = server.requests[0]
    assert req["stream"] is True and req["messages"] == MSGS
    assert [t["function"]["name"] for t in req["tools"]] == ["get_datetime", "add_numbers"]


def test_native_tool_call_fragments_are_assembled(server, llm):
    server.push(S.tool_call("add_numbers", {"a": 2, "b": 40, "note": "a long argument to split in many fragments"},
                            text="Let me add."))
    out = items(llm.stream(MSGS, TOOLS))
    calls = [i for i in out if isinstance(i, ToolCall)]
    assert "".join(i.text for i in out if isinstance(i, TextDelta)) == "Let me add."
    assert len(calls) == 1 and calls[0].name == "add_numbers" and calls[0].error is None
    assert calls[0].arguments == {"a": 2, "b": 40, "note": "a long argument to split in many fragments"}
    assert calls[0].id.startswith("call_") and isinstance(out[-1], ToolCall)


def test_several_tool_calls_in_one_message(server, llm):
    server.push(S.tool_calls([("get_datetime", {}), ("add_numbers", {"a": 1})]))
    calls = [i for i in items(llm.stream(MSGS, TOOLS)) if isinstance(i, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("get_datetime", {}), ("add_numbers", {"a": 1})]
    assert calls[0].id != calls[1].id


def test_bad_json_arguments_are_reported_not_raised(server, llm):
    server.push(S.tool_call("add_numbers", '{"a": 1, '))
    (call,) = items(llm.stream(MSGS, TOOLS))
    assert call.error and "not valid JSON" in call.error and call.raw_arguments == '{"a": 1, '


def test_json_arguments_python_refuses_are_reported_not_raised():
    # valid JSON, but json.loads raises a plain ValueError (no .msg/.pos) for an integer this long
    from voiceagent.dialog.llm_types import decode_call

    raw = '{"a": ' + "1" * 5000 + "}"
    call = decode_call("call_1", "add_numbers", raw)
    assert call.error and "not usable JSON" in call.error and call.arguments == {} and call.raw_arguments == raw


@pytest.mark.parametrize("style", ["plain", "fence", "tag", "list"])
def test_tool_call_written_as_text_is_recovered_and_not_spoken(server, llm, style):
    server.push(S.json_tool_text("add_numbers", {"a": 3}, style=style, prefix="Sure. "))
    out = items(llm.stream(MSGS, TOOLS))
    spoken = "".join(i.text for i in out if isinstance(i, TextDelta))
    calls = [i for i in out if isinstance(i, ToolCall)]
    assert spoken == "Sure. "
    assert [(c.name, c.arguments, c.from_text) for c in calls] == [("add_numbers", {"a": 3}, True)]


def test_json_text_calling_a_tool_that_does_not_exist_is_a_call_never_spoken(server, llm):
    # small models "call" tools they wish they had; the dialog answers with a failed result
    server.push(S.json_tool_text("launch_rockets", {"n": 1}))
    out = items(llm.stream(MSGS, TOOLS))
    assert [(i.name, i.arguments) for i in out if isinstance(i, ToolCall)] == [("launch_rockets", {"n": 1})]
    assert "launch_rockets" not in "".join(getattr(i, "text", "") for i in out)


@pytest.mark.parametrize("text", ['{{"name": "set_timer", "arguments": {"minutes": 10}}}',
                                  '{{"name": "turn_on_lights", "arguments": {"room": "living"}}}} Goodbye.'])
def test_doubled_braces_around_a_text_tool_call_are_not_spoken(text):
    calls, rest = extract_text_tool_calls(text, {"hang_up"})
    assert len(calls) == 1 and "{" not in rest and "}" not in rest, (calls, rest)


def test_json_that_is_not_a_tool_call_stays_text():
    calls, rest = extract_text_tool_calls('Your order is {"name": "Ann", "size": 2}.', {"hang_up"})
    assert not calls and "Ann" in rest


@pytest.mark.parametrize("text,names,rest", [
    ('{"name": "get_datetime", "arguments": {}}', ["get_datetime"], ""),
    ('Checking. {"name": "get_datetime", "parameters": {}} Done.', ["get_datetime"], "Checking. Done."),
    ('{"type": "function", "function": {"name": "get_datetime", "arguments": "{}"}}', ["get_datetime"], ""),
    ('<tool_call>{"name": "get_datetime", "arguments": {}}</tool_call><tool_call>{"name": "add_numbers", "arguments": {"a": 1}}</tool_call>',
     ["get_datetime", "add_numbers"], ""),
    ('The set {1, 2} is small.', [], "The set {1, 2} is small."),
])
def test_extract_text_tool_calls(text, names, rest):
    calls, remaining = extract_text_tool_calls(text, {"get_datetime", "add_numbers"})
    assert [c.name for c in calls] == names
    assert remaining == rest


def test_http_500_is_a_typed_error(server, llm):
    server.push(S.error(500))
    with pytest.raises(LlmError) as ei:
        items(llm.stream(MSGS, TOOLS))
    assert ei.value.kind == "http" and ei.value.status == 500
    assert len(server.requests) == 1  # no hidden retries


def test_timeout_is_a_typed_error(server):
    server.push(S.stall(3))
    client = LlmClient(server.base_url, "scripted", timeout=0.4)
    with gevent.Timeout(3):
        with pytest.raises(LlmError) as ei:
            items(client.stream(MSGS, TOOLS))
    assert ei.value.kind == "timeout"


def test_connection_refused_is_a_typed_error():
    client = LlmClient("http://127.0.0.1:9/v1", "nothing", timeout=1)
    with pytest.raises(LlmError) as ei:
        items(client.stream(MSGS))
    assert ei.value.kind in ("connection", "timeout")


def test_cancel_from_another_greenlet_closes_the_stream(server, llm):
    server.push(S.text("word " * 400, chunk_delay=0.01))
    stream = llm.stream(MSGS, TOOLS)
    got = []
    for item in stream:
        got.append(item)
        if len(got) == 3:
            gevent.spawn(stream.cancel)
    assert 3 <= len(got) < 50 and stream.cancelled
    assert server.cancelled_event.wait(5), "the server never saw the client go away"
    assert server.cancelled == 1 and server.completed == 0


def test_models_endpoint_and_non_streaming_completion(server):
    with urllib.request.urlopen(server.base_url + "/models", timeout=5) as r:
        assert json.load(r)["data"][0]["id"] == "scripted"
    server.push(S.tool_call("get_datetime", {}, text="One sec."))
    req = urllib.request.Request(server.base_url + "/chat/completions", method="POST",
                                 data=json.dumps({"model": "m", "messages": MSGS}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = json.load(r)
    msg = body["choices"][0]["message"]
    assert msg["content"] == "One sec." and msg["tool_calls"][0]["function"]["name"] == "get_datetime"
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_empty_script_answers_500_with_a_message(server, llm):
    with pytest.raises(LlmError) as ei:
        items(llm.stream(MSGS))
    assert ei.value.status == 500 and "no reply queued" in str(ei.value)


def test_a_streamed_request_starts_no_asyncio_loop_on_the_greenlet(server, llm, monkeypatch):
    """litellm's per-request service hook ran asyncio.run on our greenlet; its loop teardown under gevent
    segfaulted the worker.  Without service callbacks it must not run at all."""
    import asyncio

    calls = []
    monkeypatch.setattr(asyncio, "run", lambda *a, **k: calls.append(a))
    server.push(S.text("Hello there."))
    assert "".join(i.text for i in items(llm.stream(MSGS, TOOLS)) if isinstance(i, TextDelta)) == "Hello there."
    assert calls == [], "litellm started an asyncio loop on the calling greenlet"
