"""Assist delegation against the stand-in: each response type is spoken (Assist's words verbatim, ours when it
has none), the conversation id is kept for the call's follow-ups, and the request carries language and agent."""
import pytest

from voiceagent.dialog.profiles import Profile

from .ha_server import assist


def test_action_done_speaks_assists_words_and_follow_ups_continue_the_conversation(make_registry, ha, ctx):
    reg = make_registry(ha_agent_id="conversation.home_assistant")
    ha.assist_answers = [assist("action_done", "Turned on the light", success=[{"type": "entity", "name": "Porch",
                                                                               "id": "light.porch"}]),
                         assist("action_done", "Turned off the light")]
    res = reg.run("home_assistant", {"request": "turn on the porch light"}, ctx)
    assert res.ok and res.speak == "Turned on the light", res.value
    assert res.value["data"]["success"] == ["light.porch"] and res.value["data"]["response_type"] == "action_done"
    again = reg.run("home_assistant", {"request": "and turn it off again"}, ctx)
    assert again.speak == "Turned off the light"
    first, second = ha.conversations()
    assert first == {"text": "turn on the porch light", "language": "en", "agent_id": "conversation.home_assistant"}
    assert second["conversation_id"] == "01J0CONV0001" and second["text"] == "and turn it off again"


def test_a_query_answer_is_spoken_and_a_new_call_starts_a_new_conversation(make_registry, ha, ctx):
    from voiceagent.dialog.tools import ToolContext
    reg = make_registry(ha_language="de")
    ha.assist_answers = [assist("query_answer", "The garage door is closed"), assist("query_answer", "")]
    assert reg.run("home_assistant", {"request": "is the garage door closed?"}, ctx).speak == \
        "The garage door is closed"
    other = ToolContext(call_id="call-ha-2", profile=Profile(name="x"))
    assert reg.run("home_assistant", {"request": "what about the door?"}, other).speak == \
        "Home Assistant had no answer to that."
    assert [c.get("conversation_id") for c in ha.conversations()] == [None, None]
    assert [c["language"] for c in ha.conversations()] == ["de", "de"]


@pytest.mark.parametrize("code, words", [("no_intent_match", "didn't understand"),
                                         ("no_valid_targets", "couldn't find a device"),
                                         ("failed_to_handle", "ran into a problem"),
                                         ("unknown", "something went wrong"),
                                         ("something_new", "something went wrong")])
def test_errors_without_speech_become_our_sentence(make_registry, ha, ctx, code, words):
    reg = make_registry()
    ha.assist_answers = [assist("error", "", code=code)]
    res = reg.run("home_assistant", {"request": "frobnicate the hallway"}, ctx)
    assert res.ok and words in res.speak and res.value["data"]["code"] == code, res.value


def test_an_error_with_speech_is_said_as_assist_says_it(make_registry, ha, ctx):
    reg = make_registry()
    ha.assist_answers = [assist("error", "No device or entity named attic fan", code="no_valid_targets")]
    res = reg.run("home_assistant", {"request": "turn on the attic fan"}, ctx)
    assert res.speak == "No device or entity named attic fan" and "could not do it" in res.text


def test_assist_mode_offers_only_the_assist_tool_and_a_profile_can_go_direct(make_registry):
    reg = make_registry(ha_profile_modes="kitchen=direct")
    line, kitchen = Profile(name="front"), Profile(name="kitchen")
    assert reg.get("home_assistant").available(line) and not reg.get("home_control").available(line)
    assert reg.get("home_control").available(kitchen) and reg.get("home_status").available(kitchen)
    assert not reg.get("home_assistant").available(kitchen)


def test_without_url_or_token_nothing_is_offered_and_a_run_says_so(make_registry, ha, ctx):
    for env in ({"ha_url": ""}, {"ha_token": ""}):
        reg = make_registry(**env)
        assert not reg.get("home_assistant").available(Profile(name="x")), env
        res = reg.run("home_assistant", {"request": "lights on"}, ctx)
        assert res.ok and "not set up" in res.speak
    assert ha.requests == []


def test_a_bad_setting_is_a_load_problem_naming_the_variable(make_registry):
    for env, var in (({"ha_url": "ftp://ha.local"}, "HA_URL"), ({"ha_pin": "12ab"}, "HA_PIN"),
                     ({"ha_profile_modes": "kitchen=remote"}, "HA_PROFILE_MODES"), ({"ha_mode": "both"}, "HA_MODE")):
        reg = make_registry(**env)
        assert "home_assistant" not in reg and any(var in e for e in reg.errors), (env, reg.errors)


@pytest.mark.parametrize("token, hang, words", [("wrong-token", False, "refused my access"),
                                                (None, True, "didn't answer in time")])
def test_401_and_a_timeout_are_clear_sentences(make_registry, ha, ctx, token, hang, words):
    reg = make_registry(ha_timeout=0.5, **({"ha_token": token} if token else {}))
    ha.hang = hang
    res = reg.run("home_assistant", {"request": "lights on"}, ctx)
    assert res.ok and words in res.speak, res.value
    assert ("401" in res.value["data"]["error"]) if token else ("no answer" in res.value["data"]["error"])


def test_unreachable_is_a_clear_sentence(make_registry, ctx):
    reg = make_registry(ha_url="http://127.0.0.1:9")
    res = reg.run("home_assistant", {"request": "lights on"}, ctx)
    assert res.ok and "can't reach Home Assistant" in res.speak
