"""The call state machine: allowed paths, illegal transitions logged and ignored, timestamped history."""
import logging
import time

import pytest

from voiceagent.calls.call_state import ALLOWED, CallState as S, CallStates

OUTBOUND = [S.REQUESTED, S.DIALING, S.RINGING, S.ANSWERED, S.ACTIVE, S.ENDING, S.ENDED]
INBOUND = [S.OFFERED, S.CONFIRMED, S.ANSWERING, S.ACTIVE, S.ENDING, S.ENDED]


@pytest.mark.parametrize("path", [OUTBOUND, INBOUND, [S.REQUESTED, S.DIALING, S.FAILED, S.ENDED],
                                  [S.OFFERED, S.REFUSED, S.ENDED], [S.OFFERED, S.CONFIRMED, S.REFUSED, S.ENDED]])
def test_the_documented_paths_are_allowed(path):
    seen = []
    states = CallStates(path[0], on_change=lambda st, at: seen.append(st))
    t0 = time.time()
    for st in path[1:]:
        assert states.to(st), f"{states.current.name} -> {st.name} refused"
    assert [t.state for t in states.history] == path and seen == path[1:]
    assert all(t0 - 1 <= t.at <= time.time() for t in states.history)
    assert [t.at for t in states.history] == sorted(t.at for t in states.history)


def test_an_illegal_transition_is_logged_and_ignored(caplog):
    seen = []
    states = CallStates(S.OFFERED, on_change=lambda st, at: seen.append(st))
    with caplog.at_level(logging.WARNING, logger="voiceagent.calls.call_state"):
        assert not states.to(S.ACTIVE)  # never answered, never confirmed
    assert states.current is S.OFFERED and len(states.history) == 1 and seen == []
    assert any("OFFERED -> ACTIVE" in r.getMessage() for r in caplog.records)
    for st in (S.CONFIRMED, S.ANSWERING, S.ACTIVE, S.ENDING, S.ENDED):
        states.to(st)
    assert not states.to(S.ACTIVE) and states.current is S.ENDED, "an ended call came back"
    assert states.at(S.ACTIVE) is not None and states.at(S.RINGING) is None


def test_ended_is_final_and_every_state_can_end():
    assert ALLOWED[S.ENDED] == frozenset()
    for st in S:
        if st is not S.ENDED:
            assert ALLOWED[st] & {S.ENDING, S.ENDED, S.FAILED, S.REFUSED}, f"{st.name} cannot end"


def test_redis_records_keep_their_old_state_words():
    assert S.PENDING is S.OFFERED
    assert {S.DIALING.record_value, S.CONFIRMED.record_value, S.ACTIVE.record_value, S.REFUSED.record_value} == {
        "pending", "active", "ending"}
