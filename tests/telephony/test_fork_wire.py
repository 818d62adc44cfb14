"""forkwire: the mod_audio_fork message formats, checked against the traces' exact strings."""
from __future__ import annotations

import base64
import json

import pytest

from voiceagent.telephony import forkwire as fw

TRACE_META = '{"event":"start","uuid":"cb1cdc4b-e635-41db-8a6d-a43f8dc4552e","caller":"sipp","callee":"agent","sampleRate":16000,"mix":"mono"}'


def test_parse_json_values_handles_concatenation_and_whitespace():
    assert fw.parse_json_values('{"a":1}{"b":2}') == [{"a": 1}, {"b": 2}]
    assert fw.parse_json_values(' {"a":1}\n[2] "x" ') == [{"a": 1}, [2], "x"]
    for bad in ("", "   ", '{"a":1}{', "nope"):
        with pytest.raises(ValueError):
            fw.parse_json_values(bad)


def test_parse_metadata():
    p = fw.parse_metadata(TRACE_META)
    assert p.error is None and p.metadata["uuid"] == "cb1cdc4b-e635-41db-8a6d-a43f8dc4552e" and p.extra == []
    p = fw.parse_metadata(TRACE_META + '{"seq":1}')
    assert p.metadata["mix"] == "mono" and p.extra == [{"seq": 1}]
    assert fw.parse_metadata(b"\xff\xfe").error
    assert fw.parse_metadata("[1]").error and fw.parse_metadata("[1]").metadata == {}
    assert "too large" in fw.parse_metadata('{"a":"%s"}' % ("x" * 9000)).error
    assert fw.parse_metadata('{"a":"%s"}' % ("x" * 100), max_bytes=50).error


def test_server_message_builders_match_the_trace_layout():
    msg = fw.play_audio_message(b"RIFF", sample_rate=16000, text="tone one")
    assert msg == '{"type":"playAudio","data":{"audioContentType":"wav","sampleRate":16000,"audioContent":"UklGRg==","textContent":"tone one"}}'
    assert fw.kill_audio_message() == '{"type":"killAudio"}'
    assert fw.disconnect_message() == '{"type":"disconnect"}'
    assert fw.disconnect_message({"why": "done"}) == '{"type":"disconnect","data":{"why":"done"}}'
    with pytest.raises(ValueError):
        fw.play_audio_message(b"", sample_rate=24000, content_type="raw")
    with pytest.raises(ValueError):
        fw.play_audio_message(b"", sample_rate=16000, content_type="mp3")


def test_play_audio_event_body_drops_content_keeps_order_and_appends_file():
    data = {"audioContentType": "wav", "sampleRate": 16000, "audioContent": "AAAA", "textContent": "tone one"}
    path = "/usr/local/freeswitch/temp/8eb532dd-ba0a-4941-aab3-a85a2ae06271_2.tmp.wav"
    assert fw.play_audio_event_body(data, path) == (
        '{"audioContentType":"wav","sampleRate":16000,"textContent":"tone one","file":"%s"}' % path)
    # cJSON prints an integral double without ".0" and keeps UTF-8 as is
    assert fw.compact_json({"r": 16000.0, "t": "héllo", "f": 0.5}) == '{"r":16000,"t":"héllo","f":0.5}'


@pytest.mark.parametrize("text,event,body", [
    ('{"type":"killAudio"}', fw.EVENT_KILL_AUDIO, None),
    ('{"type":"transcription","data":{"text": "hi"}}', fw.EVENT_TRANSCRIPTION, '{"text":"hi"}'),
    ('{"type":"transfer"}', fw.EVENT_TRANSFER, None),
    ('{"type":"error","data":{"code":1}}', fw.EVENT_ERROR, '{"code":1}'),
    ('{"type":"disconnect"}', fw.EVENT_DISCONNECT, None),
    ('{"type":"disconnect","data":{"a":1}}', fw.EVENT_DISCONNECT, '{"a":1}'),
    ('{"hello": [1, 2]}', fw.EVENT_JSON, '{"hello":[1,2]}'),
    ('{"type":"json","x":1}', fw.EVENT_JSON, '{"type":"json","x":1}'),
    ('{"type":"mark"}', None, None),
    ("garbage", None, None),
    ("[1,2]", None, None),
    ('{"type":"playAudio","data":{"sampleRate":16000,"audioContent":"AA=="}}', None, None),
    ('{"type":"playAudio","data":{"audioContentType":"mp3","audioContent":"AA=="}}', None, None),
    ('{"type":"playAudio"}', None, None),
])
def test_classify_server_text(text, event, body):
    msg = fw.classify_server_text(text)
    assert (msg.event, msg.body) == (event, body)
    if event is None:
        assert msg.problem


def test_classify_play_audio_and_file_extensions():
    b64 = base64.b64encode(b"\x00\x00").decode()
    msg = fw.classify_server_text(json.dumps({"type": "playAudio", "data": {"audioContentType": "raw", "sampleRate": 8000, "audioContent": b64}}))
    assert msg.event == fw.EVENT_PLAY_AUDIO and msg.play["sampleRate"] == 8000
    assert fw.play_audio_file_ext("wav", 16000) == "wav" and fw.play_audio_file_ext("wave", None) == "wav"
    assert [fw.play_audio_file_ext("raw", r) for r in (8000, 16000, 24000, 32000, 48000, 64000)] == \
        ["r8", "r16", "r24", "r32", "r48", "r64"]
    assert fw.play_audio_file_ext("raw", None) == "r16" and fw.play_audio_file_ext("raw", 11025) == "r16"


def test_wav_round_trip_and_frame_sizes():
    pcm = bytes(range(200))
    assert fw.wav_decode(fw.wav_encode(pcm, 8000)) == (pcm, 8000, 1)
    with pytest.raises(ValueError):
        fw.wav_decode(b"RIFF junk")
    assert (fw.frame_bytes(16000, 20), fw.frame_bytes(8000, 20), fw.frame_bytes(16000, 20, 2), fw.frame_bytes(16000, 30)) == \
        (640, 320, 1280, 960)
