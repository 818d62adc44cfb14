"""EslConnection + FreeSwitch against the FreeSWITCH emulator: faults, reconnect, bgapi load."""
from __future__ import annotations

import gevent
import gevent.queue
import pytest

from voiceagent.emulator import FreeSwitchEmulator
from voiceagent.telephony import events
from voiceagent.telephony.commands import FreeSwitch
from voiceagent.telephony.esl import EslAuthError, EslConnection, EslTimeout


@pytest.fixture
def emu():
    e = FreeSwitchEmulator(host="127.0.0.1", port=0, password="ClueCon", switchname="fs1", speed=20.0)
    e.start()
    yield e
    e.unstall_api()
    e.stop()


@pytest.fixture
def conn(emu):
    c = EslConnection("fs1", "127.0.0.1", emu.port, "ClueCon", command_timeout=2.0, connect_timeout=2.0,
                      reconnect_max_delay=0.3)
    yield c
    c.stop()


class Recorder:
    """Typed events and connection notices in one queue, in dispatch order."""

    def __init__(self, conn: EslConnection) -> None:
        self.q: gevent.queue.Queue = gevent.queue.Queue()
        conn.on_event(lambda e: self.q.put(events.parse(e)))
        conn.on_connected(lambda c: self.q.put("connected"))
        conn.on_disconnected(lambda c: self.q.put("disconnected"))

    def wait_for(self, pred, timeout: float = 5.0):
        with gevent.Timeout(timeout, AssertionError("expected event did not arrive")):
            while True:
                item = self.q.get()
                if pred(item):
                    return item


def test_bad_password_against_emulator(emu):
    c = EslConnection("fs1", "127.0.0.1", emu.port, "nope", connect_timeout=2.0)
    with pytest.raises(EslAuthError):
        c.start(timeout=3)
    assert not c.connected


def test_inbound_call_events_typed(emu, conn):
    rec = Recorder(conn)
    conn.start(timeout=3)
    ch = emu.place_call(destination="agent_esl", caller="+15551230001", context="default")
    create = rec.wait_for(lambda e: isinstance(e, events.ChannelCreate))
    assert (create.uuid, create.caller, create.destination, create.direction, create.node) == (
        ch.uuid, "+15551230001", "agent_esl", "inbound", "fs1")
    rec.wait_for(lambda e: isinstance(e, events.ChannelAnswer) and e.uuid == ch.uuid)
    rec.wait_for(lambda e: isinstance(e, events.ChannelPark) and e.uuid == ch.uuid)
    ch.hangup()
    hang = rec.wait_for(lambda e: isinstance(e, events.ChannelHangupComplete) and e.uuid == ch.uuid)
    assert hang.answered and hang.outcome == "answered"
    rec.wait_for(lambda e: isinstance(e, events.ChannelDestroy) and e.uuid == ch.uuid)


def test_stalled_api_times_out_and_connection_recovers(emu, conn):
    rec = Recorder(conn)
    conn.start(timeout=3)
    fs = FreeSwitch(conn)
    ch = emu.place_call(destination="agent_esl", context="default")
    rec.wait_for(lambda e: isinstance(e, events.ChannelPark))
    emu.stall_api("uuid_getvar")
    with pytest.raises(EslTimeout, match="uuid_getvar"):
        fs.conn.api(f"uuid_getvar {ch.uuid} x", timeout=0.3)
    rec.wait_for(lambda e: e == "disconnected")
    rec.wait_for(lambda e: e == "connected")
    assert fs.uuid_exists(ch.uuid)
    fs.recv_dtmf(ch.uuid, "7")  # events flow on the new connection
    assert rec.wait_for(lambda e: isinstance(e, events.Dtmf)).digit == "7"


def test_dropped_connection_reconnects_resubscribes_and_call_survives(emu, conn):
    rec = Recorder(conn)
    resynced = gevent.queue.Queue()
    fs = FreeSwitch(conn)
    # an owner re-syncing after every (re)connect, as the call registry does
    conn.on_connected(lambda c: resynced.put([r["uuid"] for r in fs.show_channels()]))
    conn.start(timeout=3)
    assert resynced.get(timeout=3) == []
    ch = emu.place_call(destination="agent_esl", context="default")
    rec.wait_for(lambda e: isinstance(e, events.ChannelPark))
    emu.drop_connections()
    rec.wait_for(lambda e: e == "disconnected")
    rec.wait_for(lambda e: e == "connected")
    assert resynced.get(timeout=3) == [ch.uuid]
    assert conn.connect_count == 2
    assert fs.uuid_exists(ch.uuid)
    fs.recv_dtmf(ch.uuid, "#")
    dtmf = rec.wait_for(lambda e: isinstance(e, events.Dtmf))
    assert (dtmf.uuid, dtmf.digit, dtmf.source) == (ch.uuid, "#", "APP")
    fs.kill(ch.uuid)
    rec.wait_for(lambda e: isinstance(e, events.ChannelHangup) and e.uuid == ch.uuid)
    assert ch.wait_hangup(3)


def test_full_restart_reconnects_and_events_flow(emu, conn):
    rec = Recorder(conn)
    conn.start(timeout=3)
    fs = FreeSwitch(conn)
    ch = emu.place_call(destination="agent_esl", context="default")
    rec.wait_for(lambda e: isinstance(e, events.ChannelPark))
    emu.restart()
    rec.wait_for(lambda e: e == "disconnected")
    rec.wait_for(lambda e: e == "connected", timeout=5)
    assert fs.show_channels() == []
    assert not fs.uuid_exists(ch.uuid)
    ch2 = emu.place_call(destination="agent_esl", context="default")
    park = rec.wait_for(lambda e: isinstance(e, events.ChannelPark))
    assert park.uuid == ch2.uuid


def test_fifty_concurrent_originates_correlated(emu, conn):
    conn.start(timeout=3)
    fs = FreeSwitch(conn)
    scripted = {}
    kinds = [("answer", "answered"), ("busy", "busy"), ("reject", "rejected"), ("no_answer", "no_answer"),
             ("invalid_gateway", "failed")]
    for i in range(50):
        number = f"+1555000{i:04d}"
        kind, outcome = kinds[i % len(kinds)]
        emu.script_destination(number, outcome=kind, ring_seconds=0.5 if kind != "answer" else 0)
        scripted[number] = outcome
    started = {}
    for number in scripted:
        uuid, result = fs.originate_async(number, gateway="carrier1", caller_id_number="+15559990000",
                                          caller_id_name="Voice Agent", timeout=1)
        started[number] = (uuid, result)
    assert len({u for u, _ in started.values()}) == 50
    gevent.wait([r for _, r in started.values()], timeout=20)
    for number, (uuid, result) in started.items():
        res = result.get(timeout=0)
        assert res.outcome == scripted[number], (number, res)
        assert res.uuid == uuid
        if res.ok:
            assert fs.uuid_exists(uuid)
            fs.kill(uuid)
    assert conn.pending_jobs == 0
