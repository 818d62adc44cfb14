"""The remote STT/TTS backends against our own speech server (a real process) and a failing stand-in:
the same transcript as in process, retries on 5xx and timeouts, then the local fallback or SpeechUnavailable."""
import pytest

from tests.speech_server_proc import TOKEN, running
from tests.speech_standin import SpeechStandIn, error_answer, transcript_answer
from voiceagent.config import ConfigError, load_settings
from voiceagent.speech.audio import pcm16_duration_s, pcm16_to_float, resample
from voiceagent.speech.backends import make_stt, make_tts_backend
from voiceagent.speech.fallback import FALLBACKS, FallbackTranscriber, FallbackTTS, LazyEngine
from voiceagent.speech.remote_stt import RemoteTranscriber
from voiceagent.speech.remote_tts import RemoteTTS, parse_wav_stream
from voiceagent.speech.seams import SpeechToText, SpeechUnavailable, TextToSpeech
from voiceagent.speech_server.speech import streaming_wav_header


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running(tmp_path_factory.mktemp("speech"))


@pytest.fixture
def standin():
    made = []

    def make(*answers):
        made.append(SpeechStandIn(*answers).start())
        return made[-1]

    yield make
    for s in made:
        s.stop()


def fallback_count(kind):
    return FALLBACKS.labels(kind)._value.get()


def test_a_question_transcribed_remotely_reads_as_the_local_transcript(server, whisper_base, what_time,
                                                                         long_utterance):
    remote = RemoteTranscriber(server.base_url, api_key=TOKEN)
    assert isinstance(remote, SpeechToText) and not remote.uses_pool
    for audio in (what_time, long_utterance):
        here, there = whisper_base.transcribe(audio), remote.transcribe(audio)
        assert there.text == here.text and there.text
        assert there.no_speech_prob == pytest.approx(here.no_speech_prob, abs=0.01)
    assert remote.transcribe(what_time * 0.0).text == ""  # silence is not even sent


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_remote_speech_is_heard_as_said_at_the_phone_rate(server, whisper_base, fmt):
    tts = RemoteTTS(server.base_url, api_key=TOKEN, response_format=fmt)
    assert isinstance(tts, TextToSpeech)
    pcm, rate = tts.synthesize("Is the restaurant open on Sunday?", 8000)
    assert rate == 8000 and 1.0 < pcm16_duration_s(pcm, rate) < 5.0
    heard = whisper_base.transcribe(resample(pcm16_to_float(pcm), 8000, 16000)).text.lower()
    assert "restaurant" in heard and "sunday" in heard, heard
    assert tts.synthesize("  ") == (b"", 24000)


def test_a_5xx_is_retried_and_the_retry_is_used(standin, what_time):
    s = standin(error_answer(503), transcript_answer("What time is it?"))
    tr = RemoteTranscriber(s.base_url, retries=1).transcribe(what_time)
    assert tr.text == "What time is it?"
    assert [p for p, _ in s.requests] == ["/v1/audio/transcriptions"] * 2
    body = s.requests[0][1]
    assert b'name="model"' in body and b"whisper-1" in body and b"verbose_json" in body and b"RIFF" in body


def test_5xx_after_every_retry_falls_back_to_the_local_whisper(standin, whisper_base, pool, what_time):
    s = standin(error_answer(500))
    local = LazyEngine("Whisper", lambda: whisper_base, pool)
    stt = FallbackTranscriber(RemoteTranscriber(s.base_url, retries=2), local)
    before = fallback_count("stt")
    assert stt.transcribe(what_time).text == whisper_base.transcribe(what_time).text
    assert len(s.requests) == 3 and fallback_count("stt") == before + 1
    assert stt.transcribe(what_time).text  # the remote is tried again first, every time
    assert len(s.requests) == 6


