"""Speech to text on a remote OpenAI-compatible server: ``POST {STT_URL}/audio/transcriptions``.

The turn goes up as a 16 kHz WAV (multipart ``file``, with ``model``, ``language`` and
``response_format=verbose_json``: its segments carry Whisper's ``no_speech_prob`` and
``avg_logprob``, so the same hallucination filter as in process applies here, with the level
measured on our side).  Silence is never sent.  The request waits in the calling greenlet.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from .audio import float_to_pcm16, rms_dbfs, wav_encode
from .remote_http import RemoteEndpoint
from .stt import Transcript, filtered_transcript, is_silence

__all__ = ["RemoteTranscriber"]


class RemoteTranscriber:
    """A ``SpeechToText`` (speech/seams.py) backed by a remote server."""

    uses_pool = False

    def __init__(self, base_url: str, *, model: str = "whisper-1", language: Optional[str] = "en", api_key: str = "",
                 timeout: float = 10.0, retries: int = 1) -> None:
        self.endpoint = RemoteEndpoint("stt", base_url, "/audio/transcriptions", api_key=api_key, timeout=timeout,
                                       retries=retries)
        self.model = model
        self.language = language or None
        self.name = f"remote:{model}"

    @classmethod
    def from_settings(cls, s: Any) -> "RemoteTranscriber":
        return cls(s.stt_url, model=s.stt_remote_model, language=s.stt_language,
                   api_key=s.stt_api_key.get_secret_value(), timeout=s.stt_timeout_s, retries=s.stt_retries)

    def transcribe(self, audio: np.ndarray, *, initial_prompt: Optional[str] = None) -> Transcript:
        audio = np.asarray(audio, dtype=np.float32)
        duration, level = len(audio) / 16000.0, rms_dbfs(audio)
        if is_silence(duration, level):
            return Transcript("", duration)
        fields = {"model": self.model, "response_format": "verbose_json", "temperature": "0"}
        if self.language:
            fields["language"] = self.language
        if initial_prompt:
            fields["prompt"] = initial_prompt
        t0 = time.perf_counter()
        body = self.endpoint.call(_json, files={"file": ("turn.wav", wav_encode(float_to_pcm16(audio), 16000),
                                                         "audio/wav")}, data=fields)
        segments = body.get("segments")
        if isinstance(segments, list) and segments:
            scored = [(str(seg.get("text", "")), float(seg.get("no_speech_prob", 0.0)),
                       float(seg.get("avg_logprob", 0.0))) for seg in segments]
        else:  # a server without segments: only the text (the filter's unconditional rules still apply)
            scored = [(str(body["text"]), 0.0, 0.0)]
        return filtered_transcript(scored, duration, level, time.perf_counter() - t0)

    def transcribe_blocking(self, audio: np.ndarray, initial_prompt: Optional[str] = None) -> Transcript:
        return self.transcribe(audio, initial_prompt=initial_prompt)


def _json(resp: Any, deadline: float) -> dict:
    body = resp.json()
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise ValueError("no 'text' in the transcription")
    return body
