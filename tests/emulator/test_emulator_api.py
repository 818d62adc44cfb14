"""The emulator's Python API and its shipped dialplan, driven over real sockets."""
from __future__ import annotations

import base64
import filecmp
import json
import wave
from pathlib import Path

import gevent
import numpy as np
import pytest

from voiceagent.emulator import FreeSwitchEmulator
from voiceagent.telephony.eslwire import parse_event_plain

from tests.emulator.eslclient import RawEsl, WsPeer

SPEED = 20.0
REPO = Path(__file__).resolve().parents[2]


def _wav(path: Path, seconds: float, rate: int) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * 300 * t) * 10000).astype("<i2").tobytes())
    return path


def _ev(f):
    return parse_event_plain(f.body)


@pytest.fixture
def peer():
    p = WsPeer()
    yield p
    p.close()


@pytest.fixture
def emu(tmp_path, peer):
    e = FreeSwitchEmulator(speed=SPEED, temp_dir=str(tmp_path),
                           variables={"voiceagent_fork_url": f"ws://127.0.0.1:{peer.port}",
                                      "voiceagent_fork_user": "va", "voiceagent_fork_password": "s3cret"})
    e.start()
    yield e
    e.stop()


def _esl(emu, events="ALL"):
    esl = RawEsl(emu.port)
    assert esl.command("auth ClueCon").get("Reply-Text") == "+OK accepted"
    assert esl.command(f"event plain {events}").get("Reply-Text") == "+OK event listener enabled plain"
    return esl


def test_star_ends_playback_unless_terminators_none(emu, tmp_path):
    esl = _esl(emu, "PLAYBACK_START PLAYBACK_STOP CHANNEL_PARK DTMF")
    try:
        ch = emu.place_call(destination="agent_esl", context="default")
        esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK", 5, "park")
        wav = _wav(tmp_path / "long.wav", 20, 8000)
        # default terminator: * ends the file
        esl.command(f"api uuid_broadcast {ch.uuid} {wav} aleg")
        esl.wait_for(lambda: ch.playing is not None, 5, "playing")
        esl.command(f"api uuid_recv_dtmf {ch.uuid} *")
        esl.wait_for(lambda: len(ch.segments) == 1, 5, "playback end")
        assert ch.segments[0]["status"] == "break"
        # playback_terminators=none: * is only a DTMF event
        esl.command(f"api uuid_setvar {ch.uuid} playback_terminators none")
        esl.command(f"api uuid_broadcast {ch.uuid} {wav} aleg")
        esl.wait_for(lambda: ch.playing is not None, 5, "playing")
        esl.command(f"api uuid_recv_dtmf {ch.uuid} *")
        assert ch.playing is not None and len(ch.segments) == 1
        esl.command(f"api uuid_break {ch.uuid}")
        esl.wait_for(lambda: len(ch.segments) == 2, 5, "playback end")
        ch.hangup()
    finally:
        esl.close()


