"""The STT and TTS a process uses, as the settings choose (STT_BACKEND, TTS_ENGINE, *_FALLBACK).

Local engines load their model here; a remote one loads nothing (its fallback, if any, loads at
the first failure: speech/fallback.py), so a voice worker with both remote holds no speech model.
"""
from __future__ import annotations

from typing import Any

from ..config import ConfigError
from .seams import SpeechToText, TextToSpeech

__all__ = ["make_stt", "make_tts_backend", "local_stt", "remote_speech"]


def local_stt(s: Any, pool: Any) -> SpeechToText:
    from .stt import Transcriber

    return Transcriber(s.stt_model, s.stt_language, s.stt_device, s.stt_compute_type, s.stt_threads, s.stt_beam_size,
                       cache_dir=str(s.model_cache_dir), pool=pool)


def _local_tts(s: Any, pool: Any) -> TextToSpeech:
    from .tts import PiperTTS

    return PiperTTS(s.tts_voice, threads=s.tts_threads, pool=pool, length_scale=s.tts_length_scale,
                    noise_scale=s.tts_noise_scale, noise_w=s.tts_noise_w)


def _need_url(var: str, value: str, backend: str) -> None:
    if not value:
        raise ConfigError(f"invalid configuration: {var}: is required when {backend} (e.g. http://127.0.0.1:8090/v1)")


def make_stt(s: Any, pool: Any) -> SpeechToText:
    """The transcriber STT_BACKEND selects (remote: with the STT_FALLBACK)."""
    if s.stt_backend != "remote":
        return local_stt(s, pool)
    from .fallback import FallbackTranscriber, LazyEngine
    from .remote_stt import RemoteTranscriber

    _need_url("STT_URL", s.stt_url, "STT_BACKEND=remote")
    local = LazyEngine("Whisper", lambda: local_stt(s, pool), pool) if s.stt_fallback == "local" else None
    return FallbackTranscriber(RemoteTranscriber.from_settings(s), local)


def make_tts_backend(s: Any, pool: Any) -> TextToSpeech:
    """The synthesizer TTS_ENGINE selects (remote: with the TTS_FALLBACK, Piper)."""
    if s.tts_engine != "remote":
        from .tts import make_tts

        return make_tts(s, pool)
    from .fallback import FallbackTTS, LazyEngine
    from .remote_tts import RemoteTTS

    _need_url("TTS_URL", s.tts_url, "TTS_ENGINE=remote")
    local = LazyEngine("Piper", lambda: _local_tts(s, pool), pool) if s.tts_fallback == "local" else None
    return FallbackTTS(RemoteTTS.from_settings(s), local)


def remote_speech(s: Any) -> bool:
    """Both STT and TTS run elsewhere (the worker loads no speech model unless a fallback is needed)."""
    return s.stt_backend == "remote" and s.tts_engine == "remote"
