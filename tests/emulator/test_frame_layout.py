"""The emulator's outer frame layout against the captures: which headers, in which order, per
content type (FreeSWITCH puts Content-Length first on event frames, Content-Type first on replies)."""
from voiceagent.emulator import FreeSwitchEmulator
from voiceagent.telephony.eslwire import parse_event_plain

from tests.emulator.eslclient import RawEsl, trace_frames

TRACES = ("auth", "commands", "inbound_call_narrow", "playback_control", "originate")


def layouts(frames):
    return {(f.content_type, tuple(k for k, _ in f.headers)) for f in frames}


def test_outer_header_layout_matches_the_captures():
    captured = layouts(f for name in TRACES for f in trace_frames(name))
    assert ("text/event-plain", ("Content-Length", "Content-Type")) in captured  # the ground truth
    emu = FreeSwitchEmulator(host="127.0.0.1", port=0, password="ClueCon", switchname="fs1", speed=20.0)
    emu.start()
    esl = RawEsl(emu.port)
    try:
        esl.wait_for(lambda: esl.frames, what="auth/request")
        assert esl.command("auth ClueCon").get("Reply-Text") == "+OK accepted"
        esl.command("event plain ALL")
        esl.command("api status")
        esl.command("bgapi status")
        ch = emu.place_call(destination="agent_esl", caller="+15551230001", context="default")
        esl.wait_event(lambda f: parse_event_plain(f.body).name == "CHANNEL_ANSWER", what="CHANNEL_ANSWER")
        ch.hangup()
        esl.wait_event(lambda f: parse_event_plain(f.body).name == "CHANNEL_DESTROY", what="CHANNEL_DESTROY")
        got = layouts(esl.frames)
        assert {ct for ct, _ in got} >= {"auth/request", "command/reply", "api/response", "text/event-plain"}
        assert got - captured == set(), f"layouts FreeSWITCH never sent: {sorted(got - captured)}"
    finally:
        esl.close()
        emu.stop()
