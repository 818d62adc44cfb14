"""``uuid_record`` as mod_commands answers it (session_record_function) and what the emulator records:
both legs mixed at the channel's codec rate, RECORD_START/RECORD_STOP and a ``session_record`` media bug."""
from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.emulator.test_emulator_api import _esl, _ev, _wav, peer  # noqa: F401 - peer is a fixture
from tests.emulator.test_fileman import emu  # noqa: F401 - the emulator at x10 with its fork peer
from tests.fork_helpers import wait_until
USAGE = b"-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
NOBODY = "5b7e0000-0000-4000-8000-000000000000"


def _api(esl, text):
    return esl.command(f"api {text}").body


def test_replies_for_usage_unknown_channel_start_stop_and_an_unopenable_file(emu, tmp_path):
    esl = _esl(emu)
    try:
        assert _api(esl, "uuid_record") == USAGE
        assert _api(esl, f"uuid_record {NOBODY} start") == USAGE
        assert _api(esl, f"uuid_record {NOBODY} start /tmp/x.wav") == b"-ERR Cannot locate session!\n"
        ch = emu.place_call(destination="agent_esl", context="default")
        esl.wait_event(lambda f: _ev(f).name == "CHANNEL_PARK", 5, "park")
        path = tmp_path / "rec" / "call.wav"
        assert _api(esl, f"uuid_record {ch.uuid} bogus {path}") == USAGE
        assert _api(esl, f"uuid_record {ch.uuid} stop {path}") == b"-ERR Cannot stop record session!\n"
        blocker = tmp_path / "file"
        blocker.write_text("x")
        assert _api(esl, f"uuid_record {ch.uuid} start {blocker}/a.wav") == b"-ERR Cannot record session!\n"
        assert _api(esl, f"uuid_record {ch.uuid} start {path}") == b"+OK Success\n"
        bug = esl.wait_event(lambda f: _ev(f).name == "MEDIA_BUG_START", 5, "media bug")
        assert (_ev(bug).get("Media-Bug-Function"), _ev(bug).get("Media-Bug-Target")) == ("session_record", str(path))
        start = esl.wait_event(lambda f: _ev(f).name == "RECORD_START", 5, "record start")
        assert _ev(start).get("Record-File-Path") == str(path) and _ev(start).get("Unique-ID") == ch.uuid
        assert _api(esl, f"uuid_record {ch.uuid} mask {path}") == b"+OK Success\n"
        assert _api(esl, f"uuid_record {ch.uuid} stop {path}") == b"+OK Success\n"
        stop = esl.wait_event(lambda f: _ev(f).name == "RECORD_STOP", 5, "record stop")
        assert _ev(stop).get("Record-File-Path") == str(path)
        assert _api(esl, f"uuid_record {ch.uuid} stop {path}") == b"-ERR Cannot stop record session!\n"
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getframerate()) == (1, 8000)
        ch.hangup()
    finally:
        esl.close()


def test_the_recording_mixes_the_callers_speech_and_what_the_caller_heard_until_hangup(emu, tmp_path):
    esl = _esl(emu)
    try:
        rate = 16000
        t = np.arange(int(0.5 * rate)) / rate
        speech = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        ch = emu.place_call(destination="agent", caller="+15551230001")
        esl.wait_event(lambda f: _ev(f).subclass == "mod_audio_fork::connect", 5, "fork")
        path = tmp_path / "call.wav"
        assert _api(esl, f"uuid_record {ch.uuid} start {path}") == b"+OK Success\n"
        ch.say((speech, rate))  # 0.5 s of the caller, then 1 s of silence
        ch.say((b"\x00\x00" * rate, rate))
        assert wait_until(lambda: ch.forks and ch.fork.audio.idle(), 10), "the caller never said it all"
        esl.command(f"api uuid_broadcast {ch.uuid} {_wav(tmp_path / 'tone.wav', 0.5, 8000)} aleg")
        assert wait_until(lambda: len(ch.segments) == 1, 10), "the file never played"
        ch.hangup()
        esl.wait_event(lambda f: _ev(f).name == "RECORD_STOP", 5, "hangup closes the recording")
        with wave.open(str(path)) as w:
            got = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int32)
            r = w.getframerate()
        t0 = next(at for at, key in ch.timeline if key == "RECORD_START")  # the file's time 0, in call time
        seg = ch.segments[0]
        loud = np.abs(got) > 1000
        heard_part = loud[int((seg["start"] - t0 + 0.05) * r):int((seg["end"] - t0 - 0.05) * r)]
        assert heard_part.size and heard_part.mean() > 0.3, "the playback is missing from the recording"
        before = loud[:int((seg["start"] - t0) * r)]
        assert 0.2 < before.sum() / r < 0.8, "the caller's 0.5 s of speech is missing from the recording"
    finally:
        esl.close()
