"""Bad requests get a 4xx in OpenAI's error shape naming the field, and the server stays up."""
import json

import pytest

from voiceagent.speech.audio import wav_encode

from .conftest import MAX_UPLOAD

ERROR_FIELDS = {"message", "type", "param", "code"}
WAV = wav_encode(b"\x10\x00\x20\x00" * 8000, 16000)  # 1 s of a very quiet signal


def error_of(r, status, param):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == ERROR_FIELDS and err["message"]
    assert err["param"] == param, err
    return err


def post_stt(http, server, files=None, data=None, **kw):
    return http.post(f"{server.base_url}/audio/transcriptions", files=files, data=data, timeout=30, **kw)


def post_tts(http, server, body):
    return http.post(f"{server.base_url}/audio/speech", json=body, timeout=30)


@pytest.mark.parametrize("name,kwargs,status,param", [
    ("json instead of multipart", {"json": {"model": "whisper-1"}}, 415, None),
    ("no file", {"data": {"model": "whisper-1"}}, 400, "file"),
    ("no model", {"files": {"file": ("a.wav", WAV)}}, 400, "model"),
    ("unknown model", {"files": {"file": ("a.wav", WAV)}, "data": {"model": "large-v9"}}, 404, "model"),
    ("empty file", {"files": {"file": ("a.wav", b"")}, "data": {"model": "whisper-1"}}, 400, "file"),
    ("not audio", {"files": {"file": ("a.wav", b"RIFF....WAVEjunk" * 10)}, "data": {"model": "whisper-1"}}, 400, "file"),
    ("text file", {"files": {"file": ("a.mp3", b"hello, I am not an mp3 at all" * 20)},
                   "data": {"model": "whisper-1"}}, 400, "file"),
    ("no samples", {"files": {"file": ("a.wav", wav_encode(b"", 16000))}, "data": {"model": "whisper-1"}}, 400, "file"),
    ("bad format", {"files": {"file": ("a.wav", WAV)}, "data": {"model": "whisper-1", "response_format": "srt"}},
     400, "response_format"),
    ("bad temperature", {"files": {"file": ("a.wav", WAV)}, "data": {"model": "whisper-1", "temperature": "hot"}},
     400, "temperature"),
    ("bad language", {"files": {"file": ("a.wav", WAV)}, "data": {"model": "whisper-1", "language": "klingon"}},
     400, "language"),
    ("too large", {"files": {"file": ("a.wav", b"\x00" * (MAX_UPLOAD + 1))}, "data": {"model": "whisper-1"}},
     413, "file"),
])
def test_bad_transcription_requests(http, server, name, kwargs, status, param):
    error_of(post_stt(http, server, **kwargs), status, param)


GOOD = {"model": "tts-1", "input": "Hello.", "voice": "en_US-joe-medium", "response_format": "pcm"}


@pytest.mark.parametrize("change,status,param", [
    ({"voice": "alloy"}, 400, "voice"),
    ({"voice": None}, 400, "voice"),
    ({"input": ""}, 400, "input"),
    ({"input": None}, 400, "input"),
    ({"model": None}, 400, "model"),
    ({"model": "gpt-9-tts"}, 404, "model"),
    ({"response_format": "mp3"}, 400, "response_format"),
    ({"speed": 9}, 400, "speed"),
    ({"speed": "fast"}, 400, "speed"),
    ({"input": "x" * 5000}, 400, "input"),
])
def test_bad_speech_requests(http, server, change, status, param):
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    error_of(post_tts(http, server, body), status, param)


def test_speech_needs_a_json_object(http, server):
    url = f"{server.base_url}/audio/speech"
    error_of(http.post(url, data=json.dumps(GOOD), headers={"Content-Type": "text/plain"}, timeout=30), 415, None)
    error_of(http.post(url, data="[1, 2", headers={"Content-Type": "application/json"}, timeout=30), 400, None)
    error_of(http.post(url, json=["a list"], timeout=30), 400, None)


def test_the_token_is_required_except_for_health_and_metrics(server):
    import requests

    s = requests.Session()
    s.trust_env = False
    err = error_of(s.get(f"{server.base_url}/models", timeout=10), 401, None)
    assert err["code"] == "invalid_api_key"
    error_of(s.get(f"{server.base_url}/models", headers={"Authorization": "Bearer wrong"}, timeout=10), 401, None)
    assert s.get(f"{server.origin}/health", timeout=10).json()["status"] == "ok"
    metrics = s.get(f"{server.origin}/metrics", timeout=10).text
    assert "voiceagent_speech_server_requests_total" in metrics


def test_unknown_paths_are_openai_errors_too(http, server):
    error_of(http.get(f"{server.base_url}/audio/nothing", timeout=10), 404, None)


def test_the_server_is_still_up_after_all_that(http, server):
    assert server.alive()
    r = post_stt(http, server, files={"file": ("a.wav", WAV)}, data={"model": "whisper-1"})
    assert r.status_code == 200 and "text" in r.json()
    assert "Traceback" not in server.log()
