"""Outbound calls: originate with our uuid → answer → fork → session; failures mapped to outcomes;
and the START_FORK_ON_PARK mode, where workers race for a parked call through a Redis claim."""
import gevent
import pytest


def test_originate_answered_call_gets_a_session_and_hears_the_greeting(make_emulator, make_worker):
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550002", outcome="answer")
    w = make_worker([emu], originate_gateway="carrier1", caller_id_number="+15551230000")
    result = w.originate("+15550002")
    assert result["outcome"] == "answered", result
    ch = emu.channels[result["uuid"]]
    assert result["uuid"] in w.sessions
    sess = w.sessions[result["uuid"]]
    assert sess.direction.value == "outbound" and sess.callee == "+15550002"
    assert ch.wait_hangup(20), "the agent should hang up after its greeting"
    assert [s["status"] for s in ch.segments] == ["done"]
    assert sess.closed.wait(10) and sess.ended_by == "agent"


@pytest.mark.parametrize("outcome,expected", [("busy", "busy"), ("reject", "rejected"),
                                              ("no_answer", "no_answer"), ("invalid_gateway", "failed")])
def test_originate_failures_map_to_outcomes(make_emulator, make_worker, outcome, expected):
    emu = make_emulator(speed=20.0)
    emu.script_destination("+15550003", outcome=outcome)
    w = make_worker([emu], originate_gateway="carrier1", originate_timeout=2)
    result = w.originate("+15550003")
    assert result["outcome"] == expected, result
    assert not w.sessions


def test_fork_on_park_mode_one_worker_wins_the_claim(make_emulator, make_worker):
    emu = make_emulator(speed=4.0)
    owners = []

    class Recorder:
        def run(self, call):
            owners.append(call.worker.worker_id)
            call.ended.wait()

    w1 = make_worker([emu], start_fork_on_park=True, dialog_factory=lambda call: Recorder())
    w2 = make_worker([emu], start_fork_on_park=True, dialog_factory=lambda call: Recorder())
    # the 'agent_esl' test extension answers and parks without starting a fork itself
    ch = emu.place_call(destination="agent_esl", caller="+15550000007", context="default")
    assert ch.wait_answered(10)
    with gevent.Timeout(10, False):
        while not owners:
            gevent.sleep(0.02)
    assert len(owners) == 1, owners
    winner = w1 if owners[0] == w1.worker_id else w2
    loser = w2 if winner is w1 else w1
    assert ch.uuid in winner.sessions and ch.uuid not in loser.sessions
    assert len(ch.forks) == 1
    sess = winner.sessions[ch.uuid]
    ch.hangup()
    assert sess.closed.wait(10)
