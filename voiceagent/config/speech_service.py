"""Speech as a service: the remote STT/TTS backends a voice worker may use (OpenAI's audio API), and
the settings of our own speech server (``voiceagent speech-server``, voiceagent/speech_server/).

Which engine runs stays in the speech section (``STT_BACKEND`` here, ``TTS_ENGINE`` there); a remote
backend needs its URL, checked when the backend is built (speech/backends.py) so a process that never
speaks does not fail on it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .base import Section, check_url


def _base_url(v: str) -> str:
    return check_url(v.rstrip("/"), ("http", "https"), "http://127.0.0.1:8090/v1")


class SpeechBackendSettings(Section):
    title = "speech backends: remote STT/TTS over OpenAI's audio API, retries, fallbacks (speech/backends.py)"

    stt_backend: Literal["local", "remote"] = Field(default="local", description="Speech to text: 'local' (faster-whisper in this process, default) or 'remote' (POST STT_URL/audio/transcriptions: our speech server, Speaches, OpenAI...).")
    stt_url: str = Field(default="", description="Base URL of the remote STT server, up to and including /v1 (e.g. http://gpu1:8090/v1); needed when STT_BACKEND=remote.")
    stt_api_key: SecretStr = Field(default=SecretStr(""), description="Bearer token for STT_URL (empty = none sent).")
    stt_remote_model: str = Field(default="whisper-1", description="The 'model' field sent to the remote STT server (our speech server takes 'whisper-1' or its STT_MODEL name).")
    stt_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Longest wait for one remote transcription (connect + answer), s; a timeout counts as a failure and is retried.")
    stt_retries: int = Field(default=1, ge=0, le=5, description="Retries of a remote transcription after a timeout, a refused connection or a 5xx (4xx is never retried).")
    stt_fallback: Literal["local", "none"] = Field(default="local", description="When the remote STT still fails: 'local' = transcribe with the local Whisper (STT_MODEL, loaded at the first failure, not at start-up), 'none' = the call apologises and hangs up.")
    tts_url: str = Field(default="", description="Base URL of the remote TTS server, up to and including /v1; needed when TTS_ENGINE=remote.")
    tts_api_key: SecretStr = Field(default=SecretStr(""), description="Bearer token for TTS_URL (empty = none sent).")
    tts_remote_model: str = Field(default="tts-1", description="The 'model' field sent to the remote TTS server (our speech server takes 'tts-1', 'piper' or 'xtts').")
    tts_remote_voice: str = Field(default="en_US-joe-medium", description="The 'voice' field sent to the remote TTS server (our speech server: its Piper voice names; OpenAI: alloy, nova, ...).")
    tts_response_format: Literal["pcm", "wav"] = Field(default="pcm", description="Audio format asked of the remote TTS server: 'pcm' (raw 16-bit mono at TTS_PCM_RATE, streams without a header) or 'wav'.")
    tts_pcm_rate: int = Field(default=24000, ge=8000, le=48000, description="Sample rate of the remote server's 'pcm' answers (OpenAI's is 24000, as is our speech server's).")
    tts_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Longest wait for one remote synthesis (until its last byte), s.")
    tts_retries: int = Field(default=1, ge=0, le=5, description="Retries of a remote synthesis after a timeout, a refused connection or a 5xx.")
    tts_fallback: Literal["local", "none"] = Field(default="local", description="When the remote TTS still fails: 'local' = Piper (TTS_VOICE, loaded at the first failure), 'none' = the cached apology phrase is said (if synthesized earlier) and the call hangs up.")

    @field_validator("stt_url", "tts_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _base_url(v)


class SpeechServerSettings(Section):
    title = "speech server: voiceagent speech-server, OpenAI-compatible STT/TTS (speech_server/)"

    speech_server_host: str = Field(default="127.0.0.1", description="Address the speech server binds (a non-loopback address needs SPEECH_SERVER_TOKEN).")
    speech_server_port: int = Field(default=8090, ge=0, le=65535, description="Port of the speech server (0 = pick one).")
    speech_server_token: SecretStr = Field(default=SecretStr(""), description="Bearer token every endpoint but /health and /metrics requires; empty = no auth, allowed on a loopback host only.")
    speech_server_max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024, description="Largest transcription upload (OpenAI's limit is 25 MB); larger ones get 413.")
    speech_server_max_input_chars: int = Field(default=4096, ge=1, le=100000, description="Longest text one /v1/audio/speech request may ask for (OpenAI's limit is 4096).")
    speech_server_batch: Literal["auto", "on", "off"] = Field(default="auto", description="Transcribe concurrent requests as one batch (one encoder pass for up to SPEECH_SERVER_BATCH_MAX utterances). 'auto' = on when Whisper runs on a GPU, off on CPU, where a batch of 4-8 measured 3-7 % more CPU per utterance than one at a time (README 'Speech on another machine').")
    speech_server_batch_max: int = Field(default=8, ge=1, le=64, description="Most utterances in one batched Whisper run.")
    speech_server_batch_wait_ms: int = Field(default=15, ge=0, le=1000, description="How long the first request of a batch waits for others to join, ms (requests that queued while the model was busy are batched at once).")
