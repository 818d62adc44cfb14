"""The speech server's endpoints against OpenAI's documented request and reply fields (audio API reference:
createTranscription's json / text / verbose_json replies, createSpeech's streamed audio, the model list,
the error object), over real HTTP to the real process."""
import io
import wave

import numpy as np
import pytest
import requests

from voiceagent.speech.audio import pcm16_to_float, wav_encode
from voiceagent.speech.remote_tts import parse_wav_stream

VOICE = "en_US-joe-medium"
#: OpenAI's documented verbose_json fields (TranscriptionVerbose, TranscriptionSegment)
VERBOSE_FIELDS = {"task", "language", "duration", "text", "segments"}
SEGMENT_FIELDS = {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio",
                  "no_speech_prob"}
ERROR_FIELDS = {"message", "type", "param", "code"}


def speak(http, server, text, fmt="wav", **extra):
    r = http.post(f"{server.base_url}/audio/speech", json={"model": "tts-1", "input": text, "voice": VOICE,
                                                           "response_format": fmt, **extra}, timeout=60)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture(scope="module")
def question_wav(server):
    s = requests.Session()
    s.trust_env = False
    from tests.speech_server_proc import TOKEN

    r = s.post(f"{server.base_url}/audio/speech", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
               json={"model": "tts-1", "input": "What time is it?", "voice": VOICE, "response_format": "wav"})
    assert r.status_code == 200, r.text
    pcm, rate = parse_wav_stream(r.content)
    return wav_encode(pcm, rate)  # a WAV with its real sizes, as a client would upload one


def transcribe(http, server, wav, **fields):
    data = {"model": "whisper-1", **fields}
    return http.post(f"{server.base_url}/audio/transcriptions", files={"file": ("q.wav", wav, "audio/wav")},
                     data=data, timeout=60)


def test_transcription_json_text_and_verbose_json_have_openais_fields(http, server, question_wav):
    r = transcribe(http, server, question_wav)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert set(r.json()) == {"text"} and "what time is it" in r.json()["text"].lower()

    r = transcribe(http, server, question_wav, response_format="text")
    assert r.headers["Content-Type"].startswith("text/plain") and "what time is it" in r.text.lower()

    r = transcribe(http, server, question_wav, response_format="verbose_json", language="en", temperature="0")
    body = r.json()
    assert VERBOSE_FIELDS <= set(body), body
    assert body["task"] == "transcribe" and body["language"] == "english"
    with wave.open(io.BytesIO(question_wav)) as w:
        assert body["duration"] == pytest.approx(w.getnframes() / w.getframerate(), abs=0.01)
    seg = body["segments"][0]
    assert SEGMENT_FIELDS <= set(seg), seg
    assert isinstance(seg["tokens"], list) and all(isinstance(t, int) for t in seg["tokens"]) and seg["tokens"]
    assert -2.0 < seg["avg_logprob"] <= 0.0 and 0.0 <= seg["no_speech_prob"] < 0.5
    assert 0.0 <= seg["start"] < seg["end"] <= body["duration"]


def test_speech_streams_wav_and_pcm_at_24_khz(http, server):
    text = "The first sentence is short. The second one follows it."
    wav = speak(http, server, text, "wav")
    assert wav.headers["Content-Type"] == "audio/wav"
    assert wav.headers.get("Transfer-Encoding") == "chunked"  # streamed, not buffered whole
    pcm_from_wav, rate = parse_wav_stream(wav.content)
    assert rate == 24000
    pcm = speak(http, server, text, "pcm")
    assert pcm.headers["Content-Type"] == "audio/pcm" and pcm.headers["X-Sample-Rate"] == "24000"
    assert len(pcm.content) % 2 == 0
    seconds = len(pcm.content) / 2 / 24000
    assert 2.0 < seconds < 8.0, seconds
    assert abs(len(pcm.content) - len(pcm_from_wav)) < 2 * 2400  # same speech either way (noise off)
    slower = speak(http, server, text, "pcm", speed=0.5)
    assert len(slower.content) > 1.5 * len(pcm.content)


def test_speech_arrives_sentence_by_sentence(http, server):
    """The first sentence's audio is on the wire before the last sentence is synthesized."""
    text = "Hello. " + " ".join(["This is a much longer second sentence that takes the voice a while to say."] * 6)
    r = http.post(f"{server.base_url}/audio/speech", json={"model": "tts-1", "input": text, "voice": VOICE,
                                                           "response_format": "pcm"}, stream=True, timeout=60)
    assert r.status_code == 200
    pieces = [len(c) for c in r.iter_content(chunk_size=None) if c]
    assert len(pieces) >= 2, pieces  # one chunked write per sentence
    assert pieces[0] < sum(pieces) / 3


def test_models_lists_openai_objects(http, server):
    body = http.get(f"{server.base_url}/models", timeout=10).json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"whisper-1", "tts-1"} <= ids
    assert all(set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model" for m in body["data"])


def test_the_round_trip_is_heard_back(http, server, question_wav):
    """TTS then STT on the server: what was said is what is heard."""
    r = speak(http, server, "Please turn on the kitchen lights.", "pcm")
    wav = wav_encode(r.content, 24000)
    text = transcribe(http, server, wav).json()["text"].lower()
    assert "kitchen lights" in text, text
    assert np.abs(pcm16_to_float(r.content)).max() > 0.1


def test_concurrent_transcriptions_are_batched_and_each_gets_its_own_text(http, server):
    import gevent

    texts = ["What time is it?", "Please turn on the kitchen lights.", "Cancel my timer.", "Call me back tomorrow."]
    wavs = []
    for t in texts:
        pcm = speak(http, server, t, "pcm").content
        wavs.append(wav_encode(pcm, 24000))

    def batches():
        m = http.get(f"{server.origin}/metrics", timeout=10).text
        count = [line for line in m.splitlines() if line.startswith("voiceagent_speech_server_batch_size_count")]
        total = [line for line in m.splitlines() if line.startswith("voiceagent_speech_server_batch_size_sum")]
        return float(count[0].split()[-1]), float(total[0].split()[-1])

    runs_before, utts_before = batches()
    jobs = [gevent.spawn(transcribe, http, server, w) for w in wavs]
    gevent.joinall(jobs, timeout=120, raise_error=True)
    heard = [j.value.json()["text"].lower() for j in jobs]
    for want, got in zip(texts, heard, strict=True):
        assert want.lower().rstrip("?.").split()[-1] in got, (want, got)
    runs, utts = batches()
    assert utts - utts_before == len(texts)
    assert runs - runs_before < len(texts)  # at least two shared a Whisper run


def test_batching_auto_is_on_for_a_gpu_only():
    from types import SimpleNamespace

    from voiceagent.speech_server.engines import batching

    assert batching("auto", SimpleNamespace(device="cuda")) and not batching("auto", SimpleNamespace(device="cpu"))
    assert batching("on", SimpleNamespace(device="cpu")) and not batching("off", SimpleNamespace(device="cuda"))