def test_a_server_that_never_answers_times_out_is_retried_then_unavailable(standin, what_time):
    s = standin()
    s.hang = True
    stt = FallbackTranscriber(RemoteTranscriber(s.base_url, timeout=0.5, retries=1), None)
    with pytest.raises(SpeechUnavailable, match="timeout"):
        stt.transcribe(what_time)
    assert len(s.requests) == 2


def test_a_4xx_is_not_retried(standin, what_time):
    s = standin(error_answer(400, "bad model"))
    with pytest.raises(SpeechUnavailable, match="bad model"):
        RemoteTranscriber(s.base_url, retries=3).transcribe(what_time)
    assert len(s.requests) == 1


def test_a_refused_connection_counts_as_down(what_time, whisper_base, pool):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stt = FallbackTranscriber(RemoteTranscriber(f"http://127.0.0.1:{port}/v1", retries=1),
                              LazyEngine("Whisper", lambda: whisper_base, pool))
    assert "time" in stt.transcribe(what_time).text.lower()


def test_an_unreadable_answer_is_unavailable_not_a_crash(standin, what_time):
    s = standin((200, b"<html>proxy says hi</html>", "text/html"))
    with pytest.raises(SpeechUnavailable, match="unreadable"):
        RemoteTranscriber(s.base_url).transcribe(what_time)


def test_tts_5xx_falls_back_to_piper(standin, piper, pool):
    s = standin(error_answer(502))
    tts = FallbackTTS(RemoteTTS(s.base_url, retries=1), LazyEngine("Piper", lambda: piper, pool))
    before = fallback_count("tts")
    pcm, rate = tts.synthesize("One moment please.", 8000)
    assert rate == 8000 and pcm == piper.synthesize("One moment please.", 8000)[0]
    assert len(s.requests) == 2 and fallback_count("tts") == before + 1
    assert b'"voice": "en_US-joe-medium"' in s.requests[0][1] and b'"input": "One moment please."' in s.requests[0][1]


def test_a_fallback_that_cannot_load_is_unavailable(standin, pool):
    from voiceagent.speech.models import ModelNotAvailable

    def broken():
        raise ModelNotAvailable("no Piper voice here")

    s = standin(error_answer(503))
    tts = FallbackTTS(RemoteTTS(s.base_url, retries=0), LazyEngine("Piper", broken, pool))
    for _ in range(2):  # the failed load is remembered, not retried on every sentence
        with pytest.raises(SpeechUnavailable, match="no Piper voice here"):
            tts.synthesize("Hello.")


def test_remote_backends_load_no_model_until_the_remote_fails():
    s = load_settings(stt_backend="remote", stt_url="http://127.0.0.1:9/v1/", tts_engine="remote",
                      tts_url="http://127.0.0.1:9/v1")
    stt, tts = make_stt(s, pool=None), make_tts_backend(s, pool=None)
    assert isinstance(stt, FallbackTranscriber) and stt.local is not None and stt.local.engine is None
    assert isinstance(tts, FallbackTTS) and tts.local is not None and tts.local.engine is None
    assert stt.remote.endpoint.url == "http://127.0.0.1:9/v1/audio/transcriptions"
    none = load_settings(stt_backend="remote", stt_url="http://h:1/v1", stt_fallback="none")
    assert make_stt(none, pool=None).local is None


def test_a_remote_backend_without_its_url_names_the_setting():
    with pytest.raises(ConfigError, match="STT_URL"):
        make_stt(load_settings(stt_backend="remote"), pool=None)
    with pytest.raises(ConfigError, match="TTS_URL"):
        make_tts_backend(load_settings(tts_engine="remote"), pool=None)
    with pytest.raises(ConfigError, match="STT_URL"):
        load_settings(stt_url="ftp://nowhere")


def test_a_streamed_wav_header_with_unknown_sizes_is_read():
    pcm = b"\x01\x00\x02\x00" * 100
    assert parse_wav_stream(streaming_wav_header(24000) + pcm) == (pcm, 24000)
    with pytest.raises(ValueError):
        parse_wav_stream(b"not a wav at all")
