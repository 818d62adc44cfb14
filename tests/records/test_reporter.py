"""The worker's record writer: notifications become record changes + events, in order, and an
unreachable Redis delays them without losing or reordering any."""
import redis

from voiceagent.calls.call_state import CallState, Direction
from voiceagent.calls.ports import CallInfo
from voiceagent.calls.turns import ToolCall, Turn

from voiceagent.calls.inbox import make_redis
from voiceagent.records.client import CallClient
from voiceagent.records.keys import Keys
from voiceagent.records.reporter import RecordReporter, RecordWriter
from voiceagent.records.store import RecordStore

from ..calls.redis_faults import RedisServer, TcpProxy


def Info(call_id):
    return CallInfo(id=call_id, direction=Direction.INBOUND, caller="+15550001", callee="+15550002", node="fs1",
                    worker="w1")


def _drive(rep, info):
    rep.call_state(info, CallState.OFFERED, 1.0)
    rep.call_state(info, CallState.ACTIVE, 2.0)
    rep.call_turn(info, Turn(0, kind="greeting", said=["Hello."], heard_by_caller=["Hello."]))
    rep.call_dtmf(info, "5", 3.0)
    rep.call_turn(info, Turn(1, heard="what time is it", raw="What time is it?", said=["It is noon."],
                             heard_by_caller=["It is —"], interrupted=True, timings={"stt_ms": 120.0, "_private": 1.0},
                             tools=[ToolCall("get_time", {}, "12:00", True)]))
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
    assert rec.turns[1].caller_text == "what time is it" and rec.turns[1].caller_raw == "What time is it?"
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


def test_a_refused_call_says_why_in_its_record_and_on_the_stream(prefix):
    client = CallClient(redis.Redis(), prefix)
    writer = RecordWriter(client.records)
    writer.start()
    rep = RecordReporter(writer, "w1")
    info = Info("call-3")
    rep.call_state(info, CallState.OFFERED, 1.0)
    rep.call_state(info, CallState.REFUSED, 1.5)
    rep.call_ended(info, cause="USER_BUSY", outcome="busy", ended_by="system", at=2.0, refused="draining")
    assert writer.flush(10)
    writer.stop()
    rec = client.get("call-3")
    assert rec.outcome.value == "busy" and rec.reason == "refused: draining" and rec.duration == 0.0
    got = [ev for _, ev in client.stream.read("g", "c", block_ms=1)]
    assert [ev.type for ev in got] == ["call.refused", "call.ended"] and got[0].reason == "draining"
