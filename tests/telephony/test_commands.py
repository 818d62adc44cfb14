"""FreeSwitch typed commands: argument validation, wire text, and every command on the emulator."""
from __future__ import annotations

import gevent.queue
import pytest

from voiceagent.emulator import FreeSwitchEmulator
from voiceagent.telephony import events
from voiceagent.telephony.commands import CommandError, FreeSwitch, OriginateResult, parse_originate_reply
from voiceagent.telephony.esl import EslConnection

U = "0cb8ff79-9358-4203-8173-5e276ec24733"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def emu():
    e = FreeSwitchEmulator(host="127.0.0.1", port=0, password="ClueCon", switchname="fs1", speed=20.0)
    e.start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def fs(emu):
    c = EslConnection("fs1", "127.0.0.1", emu.port, "ClueCon", command_timeout=2.0, connect_timeout=2.0)
    c.start(timeout=3)
    yield FreeSwitch(c)
    c.stop()


@pytest.fixture
def call(emu, fs):
    """A parked, answered inbound call plus a queue of its typed events."""
    q: gevent.queue.Queue = gevent.queue.Queue()
    holder = {}

    def handler(ev):
        t = events.parse(ev)
        if t.uuid and t.uuid == holder.get("uuid"):
            q.put(t)

    fs.conn.on_event(handler)
    ch = emu.place_call(destination="agent_esl", context="default")
    holder["uuid"] = ch.uuid
    ch.q = q
    wait_for(q, lambda e: isinstance(e, events.ChannelPark))
    yield ch
    fs.conn.remove_handler(handler)
    if fs.uuid_exists(ch.uuid):
        fs.kill(ch.uuid)
        assert ch.wait_hangup(3)


def wait_for(q, pred, timeout=5.0):
    with gevent.Timeout(timeout, AssertionError("expected event did not arrive")):
        while True:
            e = q.get()
            if pred(e):
                return e


# ----------------------------------------------------------------------------- validation
class _NoConn:
    node = "x"

    def api(self, *a, **k):  # pragma: no cover - validation must fail before any I/O
        raise AssertionError("validation let a bad argument through")

    bgapi_async = api


NOIO = FreeSwitch(_NoConn())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call_, match",
    [
        (lambda: NOIO.kill("not-a-uuid"), "not a channel uuid"),
        (lambda: NOIO.kill(U + "\napi status"), "not a channel uuid"),
        (lambda: NOIO.kill(U, cause="normal clearing"), "not a hangup cause"),
        (lambda: NOIO.broadcast(U, "/tmp/a b.wav"), "must not contain spaces"),
        (lambda: NOIO.broadcast(U, "/tmp/a.wav", leg="cleg"), "leg must be one of"),
        (lambda: NOIO.transfer(U, "100\nexit"), "must not contain spaces or newlines"),
        (lambda: NOIO.setvar(U, "bad name", "x"), "bad channel variable name"),
        (lambda: NOIO.setvar(U, "x", "a\nb"), "newlines"),
        (lambda: NOIO.getvar(U, "x y"), "bad channel variable name"),
        (lambda: NOIO.recv_dtmf(U, "12 3"), "DTMF digits"),
        (lambda: NOIO.audio_fork_start(U, "http://h/x"), "ws:// or wss://"),
        (lambda: NOIO.audio_fork_start(U, "ws:///nohost"), "ws:// or wss://"),
        (lambda: NOIO.audio_fork_start(U, "ws://h:99999/"), "bad port"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/ x"), "must not contain spaces"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", mix="quad"), "mix must be one of"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", rate=44100), "rate must be one of"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", bugname="{x}"), "bugname must not start"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", metadata={"name": "O'Brien"}), "quotes, backslashes"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", metadata={"q": 'say "hi"'}), "quotes, backslashes"),
        (lambda: NOIO.audio_fork_start(U, "ws://h/", metadata={"x": "a" * 9000}), "8 KiB"),
        (lambda: NOIO.audio_fork_send_text(U, '{"a": 1}'), "must not contain spaces"),
        (lambda: NOIO.audio_fork_send_text(U, ""), "must not be empty"),
        (lambda: NOIO.audio_fork_stop(U, final_text="a\\b"), "quotes, backslashes"),
        (lambda: NOIO.originate("+1555 1"), "must not contain spaces"),
        (lambda: NOIO.originate("sofia/gw/{x}"), "must not contain"),
        (lambda: NOIO.originate("+1555", timeout=0), "timeout"),
        (lambda: NOIO.originate("+1555", app="park"), "name\\(args\\)"),
        (lambda: NOIO.originate("+1555", app="playback(/a b)"), "name\\(args\\)"),
        (lambda: NOIO.originate("+1555", call_uuid="nope"), "not a channel uuid"),
        (lambda: NOIO.originate("+1555", variables={"a": "x,y"}), "must not contain"),
        (lambda: NOIO.originate("+1555", variables={"bad key": "1"}), "bad channel variable"),
    ],
)
def test_bad_arguments_raise_value_error_before_io(call_, match):
    with pytest.raises(ValueError, match=match):
        call_()


