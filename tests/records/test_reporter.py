"""The worker's record writer: notifications become record changes + events, in order, and an
unreachable Redis delays them without losing or reordering any."""
from dataclasses import dataclass, field
from typing import Dict, List

import redis

from voiceagent.calls.inbox import make_redis
from voiceagent.records.client import CallClient
from voiceagent.records.keys import Keys
from voiceagent.records.reporter import RecordReporter, RecordWriter
from voiceagent.records.store import RecordStore

from ..calls.redis_faults import RedisServer, TcpProxy


@dataclass(frozen=True)
class Info:
    id: str
    direction_value: str = "inbound"
    caller: str = "+15550001"
    callee: str = "+15550002"
    node: str = "fs1"
    profile: str = ""


@dataclass
class FakeTurn:
    index: int
    heard: str = ""
    said: List[str] = field(default_factory=list)
    heard_by_caller: List[str] = field(default_factory=list)
    tools: List[Dict] = field(default_factory=list)
    interrupted: bool = False
    timings: Dict[str, float] = field(default_factory=dict)
    kind: str = "speech"
    ack: str = ""


def _drive(rep, info):
    rep.call_state(info, "offered", 1.0)
    rep.call_state(info, "active", 2.0)
    rep.call_turn(info, FakeTurn(0, kind="greeting", said=["Hello."], heard_by_caller=["Hello."]))
    rep.call_dtmf(info, "5", 3.0)
    rep.call_turn(info, FakeTurn(1, heard="what time is it", said=["It is noon."], heard_by_caller=["It is —"],
                                 interrupted=True, timings={"stt_ms": 120.0, "_private": 1.0},
                                 tools=[{"name": "get_time", "arguments": {}, "result": "12:00", "ok": True}]))
    rep.call_barge_in(info, 4.0)
    rep.call_ended(info, cause="NORMAL_CLEARING", outcome="answered", ended_by="caller", at=6.0)


def test_an_inbound_call_leaves_its_whole_record_and_ordered_events(prefix):
    client = CallClient(redis.Redis(), prefix)
    writer = RecordWriter(client.records)
    writer.start()
    rep = RecordReporter(writer, "w1")
    _drive(rep, Info("call-1"))
    assert writer.flush(10)
    writer.stop()
    rec = client.get("call-1")
    assert [h.state for h in rec.history] == ["offered", "active", "ended"]
    assert rec.outcome.value == "answered" and rec.duration == 4.0 and rec.ended_by == "caller"
    assert rec.from_ == "+15550001" and rec.to == "+15550002" and rec.worker == "w1"
    assert [t.kind for t in rec.turns] == ["greeting", "speech"]
    assert rec.turns[1].heard == ["It is —"] and rec.turns[1].interrupted
    assert rec.turns[1].timings == {"stt_ms": 120.0}  # private bookkeeping stays out
    assert rec.turns[1].tools[0].name == "get_time" and rec.turns[1].tools[0].result == "12:00"
    assert [d.digit for d in rec.dtmf] == ["5"] and rec.barge_ins == [4.0]
    types = [ev.type for _, ev in client.stream.read("g", "c", block_ms=1)]
    assert types == ["call.answered", "call.turn", "call.dtmf", "call.turn", "call.tool", "call.barge_in",
                     "call.ended"]
    assert "call-1" not in client.records.open_ids()


def test_redis_down_delays_the_writes_but_loses_and_reorders_none(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    proxy = TcpProxy(server.port)
    proxy.up()
    try:
        r = make_redis(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=0.5, pool_timeout=0.5)
        keys = Keys("outage")
        writer = RecordWriter(RecordStore(r, keys))
        writer.start()
        rep = RecordReporter(writer, "w1")
        proxy.down()
        _drive(rep, Info("call-2"))
        assert not writer.flush(1.0) and writer.queued > 0  # nothing could be written
        proxy.up()
        assert writer.flush(20), "the queued writes were never replayed"
        writer.stop()
        client = CallClient(server.client(), "outage")
        rec = client.get("call-2")
        assert [h.state for h in rec.history] == ["offered", "active", "ended"] and len(rec.turns) == 2
        types = [ev.type for _, ev in client.stream.read("g", "c", block_ms=1)]
        assert types[0] == "call.answered" and types[-1] == "call.ended" and len(types) == 7
    finally:
        proxy.down()
        server.stop()
