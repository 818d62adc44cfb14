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


class _Recorder:
    def __init__(self):
        self.seen = []

    def call_state(self, call, state, at):
        self.seen.append(("state", call.id, state))

    def call_turn(self, call, turn):
        self.seen.append(("turn", call.id, turn))

    def call_dtmf(self, call, digit, at):
        self.seen.append(("dtmf", call.id, digit))

    def call_barge_in(self, call, at):
        self.seen.append(("barge_in", call.id, at))

    def call_ended(self, call, *, cause, outcome, ended_by, at, refused=""):
        self.seen.append(("ended", call.id, (cause, outcome, ended_by, call.request_id)))

    def states(self, call_id):
        return [s for k, c, s in self.seen if k == "state" and c == call_id]


def test_outbound_states_dialing_ringing_answered_active_and_the_request_rides_along(make_emulator, make_worker):
    from voiceagent.calls.call_state import CallState as S

    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550005", outcome="answer", ring_seconds=1.0)
    w = make_worker([emu], originate_gateway="carrier1")
    rec = _Recorder()
    w.observers.append(rec)
    request = object()
    call_id = "0e6f7f0c-1111-4222-8333-444455556666"
    result = w.originate("+15550005", call_id=call_id, request=request, request_id="req-1")
    assert result["outcome"] == "answered" and result["uuid"] == call_id
    sess = w.sessions[call_id]
    assert sess.request is request and sess.info.request_id == "req-1"
    assert emu.channels[call_id].wait_hangup(20)
    assert sess.closed.wait(10)
    assert rec.states(call_id) == [S.REQUESTED, S.DIALING, S.RINGING, S.ANSWERED, S.ACTIVE, S.ENDING, S.ENDED]
    assert rec.seen[-1] == ("ended", call_id, ("NORMAL_CLEARING", "answered", "agent", "req-1"))


def test_a_failed_originate_ends_its_session_with_the_outcome(make_emulator, make_worker):
    from voiceagent.calls.call_state import CallState as S

    emu = make_emulator(speed=20.0)
    emu.script_destination("+15550006", outcome="busy", ring_seconds=0.5)
    w = make_worker([emu], originate_gateway="carrier1", originate_timeout=2)
    rec = _Recorder()
    w.observers.append(rec)
    result = w.originate("+15550006", request_id="req-2")
    assert result["outcome"] == "busy", result
    assert not w.sessions and w.live_calls() == 0
    states = rec.states(result["uuid"])
    assert states[:3] == [S.REQUESTED, S.DIALING, S.RINGING] and states[-2:] == [S.FAILED, S.ENDED], states
    ended = [s for k, c, s in rec.seen if k == "ended"]
    assert ended == [("USER_BUSY", "busy", ended[0][2], "req-2")], rec.seen
    assert rec.seen[-1][0] == "ended"
