import numpy as np
import pytest

from voiceagent.config import load_settings
from voiceagent.speech.audio import pcm16_duration_s, pcm16_to_float, resample
from voiceagent.speech.stt import Transcriber, is_hallucination
from voiceagent.speech.tts import PhraseCache, TTSUnavailable, make_tts


def test_piper_round_trip_through_whisper_16k(whisper_base, what_time):
    tr = whisper_base.transcribe(what_time)
    assert "time" in tr.text.lower()
    assert tr.duration == pytest.approx(len(what_time) / 16000)
    assert tr.no_speech_prob < 0.5 and tr.elapsed > 0


def test_round_trip_at_8k(piper, whisper_base):
    pcm, rate = piper.synthesize("What time is it?", 8000)
    assert rate == 8000
    tr = whisper_base.transcribe(resample(pcm16_to_float(pcm), 8000, 16000))
    assert "time" in tr.text.lower()


def test_piper_native_rate_and_empty_text(piper):
    pcm, rate = piper.synthesize("Hello.")
    assert rate == 22050 == piper.sample_rate
    assert 0.3 < pcm16_duration_s(pcm, rate) < 3
    assert piper.synthesize("   ") == (b"", 22050)


def test_tiny_en_loads_and_transcribes(what_time):
    tiny = Transcriber("tiny.en", threads=2)
    assert "time" in tiny.transcribe(what_time).text.lower()
    with pytest.raises(ValueError, match="English-only"):
        Transcriber("tiny.en", language="de")


def test_silence_and_noise_give_no_text(whisper_base):
    assert whisper_base.transcribe(np.zeros(32000, np.float32)).text == ""
    rng = np.random.default_rng(3)
    for amp in (0.003, 0.05, 0.3):
        noise = (rng.standard_normal(48000) * amp).astype(np.float32)
        tr = whisper_base.transcribe(noise)
        assert tr.text == "", (amp, tr)


def test_hallucination_filter_rules():
    assert is_hallucination("Thanks for watching!", 0.7, -0.9, -30)
    assert is_hallucination("Subtitles by the Amara.org community", 0.0, -0.1, -20)
    assert is_hallucination("[MUSIC]", 0.0, -0.1, -20)
    assert is_hallucination("you", 0.3, -0.4, -25)
    assert is_hallucination("Thank you.", 0.05, -0.2, -50)  # real words need real signal
    assert not is_hallucination("Thank you.", 0.05, -0.2, -25)  # a caller can say it
    assert not is_hallucination("What time is it?", 0.1, -0.2, -25)


def test_phrase_cache_synthesizes_once(piper):
    cache = PhraseCache(piper)
    a, rate = cache.get("One moment please.", 8000)
    b, _ = cache.get("One moment please.", 8000)
    assert rate == 8000 and a is b and len(cache) == 1
    assert ("One moment please.", 8000) in cache
    cache.warm(["Goodbye."], 8000)
    assert len(cache) == 2


def test_make_tts_selects_engine():
    assert make_tts(load_settings()).voice_id == "piper:en_US-joe-medium"
    try:
        import TTS  # noqa: F401
    except ImportError:
        with pytest.raises(TTSUnavailable, match="voiceagent\\[xtts\\]"):
            make_tts(load_settings(tts_engine="xtts"))


def test_piper_without_noise_is_deterministic_and_with_noise_is_not():
    from voiceagent.speech.tts import PiperTTS

    quiet = make_tts(load_settings(tts_noise_scale=0, tts_noise_w=0))
    assert quiet.synthesize("It is half past seven.")[0] == quiet.synthesize("It is half past seven.")[0]
    noisy = PiperTTS(noise_scale=0.667, noise_w=0.8)
    assert noisy.synthesize("It is half past seven.")[0] != noisy.synthesize("It is half past seven.")[0]