def test_originate_command_text():
    uuid, cmd = NOIO._originate_command("+15551234567", "carrier1", "+15550000001", "Voice Agent", 30,
                                        {"playback_terminators": "none"}, "park()", U)
    assert uuid == U
    assert cmd == (
        "originate {origination_uuid=" + U + ",originate_timeout=30,origination_caller_id_number=+15550000001,"
        "origination_caller_id_name='Voice Agent',playback_terminators=none}sofia/gateway/carrier1/+15551234567 &park()"
    )
    uuid2, cmd2 = NOIO._originate_command("loopback/agent_esl", None, None, None, 5, None, "park()", None)
    assert uuid2 != uuid and cmd2.endswith("}loopback/agent_esl &park()") and f"origination_uuid={uuid2}" in cmd2


@pytest.mark.parametrize(
    "body, outcome, cause",
    [
        (f"+OK {U}\n", "answered", ""),
        ("-ERR USER_BUSY\n", "busy", "USER_BUSY"),
        ("-ERR NO_ANSWER\n", "no_answer", "NO_ANSWER"),
        ("-ERR CALL_REJECTED\n", "rejected", "CALL_REJECTED"),
        ("-ERR UNALLOCATED_NUMBER\n", "invalid_number", "UNALLOCATED_NUMBER"),
        ("-ERR INVALID_GATEWAY\n", "failed", "INVALID_GATEWAY"),
        ("-USAGE: <call url> <exten>\n", "failed", "-USAGE: <call url> <exten>"),
        ("", "failed", "NO_REPLY"),
    ],
)
def test_parse_originate_reply(body, outcome, cause):
    r = parse_originate_reply(U, body)
    assert isinstance(r, OriginateResult) and (r.uuid, r.outcome, r.cause) == (U, outcome, cause)
    assert r.ok == (outcome == "answered")


# ----------------------------------------------------------------------------- on the emulator
def test_not_found_replies_raise_command_error(fs):
    cases = [
        (lambda: fs.kill(MISSING), "No such channel"),
        (lambda: fs.break_playback(MISSING), "No such channel"),
        (lambda: fs.pause_playback(MISSING), "No such channel"),
        (lambda: fs.transfer(MISSING, "agent_esl"), "No such channel"),
        (lambda: fs.getvar(MISSING, "x"), "No such channel"),
        (lambda: fs.setvar(MISSING, "x", "1"), "No such channel"),
        (lambda: fs.broadcast(MISSING, "/tmp/x.wav"), "invalid uuid"),
        (lambda: fs.recv_dtmf(MISSING, "1"), "Cannot locate session"),
        (lambda: fs.audio_fork_start(MISSING, "ws://127.0.0.1:1/x"), "Operation Failed"),
        (lambda: fs.audio_fork_stop(MISSING), "Operation Failed"),
        (lambda: fs.audio_fork_send_text(MISSING, '{"a":1}'), "Operation Failed"),
        (lambda: fs.answer(MISSING), "(?i)no such channel"),
        (lambda: fs.api("nosuchcommand"), "Command not found"),
    ]
    for fn, match in cases:
        with pytest.raises(CommandError, match=match) as info:
            fn()
        assert info.value.reply.startswith("-ERR")
    assert fs.uuid_exists(MISSING) is False


def test_show_channels_empty_and_with_call(fs, emu):
    assert emu.wait_no_channels(5)
    assert fs.show_channels() == []
    ch = emu.place_call(destination="agent_esl", context="default")
    try:
        rows = fs.show_channels()
        assert [r["uuid"] for r in rows] == [ch.uuid]
    finally:
        fs.kill(ch.uuid)
        assert ch.wait_hangup(3)


def test_vars_dtmf_and_exists(fs, call):
    assert fs.uuid_exists(call.uuid)
    assert fs.getvar(call.uuid, "never_set") is None
    fs.setvar(call.uuid, "greeting", "hello world")
    assert fs.getvar(call.uuid, "greeting") == "hello world"
    fs.setvar(call.uuid, "greeting", None)
    assert fs.getvar(call.uuid, "greeting") is None
    fs.recv_dtmf(call.uuid, "1#")
    digits = [wait_for(call.q, lambda e: isinstance(e, events.Dtmf)).digit for _ in range(2)]
    assert digits == ["1", "#"]