def test_public_dialplan_forks_without_answering(emu, peer, tmp_path):
    esl = _esl(emu)
    try:
        ch = emu.place_call(destination="+15550001000", caller="+15551230001")
        assert peer.connected.wait(5)
        peer.wait_texts(1)
        path, meta = peer.texts[0]
        assert path == f"/call/{ch.uuid}"
        # no caller ids in the JSON: FreeSWITCH would paste them in unescaped (the worker reads them from ESL)
        assert meta == f'{{"uuid":"{ch.uuid}","node":"fs1","direction":"inbound"}}'
        auth = peer.connections[0].request.headers["Authorization"]
        assert base64.b64decode(auth.split()[1]) == b"va:s3cret"
        esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK", 5, "park")
        names = [_ev(f).key for f in esl.events]
        assert "CHANNEL_ANSWER" not in names and not ch.answered
        # MEDIA_BUG_START comes before the EXECUTE(set) whose expansion started the fork
        i_bug = names.index("MEDIA_BUG_START")
        sets = [i for i, f in enumerate(esl.events) if _ev(f).get("Application") == "set"]
        fork_set = next(i for i in sets if "voiceagent_fork=" in _ev(esl.events[i]).get("Application-Data", ""))
        assert i_bug == fork_set - 1 or (i_bug < fork_set and names[i_bug + 1] == "CHANNEL_EXECUTE")
        assert ch.variables["playback_terminators"] == "none"
        # the agent answers, plays, and hangs up
        assert esl.command(f"api uuid_answer {ch.uuid}").body == b"+OK\n"
        assert ch.wait_answered(2)
        wav = _wav(tmp_path / "hello.wav", 0.5, 22050)
        assert esl.command(f"api uuid_broadcast {ch.uuid} {wav} aleg").body == b"+OK Message sent\n"
        esl.command(f"api uuid_broadcast {ch.uuid} tone_stream://%(200,0,440) aleg")
        esl.wait_for(lambda: len(ch.segments) == 2, 5, "two playbacks")
        assert esl.command(f"api uuid_kill {ch.uuid}").body == b"+OK\n"
        assert ch.wait_hangup(5)
        assert [s["status"] for s in ch.segments] == ["done", "done"]
        assert ch.segments[0]["end"] - ch.segments[0]["start"] == pytest.approx(0.5, abs=0.01)
        pcm, rate = ch.heard_audio()
        samples = np.frombuffer(pcm, dtype="<i2")
        s0 = int(ch.segments[0]["start"] * rate)
        assert np.abs(samples[s0:s0 + rate // 4]).max() > 5000  # the file is in the recording
        ch.write_heard_wav(str(tmp_path / "heard.wav"))
        with wave.open(str(tmp_path / "heard.wav")) as w:
            assert w.getframerate() == 16000 and w.getnframes() == len(samples)
        assert emu.wait_no_channels(5)
        assert esl.command(f"api uuid_exists {ch.uuid}").body == b"false"
    finally:
        esl.close()


def test_caller_hangup_closes_fork_first(emu, peer):
    esl = _esl(emu, "CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CUSTOM mod_audio_fork::connect")
    try:
        ch = emu.place_call(destination="agent", caller="+15551230001", audio=b"\x00\x01" * 16000)
        esl.wait_event(lambda f: _ev(f).subclass == "mod_audio_fork::connect", 5, "connect")
        ch.hangup()
        hup = esl.wait_event(lambda f: _ev(f).name == "CHANNEL_HANGUP", 5, "hangup")
        esl.wait_event(lambda f: _ev(f).name == "CHANNEL_HANGUP_COMPLETE", 5, "hangup complete")
        assert peer.closed_at, "the fork's WebSocket was not closed"
        # as captured: on a caller hangup the WS Close precedes CHANNEL_HANGUP
        assert peer.closed_at[0] <= esl.arrival[esl.frames.index(hup)]
        assert ch.hangup_cause == "NORMAL_CLEARING"
        assert peer.binary_bytes > 0
    finally:
        esl.close()


@pytest.mark.parametrize("outcome,reply,events", [
    ("busy", "-ERR USER_BUSY\n", ["CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
                                  "CHANNEL_HANGUP", "BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"]),
    ("no_answer", "-ERR NO_ANSWER\n", ["CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
                                       "CHANNEL_HANGUP", "BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE",
                                       "CHANNEL_DESTROY"]),
    ("invalid_gateway", "-ERR INVALID_GATEWAY\n", ["CHANNEL_DESTROY", "BACKGROUND_JOB"]),
    ("answer", "+OK aaaaaaaa-0000-4000-8000-00000000abcd\n",
     ["CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_ANSWER", "BACKGROUND_JOB",
      "CHANNEL_EXECUTE", "CHANNEL_PARK"]),
])
def test_scripted_outbound(emu, outcome, reply, events):
    emu.script_destination("+15550002", outcome=outcome, audio=b"\x00\x10" * 800)
    esl = _esl(emu, "CHANNEL_CREATE CHANNEL_OUTGOING CHANNEL_ORIGINATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_PARK "
                    "CHANNEL_EXECUTE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY BACKGROUND_JOB")
    u = "aaaaaaaa-0000-4000-8000-00000000abcd"
    try:
        r = esl.command(f"bgapi originate {{origination_uuid={u},originate_timeout=2}}"
                        f"sofia/gateway/carrier/+15550002 &park()")
        assert r.get("Reply-Text").startswith("+OK Job-UUID: ")
        job = esl.wait_event(lambda f: _ev(f).name == "BACKGROUND_JOB", 5, "job")
        assert job.body.split(b"\n\n", 1)[1].decode() == reply
        esl.wait_for(lambda: len(esl.events) >= len(events), 5, "events")
        assert [_ev(f).name for f in esl.events] == events
        if outcome == "answer":
            ch = emu.channels[u]
            assert ch.answered and ch.direction == "outbound"
            esl.command(f"api uuid_kill {u}")
        assert emu.wait_no_channels(5)
    finally:
        esl.close()


def test_park_timeout_and_bad_input(tmp_path):
    dp = tmp_path / "dialplan" / "public"
    dp.mkdir(parents=True)
    (dp / "x.xml").write_text(
        '<include><extension name="t"><condition field="destination_number" expression="^(\\d+)$">'
        '<action application="set" data="park_timeout=2:ALLOTTED_TIMEOUT"/><action application="set" data="n=$1"/>'
        '<action application="park"/></condition></extension></include>')
    emu = FreeSwitchEmulator(speed=SPEED, temp_dir=str(tmp_path), dialplan_dir=str(tmp_path / "dialplan")).start()
    try:
        esl = _esl(emu)
        ch = emu.place_call(destination="123")
        assert ch.wait_hangup(2)  # 2 call seconds at speed 20
        assert ch.hangup_cause == "ALLOTTED_TIMEOUT" and ch.variables["n"] == "123"
        # nonsense on the wire never kills the server
        assert esl.command("api uuid_audio_fork").body.startswith(b"-USAGE: <uuid> [start")
        assert esl.command("api nosuch x").body == b"-ERR nosuch Command not found!\n"
        assert esl.command("api originate").body.startswith(b"-USAGE: <call url>")
        assert esl.command("api uuid_getvar").body == b"-USAGE: <uuid> <var>\n"
        bad = RawEsl(emu.port)
        bad.send(b"auth ClueCon\n\napi status\nContent-Length: -5\n\n")
        assert bad.closed.wait(3)
        assert esl.command("api show channels count").body == b"\n0 total.\n"
        assert esl.command("api show channels as json").body == b'{"row_count": 0}\n'
        ch2 = emu.place_call(destination="77")
        esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK" and _ev(f).uuid == ch2.uuid, 5, "park")
        rows = json.loads(esl.command("api show channels as json").body)
        assert rows["row_count"] == 1 and rows["rows"][0]["uuid"] == ch2.uuid
        assert list(rows["rows"][0])[:6] == ["uuid", "direction", "created", "created_epoch", "name", "state"]
        esl.close()
    finally:
        emu.stop()


def test_fault_injection(emu):
    esl = _esl(emu)
    ch = emu.place_call(destination="agent_esl", context="default")
    esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK", 5, "park")
    emu.drop_connections()
    assert esl.closed.wait(3)
    assert ch.uuid in emu.channels  # the call survives
    esl2 = _esl(emu)
    emu.stall_api("uuid_getvar")
    esl2.send(f"api uuid_getvar {ch.uuid} uuid\n\n".encode())
    with pytest.raises(AssertionError):
        esl2.wait_for(lambda: len(esl2.replies) > 2, 0.3, "stalled reply")
    emu.unstall_api("uuid_getvar")
    esl2.wait_for(lambda: len(esl2.replies) > 2, 3, "reply after unstall")
    assert esl2.replies[2].body.decode() == ch.uuid
    core = emu.factory.core_uuid
    port = emu.port
    emu.restart()
    assert esl2.closed.wait(3)
    assert emu.port == port and emu.factory.core_uuid != core and not emu.channels
    esl.close()
    esl2.close()


def test_auth_timeout(tmp_path):
    emu = FreeSwitchEmulator(temp_dir=str(tmp_path), auth_timeout=0.2).start()
    try:
        esl = RawEsl(emu.port)
        assert esl.closed.wait(3)
        assert [f.content_type for f in esl.frames] == ["auth/request", "text/disconnect-notice"]
    finally:
        emu.stop()


def test_packaged_conf_matches_repo():
    """The dialplan copy shipped in the package is the repo's freeswitch/conf."""
    pkg = REPO / "voiceagent" / "emulator" / "data" / "conf"
    repo = REPO / "freeswitch" / "conf"
    for rel in ["vars_voiceagent.xml", "dialplan/public/50_voiceagent.xml", "dialplan/default/90_voiceagent_traces.xml"]:
        assert filecmp.cmp(pkg / rel, repo / rel, shallow=False), rel


def test_one_default_esl_password_for_the_emulator_the_worker_and_the_shipped_config(monkeypatch):
    """`voiceagent emulator serve` and `voiceagent voice` work together with no password given."""
    from pathlib import Path

    import click

    from voiceagent.config import Settings
    from voiceagent.emulator import cli as emu_cli

    worker_default = Settings.model_fields["esl_password"].default.get_secret_value()
    monkeypatch.delenv("ESL_PASSWORD", raising=False)
    assert emu_cli._WORKER_DEFAULT_PASSWORD == worker_default
    conf = Path(__file__).resolve().parents[2] / "freeswitch/conf/autoload_configs/event_socket.conf.xml"
    assert f'name="password" value="{worker_default}"' in conf.read_text()
    opt = next(o for o in emu_cli.serve.params if o.name == "password")
    assert opt.get_default(click.Context(emu_cli.serve), call=True) == worker_default
