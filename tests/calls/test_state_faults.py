"""State that survives faults (finding 9): lost playback events, ESL outages, Redis restarts and
outages, and sessions that outlive their hangup."""
import logging
from ipaddress import ip_network

import gevent
import gevent.event

from voiceagent.calls.flags import Flag
from voiceagent.telephony.events import ExecuteComplete, PlaybackStop
from voiceagent.calls.inbox import CallStore
from voiceagent.calls.session import CallState
from voiceagent.calls.worker import GreetingDialog, default_greeting_path
from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome

from .redis_faults import redis_proxy, redis_server  # noqa: F401 - fixtures
from .test_lifecycle import _SilentDialog, wait_until

RECORD_FIELDS = {"id", "node", "worker", "direction", "caller", "callee", "state", "started"}


class _GatedGreeting:
    """The greeting dialog, started only when the test says so (after it has set up its fault)."""

    def __init__(self):
        self.go = gevent.event.Event()

    def run(self, call):
        self.go.wait()
        GreetingDialog(default_greeting_path()).run(call)


def _active_session(w, ch):
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in w.sessions and w.sessions[ch.uuid].state == CallState.ACTIVE, 5)
    return w.sessions[ch.uuid]


def test_lost_playback_stop_is_finished_by_the_playback_watchdog(make_emulator, make_worker, caplog):
    emu = make_emulator(speed=4.0)  # the 4 s greeting plays in 1 s
    dialog = _GatedGreeting()
    w = make_worker([emu], playback_margin_seconds=1.0, dialog_factory=lambda call: dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    sess = _active_session(w, ch)
    hear = sess.on_esl_event

    def deaf(ev):  # FreeSWITCH's "finished playing" never reaches the session
        if isinstance(ev, PlaybackStop) or (isinstance(ev, ExecuteComplete) and ev.application == "playback"):
            return
        hear(ev)

    sess.on_esl_event = deaf
    caplog.set_level(logging.WARNING)
    dialog.go.set()
    assert wait_until(lambda: sess.playbacks, 5)
    pb = sess.playbacks[0]
    assert pb.started.wait(5)
    # without the watchdog the greeting dialog waits duration + 30 s, then the session 30 s more
    assert pb.finished.wait(pb.duration + 6), "a playback whose PLAYBACK_STOP was lost never finished"
    assert pb.expired and pb.status == "done"
    assert ch.wait_hangup(5), "the agent did not hang up after the greeting"
    assert any("not reported finished" in r.getMessage() for r in caplog.records)


def test_playbacks_reconciled_after_an_esl_outage(make_emulator, make_worker):
    emu = make_emulator(speed=1.0)  # real time: the session expects the greeting to end when it does
    dialog = _GatedGreeting()
    # the watchdog margin is long: only the reconciliation after the reconnect can finish the playback
    w = make_worker([emu], playback_margin_seconds=60, esl_reconnect_max_delay=0.2, dialog_factory=lambda call: dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    sess = _active_session(w, ch)
    node = w.nodes["fs1"]
    dialog.go.set()
    assert wait_until(lambda: sess.playbacks, 5)
    pb = sess.playbacks[0]
    assert pb.started.wait(5)
    before = node.esl.connect_count
    emu.acl = [ip_network("192.0.2.0/24")]  # reconnects are refused: an outage
    emu.drop_connections()
    assert wait_until(lambda: ch.segments, 10), "the greeting never finished playing in the emulator"
    assert not pb.done, "the session heard the PLAYBACK_STOP although ESL was down"
    emu.acl = None
    assert wait_until(lambda: node.esl.connect_count > before and node.synced.is_set(), 10), "no reconnect"
    assert pb.finished.wait(3), "the playback that ended during the outage is still 'playing'"
    assert pb.expired and pb.status == "done"
    assert ch.wait_hangup(10)


def test_redis_restart_heartbeat_rewrites_whole_records(make_emulator, make_worker, redis_server):  # noqa: F811
    emu = make_emulator()
    w = make_worker([emu], redis_url=redis_server.url, worker_heartbeat_seconds=0.2, worker_heartbeat_ttl=2,
                    dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    _active_session(w, ch)
    store = CallStore(redis_server.client(), w.settings.redis_prefix)
    assert wait_until(lambda: (store.get(ch.uuid) or {}).get("state") == "active", 5)
    redis_server.restart()  # every key is gone
    assert wait_until(lambda: store.get(ch.uuid) is not None and store.live_calls(), 15), "record never rewritten"
    rec = store.get(ch.uuid)
    assert RECORD_FIELDS <= set(rec), f"partial record after the restart: {rec}"
    assert rec["worker"] == w.worker_id and rec["state"] == "active" and rec["caller"] == "+15551230001"
    # the live call can be commanded again
    assert wait_until(lambda: store.worker_alive(w.worker_id), 5)
    store.send_command(ch.uuid, {"type": "hangup"})
    assert ch.wait_hangup(10), "the command sent after the Redis restart never reached the call"


def test_record_removal_lost_in_a_redis_outage_is_replayed(make_emulator, make_worker, redis_server,  # noqa: F811
                                                          redis_proxy):  # noqa: F811
    emu = make_emulator()
    w = make_worker([emu], redis_url=redis_proxy.url, worker_heartbeat_seconds=0.2, worker_heartbeat_ttl=2,
                    redis_pool_timeout=0.5, redis_socket_timeout=1.0, dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    sess = _active_session(w, ch)
    store = CallStore(redis_server.client(), w.settings.redis_prefix)  # straight to Redis, not via the proxy
    assert wait_until(lambda: (store.get(ch.uuid) or {}).get("state") == "active", 5)
    redis_proxy.down()  # Redis unreachable for the worker; its data stays
    ch.hangup()
    assert sess.closed.wait(10)
    assert store.get(ch.uuid) is not None, "the removal got through although Redis was unreachable"
    redis_proxy.up()
    assert wait_until(lambda: store.get(ch.uuid) is None, 10), "the record of the ended call stayed in Redis"
    assert store.live_calls() == []
    # Redis has applied the removal before the worker reads the reply and drops it from its queue
    assert wait_until(lambda: w.store.pending_ops == 0, 5), "the replayed removal stayed queued"


class _StubbornDialog:
    """Ignores being killed for a while: the session stays listed for ~2 s after its hangup."""

    def __init__(self):
        self.started = gevent.event.Event()

    def run(self, call):
        self.started.set()
        for _ in range(3):
            try:
                call.ended.wait()
                gevent.sleep(5)
            except gevent.GreenletExit:
                pass


def test_heartbeat_does_not_refresh_records_of_ended_calls(make_emulator, make_worker, redis_prefix):
    emu = make_emulator()
    dialog = _StubbornDialog()
    w = make_worker([emu], dialog_factory=lambda call: dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    sess = _active_session(w, ch)
    assert dialog.started.wait(5)
    store = CallStore(w.redis, redis_prefix)
    ch.hangup()
    assert sess.ended.wait(5)
    store.r.delete(store.call_key(ch.uuid))  # as if its TTL ran out
    w._beat()
    assert ch.uuid in w.sessions, "the session closed too early for this test to mean anything"
    assert store.get(ch.uuid) is None, f"the heartbeat wrote the record of an ended call: {store.get(ch.uuid)}"
    assert sess.closed.wait(10)


class _LostWakeup(Flag):
    """An ``ended`` whose wait() never returns once set: a session stuck after its hangup."""

    def wait(self, timeout=None):
        if self.is_set():
            gevent.event.Event().wait()
        return super().wait(timeout)


def test_session_stuck_after_its_hangup_is_reaped(make_emulator, make_worker, caplog):
    emu = make_emulator()
    w = make_worker([emu], worker_heartbeat_seconds=0.2, worker_heartbeat_ttl=2, session_reap_seconds=1.0,
                    dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    sess = _active_session(w, ch)
    sess.ended = _LostWakeup()
    caplog.set_level(logging.ERROR)
    ch.hangup()
    assert ch.wait_hangup(5)
    assert sess.closed.wait(10), "a session stuck after its hangup was never closed"
    assert wait_until(lambda: not w.sessions and len(w.greenlets) == 0, 5)
    assert any("force-closing" in r.getMessage() for r in caplog.records)



def test_a_dial_ending_its_record_in_a_redis_outage_retries_until_redis_is_back(
        make_emulator, make_worker, redis_server, redis_proxy):  # noqa: F811
    """RequestTaker._end used to raise out of the dial's greenlet: the record stayed open for good."""
    emu = make_emulator()
    w = make_worker([emu], redis_url=redis_proxy.url, redis_pool_timeout=0.5, redis_socket_timeout=1.0)
    client = CallClient(redis_server.client(), w.settings.redis_prefix)
    w.requests.stop()  # nobody dials it: this test ends the record itself, as a failed dial does
    call_id = client.place({"to": "+15550173"})
    redis_proxy.down()
    ender = gevent.spawn(w.requests._end, call_id, Outcome.FAILED, "dial failed: test")
    assert not ender.join(1.5) and not ender.dead, "gave up at once while Redis was unreachable"
    redis_proxy.up()
    assert ender.join(15) is None and ender.successful(), ender.exception
    assert client.get(call_id).outcome == Outcome.FAILED
