"""RECORD_CALLS: the worker has FreeSWITCH (the emulator) record an answered call with uuid_record; the
record names the file, and the API serves it (bearer auth, WAV, seekable)."""
import io
import wave

import numpy as np

from tests.fork_helpers import wait_until


def _wav(data):
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnchannels(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_a_recorded_call_leaves_a_wav_of_what_the_caller_heard_served_by_the_api(
        make_emulator, make_worker, start_api, tmp_path):
    recordings = tmp_path / "recordings"
    emu = make_emulator()
    w = make_worker([emu], record_calls=True, recordings_dir=recordings)
    api = start_api(recordings_dir=recordings)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert ch.wait_hangup(30), "the greeting call never ended"
    events = [key for _, key in ch.timeline]
    assert "RECORD_START" in events and "RECORD_STOP" in events, events
    assert events.index("RECORD_STOP") < events.index("CHANNEL_HANGUP_COMPLETE")
    assert wait_until(lambda: (api.client.get(ch.uuid) or None) is not None
                      and api.client.get(ch.uuid).ended and api.client.get(ch.uuid).recording, 20)
    rec = api.client.get(ch.uuid)
    assert rec.recording == f"{ch.uuid}.wav"
    on_disk = (recordings / rec.recording).read_bytes()
    rate, channels, pcm = _wav(on_disk)
    assert (rate, channels) == (8000, 1)  # the channel's codec rate (PCMA), both legs mixed
    heard, heard_rate = ch.heard_audio()
    assert len(pcm) / rate > 0.8 * (len(heard) / 2 / heard_rate), "the recording is shorter than the greeting"
    assert np.abs(pcm.astype(np.int32)).mean() > 100, "the recording is silent"

    r = api.http.get(f"{api.url}/calls/{ch.uuid}/recording")
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav" and r.content == on_disk
    part = api.http.get(f"{api.url}/calls/{ch.uuid}/recording", headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.content == on_disk[:44]
    assert __import__("requests").get(f"{api.url}/calls/{ch.uuid}/recording").status_code == 401
    w.stop()


def test_without_record_calls_there_is_no_recording_and_a_clear_404(make_emulator, make_worker, start_api, tmp_path):
    emu = make_emulator()
    make_worker([emu], recordings_dir=tmp_path / "rec")
    api = start_api(recordings_dir=tmp_path / "rec")
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_hangup(30)
    assert "RECORD_START" not in [key for _, key in ch.timeline]
    assert wait_until(lambda: api.client.get(ch.uuid) is not None and api.client.get(ch.uuid).ended, 20)
    assert api.client.get(ch.uuid).recording is None
    r = api.http.get(f"{api.url}/calls/{ch.uuid}/recording")
    assert r.status_code == 404 and "RECORD_CALLS" in r.json()["error"]["message"]
    assert not (tmp_path / "rec").exists()


def test_recordings_older_than_the_records_are_deleted_and_nothing_else(tmp_path):
    import os
    import time

    from voiceagent.calls.recording import expire_recordings

    old, new = "0b7e0000-0000-4000-8000-000000000001.wav", "0b7e0000-0000-4000-8000-000000000002.wav"
    for name in (old, new, "notes.wav", "0b7e0000-0000-4000-8000-000000000003.wav.bak"):
        (tmp_path / name).write_bytes(b"RIFF")
    ancient = time.time() - 3 * 86400
    for name in (old, "notes.wav", "0b7e0000-0000-4000-8000-000000000003.wav.bak"):
        os.utime(tmp_path / name, (ancient, ancient))
    assert expire_recordings(str(tmp_path), retention_days=2) == 1
    assert sorted(os.listdir(tmp_path)) == sorted([new, "notes.wav", "0b7e0000-0000-4000-8000-000000000003.wav.bak"])
    assert expire_recordings(str(tmp_path / "missing"), retention_days=2) == 0