def test_broadcast_break_and_kill(fs, call, emu):
    fs.broadcast(call.uuid, "tone_stream://%(5000,0,440)")
    start = wait_for(call.q, lambda e: isinstance(e, events.PlaybackStart))
    assert start.path == "tone_stream://%(5000,0,440)"
    fs.break_playback(call.uuid)
    stop = wait_for(call.q, lambda e: isinstance(e, events.PlaybackStop))
    assert stop.status == "break"
    done = wait_for(call.q, lambda e: isinstance(e, events.ExecuteComplete) and e.application == "playback")
    assert done.response == "FILE PLAYED"
    fs.kill(call.uuid, cause="USER_BUSY")
    hang = wait_for(call.q, lambda e: isinstance(e, events.ChannelHangup))
    assert hang.cause == "USER_BUSY" and hang.outcome == "answered"


def test_answer_an_unanswered_call(fs, emu):
    q: gevent.queue.Queue = gevent.queue.Queue()
    handler = fs.conn.on_event(lambda ev: q.put(events.parse(ev)))
    try:
        ch = emu.place_call(destination="+15551230000", context="public")  # parks without answering
        wait_for(q, lambda e: isinstance(e, events.ChannelPark) and e.uuid == ch.uuid)
        fs.answer(ch.uuid)
        ans = wait_for(q, lambda e: isinstance(e, events.ChannelAnswer) and e.uuid == ch.uuid)
        assert ans.answer_state == "answered"
        fs.kill(ch.uuid)
        assert ch.wait_hangup(3)
    finally:
        fs.conn.remove_handler(handler)


def test_transfer(fs, call):
    fs.transfer(call.uuid, "agent_esl", context="default")
    ex = wait_for(call.q, lambda e: isinstance(e, events.Execute) and e.application == "park")
    assert ex.uuid == call.uuid


def test_audio_fork_start_send_stop(fs, call):
    fs.audio_fork_start(call.uuid, "ws://127.0.0.1:9/call/" + call.uuid, bugname="agent_bug",
                        metadata={"uuid": call.uuid, "node": "fs1", "caller": "+1555 0001"})
    bug = wait_for(call.q, lambda e: isinstance(e, events.MediaBugStart))
    assert bug.function == "agent_bug"
    # nothing listens on port 9: mod_audio_fork reports connect_failed with a reason
    failed = wait_for(call.q, lambda e: isinstance(e, events.ForkConnectFailed))
    assert failed.reason
    with pytest.raises(CommandError, match="Operation Failed"):  # same bug name twice
        fs.audio_fork_start(call.uuid, "ws://127.0.0.1:9/x", bugname="agent_bug")
    fs.audio_fork_send_text(call.uuid, '{"type":"hello"}', bugname="agent_bug")
    fs.audio_fork_stop(call.uuid, "agent_bug", final_text='{"bye":true}')
    stop = wait_for(call.q, lambda e: isinstance(e, events.MediaBugStop))
    assert stop.function == "agent_bug"
    with pytest.raises(CommandError, match="Operation Failed"):
        fs.audio_fork_stop(call.uuid, "agent_bug")


def test_originate_outcomes_and_loopback(fs, emu):
    emu.script_destination("+15550002", outcome="busy")
    emu.script_destination("+15550003", outcome="answer")
    emu.script_destination("+15550004", outcome="invalid_gateway")
    busy = fs.originate("+15550002", gateway="carrier1", timeout=2)
    assert (busy.outcome, busy.cause, busy.ok) == ("busy", "USER_BUSY", False)
    bad = fs.originate("+15550004", gateway="carrier1", timeout=2)
    assert (bad.outcome, bad.cause) == ("failed", "INVALID_GATEWAY")
    assert fs.originate("error/call_rejected").outcome == "rejected"
    mine = "aaaaaaaa-0000-4000-8000-00000000abcd"
    ok = fs.originate("+15550003", gateway="carrier1", call_uuid=mine, variables={"playback_terminators": "none"})
    assert (ok.ok, ok.uuid, ok.cause) == (True, mine, "")
    assert fs.getvar(mine, "playback_terminators") == "none"
    fs.kill(mine)
    uuid, result = fs.originate_async("loopback/agent_esl", timeout=5)
    res = result.get(timeout=5)
    assert res.ok and res.uuid == uuid and fs.uuid_exists(uuid)
    fs.kill(uuid)
    assert emu.wait_no_channels(5)


def test_pause_playback_toggles_without_events_and_needs_a_file(fs, call):
    with pytest.raises(CommandError, match="No file handle"):
        fs.pause_playback(call.uuid)  # nothing plays
    fs.broadcast(call.uuid, "tone_stream://%(4000,0,440)")
    wait_for(call.q, lambda e: isinstance(e, events.PlaybackStart))
    fs.pause_playback(call.uuid)
    assert call.paused
    fs.pause_playback(call.uuid)  # the same command resumes
    assert not call.paused
    stop = wait_for(call.q, lambda e: isinstance(e, (events.PlaybackStop, events.PlaybackStart)))
    assert isinstance(stop, events.PlaybackStop) and stop.status == "done"  # no event of its own, played on
    assert len(call.segments) == 1 and len(call.segments[0]["pauses"]) == 1, call.segments
