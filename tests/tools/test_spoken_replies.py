"""A ToolReply's ``speak`` in a conversation (the scripted LLM over HTTP, through litellm): said word for
word the moment the tool returns, kept in the history as what the assistant said, and the LLM told it was
heard so it does not say it again."""
import pytest

from voiceagent.dialog.conversation import Conversation, Say, ToolFinished
from voiceagent.dialog.llm import LlmClient
from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tool_speech import spoken
from voiceagent.dialog.tools import ToolContext
from voiceagent.testing import llm_server as S
from voiceagent.testing.llm_server import ScriptedLlmServer

TOOLS = ["calculate", "repeat_after_me", "tell_joke", "get_weather", "get_datetime", "hang_up"]


@pytest.fixture
def server():
    with ScriptedLlmServer() as srv:
        yield srv


@pytest.fixture
def conv(server, make_registry, ctx):
    profile = Profile(name="t", timezone="America/Chicago", greeting="Hi.", tools=TOOLS, context="")
    llm = LlmClient(server.base_url, "scripted", timeout=5.0)
    return Conversation(profile, llm, make_registry(), ToolContext(call_id="c1", clock=ctx.clock))


def test_the_tool_words_are_said_verbatim_and_the_llm_knows_they_were_heard(server, conv):
    server.push(S.tool_call("calculate", {"expression": "25 / 2"}), S.text("Anything else?"))
    events = list(conv.respond("What is twenty five divided by two?"))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ToolStarted", "ToolFinished", "Say", "Say"], kinds
    assert [e.text for e in events if isinstance(e, Say)] == ["25 divided by 2 is 12.5.", "Anything else?"]
    assert events[2].speech == "twenty-five divided by two is twelve point five."
    second = server.requests[1]["messages"]
    tool_msg, said = second[-2], second[-1]
    assert tool_msg["role"] == "tool" and "word for word" in tool_msg["content"] and "12.5" in tool_msg["content"]
    assert said == {"role": "assistant", "content": "25 divided by 2 is 12.5."}
    conv.record_heard([e for e in events if isinstance(e, Say)])
    assert [m["content"] for m in conv.history if m["role"] == "assistant" and m.get("content")] == \
        ["25 divided by 2 is 12.5.", "Anything else?"]


def test_two_tools_in_one_round_keep_the_tool_messages_together(server, conv):
    server.push(S.tool_calls([("repeat_after_me", {"text": "Code 4 4 7."}), ("tell_joke", {})]), S.text("Done."))
    events = list(conv.respond("Repeat my code then tell a joke"))
    said = [e.text for e in events if isinstance(e, Say)]
    assert said[0] == "Code 4 4 7." and said[-1] == "Done." and len(said) == 3
    roles = [m["role"] for m in server.requests[1]["messages"]][-5:]
    # the calls, their results together, then one message with every word the tools had said
    assert roles == ["user", "assistant", "tool", "tool", "assistant"], roles


def test_a_failed_tool_says_nothing_of_its_own(server, conv):
    server.push(S.tool_call("calculate", {"expression": "9**9**9"}), S.text("That number is too big."))
    events = list(conv.respond("nine to the nine to the nine"))
    assert [e.ok for e in events if isinstance(e, ToolFinished)] == [False]
    assert [e.text for e in events if isinstance(e, Say)] == ["That number is too big."]


def test_tool_speech_prefers_the_verbatim_words(make_registry, ctx):
    res = make_registry().run("repeat_after_me", {"text": "Meet at gate B."}, ctx)
    assert spoken(res.value) == "Meet at gate B."
