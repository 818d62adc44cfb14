"""events.parse over every event of the real FreeSWITCH traces, plus malformed input."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.data import FREESWITCH_TRACES, trace_files
from voiceagent.telephony import eslwire, events
from voiceagent.telephony.events import (
    BackgroundJob,
    ChannelAnswer,
    ChannelCreate,
    ChannelDestroy,
    ChannelHangup,
    ChannelHangupComplete,
    ChannelPark,
    Dtmf,
    Execute,
    ExecuteComplete,
    ForkConnect,
    ForkConnectFailed,
    ForkDisconnect,
    ForkKillAudio,
    ForkPlayAudio,
    GenericEvent,
    MediaBugStart,
    MediaBugStop,
    PlaybackStart,
    PlaybackStop,
    hangup_outcome,
)

TRACES = FREESWITCH_TRACES


def trace_events(name: str):
    data = (TRACES / f"{name}.esl.bin").read_bytes()
    return [eslwire.parse_event_plain(f.body) for f in eslwire.FrameReader().feed(data) if f.content_type == "text/event-plain"]


def typed(name: str):
    return [events.parse(e) for e in trace_events(name)]


@pytest.mark.parametrize("name", [p.name[: -len(".esl.bin")] for p in trace_files("*.esl.bin")])
def test_every_trace_event_parses_without_problem(name, caplog):
    with caplog.at_level(logging.WARNING):
        out = typed(name)
    flagged = 0
    for ev in out:
        assert ev.node == "fs1" and ev.timestamp > 1_700_000_000_000_000
        if ev.raw.get("Command", "").startswith("sendevent"):
            # the capture's hand-made `sendevent CUSTOM mod_audio_fork::play_audio` has no
            # channel and no body: exactly what must be flagged, not crash
            flagged += bool(getattr(ev, "problem", ""))
            continue
        assert not getattr(ev, "problem", ""), (ev.name, ev.problem)
    assert len([r for r in caplog.records if r.name == "voiceagent.telephony.events"]) == flagged
    assert flagged == (1 if name == "commands" else 0)


def test_inbound_call_narrow_typed_sequence():
    out = typed("inbound_call_narrow")
    kinds = [type(e).__name__ for e in out]
    assert kinds[:3] == ["ChannelCreate", "Execute", "ChannelAnswer"]
    create = out[0]
    assert isinstance(create, ChannelCreate)
    assert create.direction == "inbound" and create.destination == "agent" and create.caller
    assert create.uuid and all(e.uuid == create.uuid for e in out if not isinstance(e, BackgroundJob))
    bug = next(e for e in out if isinstance(e, MediaBugStart))
    assert bug.function == "audio_fork"
    play = [e for e in out if isinstance(e, ForkPlayAudio)]
    assert play and play[0].file.startswith("/usr/local/freeswitch/temp/") and play[0].file.endswith(".tmp.wav")
    assert play[0].json["audioContentType"] == "wav" and "audioContent" not in play[0].json
    jobs = [e for e in out if isinstance(e, BackgroundJob)]
    assert jobs and all(j.ok and j.body == "+OK Message sent\n" and j.command == "uuid_broadcast" for j in jobs)
    assert any(isinstance(e, ForkKillAudio) for e in out)
    stops = [e for e in out if isinstance(e, PlaybackStop)]
    assert {s.status for s in stops} <= {"done", "break"} and "break" in {s.status for s in stops}
    dtmf = next(e for e in out if isinstance(e, Dtmf))
    assert dtmf.digit == "1" and dtmf.source == "RTP" and dtmf.duration > 0
    hang = next(e for e in out if type(e) is ChannelHangup)
    assert hang.cause == "NORMAL_CLEARING" and hang.answered and hang.outcome == "answered"
    assert isinstance(out[-1], ChannelDestroy)


def test_playback_control_details():
    out = typed("playback_control")
    starts = [e for e in out if isinstance(e, PlaybackStart)]
    assert starts[0].path == "tone_stream://%(1000,0,440)"  # URL-decoded
    ex = [e for e in out if isinstance(e, ExecuteComplete) and e.application == "playback"]
    assert {"FILE PLAYED", "FILE NOT FOUND"} <= {e.response for e in ex}
    assert all(e.app_uuid for e in ex)
    digits = [e.digit for e in out if isinstance(e, Dtmf)]
    assert "#" in digits and "*" in digits
    assert all(e.source == "APP" for e in out if isinstance(e, Dtmf) and e.digit in "*#")
    connect = next(e for e in out if isinstance(e, ForkConnect))
    assert connect.subclass == "mod_audio_fork::connect" and connect.json == {}
    assert any(isinstance(e, MediaBugStop) and e.function == "audio_fork" for e in out)
    park = next(e for e in out if isinstance(e, ChannelPark))
    assert park.answer_state == "answered"


def test_fork_ws_connect_failed_and_disconnect():
    out = typed("fork_ws")
    reasons = {e.reason for e in out if isinstance(e, ForkConnectFailed)}
    assert reasons == {"Unable to connect", "HS: ws upgrade response not 101"}
    assert any(isinstance(e, ForkDisconnect) for e in out)
    assert {e.function for e in out if isinstance(e, MediaBugStart)} >= {"bug_stereo", "bug_mono8k", "bug_mixed"}


def test_originate_outcomes_from_trace():
    out = typed("originate")
    jobs = [e for e in out if isinstance(e, BackgroundJob)]
    bodies = [j.body.strip() for j in jobs]
    assert "-ERR USER_BUSY" in bodies and "-ERR INVALID_GATEWAY" in bodies
    outgoing = [e for e in out if e.name == "CHANNEL_OUTGOING"]
    assert outgoing and all(isinstance(e, GenericEvent) and not e.problem for e in outgoing)
    destroy_na = [e for e in out if isinstance(e, ChannelDestroy) and e.channel_name == "N/A"]
    assert destroy_na and destroy_na[0].cause == ""
    unanswered = [e for e in out if isinstance(e, ChannelHangupComplete) and e.cause == "NO_ANSWER"]
    assert unanswered and all(not e.answered and e.outcome == "no_answer" for e in unanswered)
    failed = [e for e in out if isinstance(e, ChannelHangup) and e.cause == "NORMAL_TEMPORARY_FAILURE"]
    assert failed and failed[0].outcome == "failed"
    a = next(e for e in out if isinstance(e, ChannelCreate) and e.uuid == "aaaaaaaa-0000-4000-8000-000000000001")
    assert a.direction == "outbound" and a.destination == "agent_esl"
    assert any(isinstance(e, ChannelAnswer) for e in out)


def test_private_command_keeps_first_event_name():
    # PRIVATE_COMMAND carries a full COMMAND header set first (traces README, observation 2).
    priv = [e for e in trace_events("inbound_call_all") if "PRIVATE_COMMAND" in [v for k, v in e.headers if k == "Event-Name"]]
    assert len(priv) == 2
    for ev in priv:
        assert [v for k, v in ev.headers if k == "Event-Name"] == ["COMMAND", "PRIVATE_COMMAND"]
        parsed = events.parse(ev)
        assert isinstance(parsed, GenericEvent) and parsed.name == "COMMAND" and not parsed.problem


def test_hangup_complete_duplicate_cause_header():
    ev = next(e for e in trace_events("playback_control") if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert len([k for k, _ in ev.headers if k == "Hangup-Cause"]) == 2
    assert events.parse(ev).cause == "NORMAL_CLEARING"


def _ev(name, body=b"", **headers):
    hs = [("Event-Name", name), ("FreeSWITCH-Switchname", "fs9"), ("Event-Date-Timestamp", "12")]
    hs += [(k.replace("_", "-"), v) for k, v in headers.items()]
    return eslwire.Event(hs, body)


@pytest.mark.parametrize(
    "ev, problem",
    [
        (_ev("CUSTOM", b"{not json", Event_Subclass="mod_audio_fork::play_audio", Unique_ID="u"), "not JSON"),
        (_ev("CUSTOM", b'{"x":1}', Event_Subclass="mod_audio_fork::play_audio", Unique_ID="u"), "without a file"),
        (_ev("CUSTOM", b"[1]", Event_Subclass="mod_audio_fork::connect_failed", Unique_ID="u"), "not an object"),
        (_ev("DTMF", Unique_ID="u"), "DTMF-Digit"),
        (_ev("CHANNEL_HANGUP"), "Unique-ID"),
        (_ev("BACKGROUND_JOB", b"+OK"), "Job-UUID"),
        (_ev("CHANNEL_EXECUTE", Unique_ID="u"), "Application"),
    ],
)
def test_malformed_events_become_generic_with_log(ev, problem, caplog):
    with caplog.at_level(logging.WARNING, logger="voiceagent.telephony.events"):
        out = events.parse(ev)
    assert isinstance(out, GenericEvent) and problem in out.problem
    assert out.node == "fs9" and out.raw is ev
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_unknown_and_empty_events_are_generic():
    out = events.parse(eslwire.Event([]))
    assert isinstance(out, GenericEvent) and out.name == "" and out.timestamp == 0
    out = events.parse(_ev("HEARTBEAT", Event_Date_Timestamp="bad"))
    assert isinstance(out, GenericEvent) and not out.problem


def test_execute_typed_fields():
    out = events.parse(_ev("CHANNEL_EXECUTE_COMPLETE", Unique_ID="u", Application="playback",
                           Application_Data="/tmp/a.wav", Application_UUID="app-1", Application_Response="FILE PLAYED",
                           Caller_Caller_ID_Number="+1555", Caller_Destination_Number="100", Call_Direction="inbound"))
    assert isinstance(out, ExecuteComplete) and isinstance(out, Execute)
    assert (out.application, out.data, out.app_uuid, out.response) == ("playback", "/tmp/a.wav", "app-1", "FILE PLAYED")
    assert (out.caller, out.destination, out.direction, out.node, out.timestamp) == ("+1555", "100", "inbound", "fs9", 12)


@pytest.mark.parametrize(
    "cause, answered, outcome",
    [
        ("NORMAL_CLEARING", True, "answered"),
        ("USER_BUSY", True, "answered"),
        ("USER_BUSY", False, "busy"),
        ("NO_ANSWER", False, "no_answer"),
        ("NO_USER_RESPONSE", False, "no_answer"),
        ("ORIGINATOR_CANCEL", False, "no_answer"),
        ("CALL_REJECTED", False, "rejected"),
        ("UNALLOCATED_NUMBER", False, "invalid_number"),
        ("INVALID_NUMBER_FORMAT", False, "invalid_number"),
        ("NO_ROUTE_DESTINATION", False, "invalid_number"),
        ("INVALID_GATEWAY", False, "failed"),
        ("GATEWAY_DOWN", False, "failed"),
        ("NORMAL_TEMPORARY_FAILURE", False, "failed"),
        ("RECOVERY_ON_TIMER_EXPIRE", False, "failed"),
        ("SOMETHING_NEW", False, "failed"),
        ("", False, "failed"),
        (None, False, "failed"),
        ("user_busy", False, "busy"),
    ],
)
def test_hangup_outcome_table(cause, answered, outcome):
    assert hangup_outcome(cause, answered) == outcome
