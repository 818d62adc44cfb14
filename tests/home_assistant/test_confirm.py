"""Locks, alarms and covers ask first: yes (spoken: a second call with confirm) runs it, no cancels, a question
left open times out; the keypad answers through the conversation (1, 2, a PIN and #) without the LLM; a
confirm the caller was never asked for only asks."""
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.events import Say, ToolFinished
from voiceagent.integrations.home_assistant.control import PENDING_KEY

UNLOCK = {"name": "front door", "action": "unlock"}
QUESTION = "Are you sure you want to unlock the Front Door? Say yes or press 1, or say no or press 2."


def _conversation(reg, ctx):
    return Conversation(ctx.profile, llm=None, tools=reg, ctx=ctx)  # digits for a claimed keypad need no LLM


def test_spoken_yes_unlocks_after_the_question(direct, ha, ctx):
    res = direct.run("home_control", UNLOCK, ctx)
    assert res.speak == QUESTION and not ha.service_calls(), res.value
    assert ctx.keypad is not None and "confirm true" in res.text
    res = direct.run("home_control", {**UNLOCK, "confirm": True}, ctx)
    assert res.speak == "Done, the Front Door is unlocked.", res.value
    assert [(r["path"], r["body"]) for r in ha.service_calls()] == [("/api/services/lock/unlock",
                                                                     {"entity_id": "lock.front_door"})]
    assert res.value["data"]["confirmed"] == "spoken" and res.value["data"]["caller"] == "+15551230007"
    assert ctx.keypad is None and PENDING_KEY not in ctx.extra
    again = direct.run("home_control", {**UNLOCK, "confirm": True}, ctx)  # a second yes asks anew
    assert again.speak == QUESTION and len(ha.service_calls()) == 1


def test_spoken_no_cancels(direct, ha, ctx):
    direct.run("home_control", {"name": "garage door", "action": "open"}, ctx)
    res = direct.run("home_control", {"name": "garage door", "action": "open", "confirm": False}, ctx)
    assert res.speak == "Okay, I won't open the Garage Door." and not ha.service_calls()
    assert ctx.keypad is None and PENDING_KEY not in ctx.extra


def test_a_question_left_open_times_out(direct, ha, ctx):
    direct.run("home_control", UNLOCK, ctx)
    ctx.clock.t += 31  # HA_CONFIRM_SECONDS is 30
    res = direct.run("home_control", {**UNLOCK, "confirm": True}, ctx)
    assert res.speak.startswith("That question timed out, so I didn't unlock the Front Door.")
    assert not ha.service_calls() and ctx.keypad is None


def test_a_confirm_never_asked_for_only_asks(direct, ha, ctx):
    res = direct.run("home_control", {**UNLOCK, "confirm": True}, ctx)
    assert res.speak == QUESTION and not ha.service_calls()
    other = direct.run("home_control", {"name": "garage door", "action": "open", "confirm": True}, ctx)
    assert other.speak.startswith("Are you sure you want to open the Garage Door?") and not ha.service_calls()


def test_keypad_1_confirms_through_the_conversation_and_is_recorded(direct, ha, ctx):
    conv = _conversation(direct, ctx)
    direct.run("home_control", UNLOCK, ctx)
    events = list(conv.on_dtmf("1"))
    finished = [e for e in events if isinstance(e, ToolFinished)]
    said = [e.text for e in events if isinstance(e, Say)]
    assert said == ["Done, the Front Door is unlocked."], events
    assert finished and finished[0].name == "home_control" and finished[0].result["data"]["confirmed"] == "keypad"
    assert [r["body"] for r in ha.service_calls()] == [{"entity_id": "lock.front_door"}]
    assert ctx.keypad is None
    assert conv.history[-2:] == [{"role": "user", "content": "The caller confirmed on the keypad."},
                                 {"role": "assistant", "content": "Done, the Front Door is unlocked."}]


def test_keypad_2_cancels_and_another_key_asks_again(direct, ha, ctx):
    conv = _conversation(direct, ctx)
    direct.run("home_control", UNLOCK, ctx)
    assert [e.text for e in conv.on_dtmf("5") if isinstance(e, Say)] == ["Press 1 to confirm, or 2 to cancel."]
    assert ctx.keypad is not None
    assert [e.text for e in conv.on_dtmf("2") if isinstance(e, Say)] == ["Okay, I won't unlock the Front Door."]
    assert ctx.keypad is None and not ha.service_calls()


def test_a_keypad_answer_after_the_timeout_is_refused(direct, ha, ctx):
    conv = _conversation(direct, ctx)
    direct.run("home_control", UNLOCK, ctx)
    ctx.clock.t += 31
    said = [e.text for e in conv.on_dtmf("1") if isinstance(e, Say)]
    assert said and said[0].startswith("That question timed out") and not ha.service_calls()


def test_a_pin_is_typed_on_the_keypad_and_never_reaches_the_history(make_registry, ha, ctx):
    reg = make_registry(ha_mode="direct", ha_allow_domains="lock", ha_pin="4711")
    conv = _conversation(reg, ctx)
    res = reg.run("home_control", UNLOCK, ctx)
    assert res.speak.endswith("To confirm, enter your PIN on the keypad, then press pound.")
    spoken = reg.run("home_control", {**UNLOCK, "confirm": True}, ctx)  # yes without the PIN: not yet
    assert "enter your PIN" in spoken.speak and not ha.service_calls()
    for d in "471":
        assert list(conv.on_dtmf(d)) == []
    said = [e.text for d in "1#" for e in conv.on_dtmf(d) if isinstance(e, Say)]
    assert said == ["Done, the Front Door is unlocked."] and len(ha.service_calls()) == 1
    assert "4711" not in str(conv.history)


def test_a_wrong_pin_cancels(make_registry, ha, ctx):
    reg = make_registry(ha_mode="direct", ha_allow_domains="lock", ha_pin="4711")
    conv = _conversation(reg, ctx)
    reg.run("home_control", UNLOCK, ctx)
    said = [e.text for d in "1234#" for e in conv.on_dtmf(d) if isinstance(e, Say)]
    assert said == ["That PIN is not right, so I didn't unlock the Front Door."] and not ha.service_calls()
    res = reg.run("home_control", {**UNLOCK, "confirm": True, "pin": "0000"}, ctx)  # asks anew, no pending
    assert res.speak.startswith("Are you sure") and not ha.service_calls()


def test_lights_need_no_confirmation_and_confirm_domains_are_settable(make_registry, ha, ctx):
    reg = make_registry(ha_mode="direct", ha_allow_domains="light,lock", ha_confirm_domains="light")
    assert reg.run("home_control", {"name": "porch light", "action": "turn_on"}, ctx).speak.startswith("Are you")
    assert reg.run("home_control", UNLOCK, ctx).speak == "Done, the Front Door is unlocked."
