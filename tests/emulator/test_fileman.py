"""``uuid_fileman`` as FreeSWITCH 1.10.12 answers it (protocols.md A6): pause toggles pause/resume of
the file now playing, the position does not advance while paused, and neither fires an event."""
from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.emulator.test_emulator_api import _esl, _ev, _wav, peer  # noqa: F401 - peer is a fixture
from voiceagent.emulator import FreeSwitchEmulator

SPEED = 10.0
RATE = 16000


@pytest.fixture
def emu(tmp_path, peer):  # noqa: F811 - the imported fixture
    e = FreeSwitchEmulator(speed=SPEED, temp_dir=str(tmp_path),
                           variables={"voiceagent_fork_url": f"ws://127.0.0.1:{peer.port}"})
    e.start()
    yield e
    e.stop()


def _parked(emu, esl):
    ch = emu.place_call(destination="agent_esl", context="default")
    esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK", 5, "park")
    return ch


def _api(esl, text):
    return esl.command(f"api {text}").body


def test_replies_for_usage_unknown_channel_and_nothing_playing(emu):
    esl = _esl(emu)
    try:
        assert _api(esl, "uuid_fileman") == b"-USAGE: <uuid> <cmd>:<val>\n"
        assert _api(esl, "uuid_fileman 5b7e0000-0000-4000-8000-000000000000") == b"-USAGE: <uuid> <cmd>:<val>\n"
        assert _api(esl, "uuid_fileman 5b7e0000-0000-4000-8000-000000000000 pause") == b"-ERR No such channel!\n"
        ch = _parked(emu, esl)
        assert _api(esl, f"uuid_fileman {ch.uuid} pause") == b"-ERR No file handle!\n"
        assert not ch.paused
        ch.hangup()
    finally:
        esl.close()


def test_pause_holds_the_position_and_the_next_pause_resumes_without_events(emu, tmp_path):
    esl = _esl(emu)
    try:
        ch = _parked(emu, esl)
        # a rising ramp: every sample says where in the file it was, so what was heard shows what was lost
        n = int(3.0 * RATE)
        ramp = (np.arange(n) % 30000).astype("<i2")
        wav = tmp_path / "ramp.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(ramp.tobytes())
        esl.command(f"api uuid_broadcast {ch.uuid} {wav} aleg")
        esl.wait_event(lambda f: _ev(f).name == "PLAYBACK_START", 5, "start")
        before = len(esl.events)
        assert _api(esl, f"uuid_fileman {ch.uuid} pause") == b"+OK\n"
        assert ch.paused and ch.playing == str(wav)
        # a file much shorter than the wait: still paused, nothing stopped it
        esl.command(f"api uuid_broadcast {ch.uuid} {_wav(tmp_path / 'next.wav', 0.2, 8000)} aleg")
        ch.hangup_event.wait(0.6)  # 6 s of call time at x10: twice the file
        assert ch.paused and not ch.segments, ch.segments
        assert _api(esl, f"uuid_fileman {ch.uuid} volume:2") == b"+OK\n"  # unknown to us: +OK, nothing done
        assert _api(esl, f"uuid_fileman {ch.uuid} nonsense") == b"+OK\n"
        assert ch.paused
        assert _api(esl, f"uuid_fileman {ch.uuid} pause") == b"+OK\n"
        assert not ch.paused
        esl.wait_for(lambda: len(ch.segments) == 2, 10, "both files played")
        seg = ch.segments[0]
        assert seg["status"] == "done" and len(seg["pauses"]) == 1, seg
        paused, resumed = seg["pauses"][0]
        assert seg["start"] < paused < resumed < seg["end"]
        # the caller heard all of the file, the part after the pause from the resume on
        pcm, rate = ch.heard_audio()
        heard = np.frombuffer(pcm, dtype="<i2")
        first = heard[int(seg["start"] * rate):int(paused * rate) - 2]
        rest = heard[int(resumed * rate) + 2:int(seg["end"] * rate) - 2]
        assert len(first) > 0 and len(rest) > 0
        assert np.all(heard[int(paused * rate) + 2:int(resumed * rate) - 2] == 0), "sound while paused"
        # resumed where it paused: the ramp goes on from the last sample heard before the pause
        assert 0 < (int(rest[0]) - int(first[-1])) % 30000 <= 8, (first[-1], rest[0])
        assert (int(ramp[-1]) - int(rest[-1])) % 30000 <= 8, rest[-1]  # and on to the end
        assert len(first) + len(rest) >= n - 16, (len(first), len(rest), n)  # nothing lost
        # one PLAYBACK_START and one PLAYBACK_STOP for the paused file: pausing fires nothing
        names = [_ev(f).name for f in esl.events[before:]]
        assert names.count("PLAYBACK_START") == 1 and names.count("PLAYBACK_STOP") == 2, names
        assert names.index("PLAYBACK_STOP") < names.index("PLAYBACK_START"), names
        ch.hangup()
    finally:
        esl.close()


def test_a_paused_file_can_be_broken(emu, tmp_path):
    esl = _esl(emu)
    try:
        ch = _parked(emu, esl)
        esl.command(f"api uuid_broadcast {ch.uuid} {_wav(tmp_path / 'long.wav', 20, 8000)} aleg")
        esl.wait_for(lambda: ch.playing is not None, 5, "playing")
        assert _api(esl, f"uuid_fileman {ch.uuid} pause") == b"+OK\n"
        assert _api(esl, f"uuid_break {ch.uuid} all") == b"+OK\n"
        esl.wait_for(lambda: len(ch.segments) == 1, 5, "broken")
        assert ch.segments[0]["status"] == "break" and not ch.paused
        assert _api(esl, f"uuid_fileman {ch.uuid} pause") == b"-ERR No file handle!\n"
        ch.hangup()
    finally:
        esl.close()
