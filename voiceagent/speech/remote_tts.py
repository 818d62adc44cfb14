"""Text to speech on a remote OpenAI-compatible server: ``POST {TTS_URL}/audio/speech``.

The answer is read as it streams in (chunk by chunk, each read bounded by the deadline), and the
time to its first audio byte is measured (``voiceagent_remote_speech_seconds{stage="first_audio"}``).
A call hands FreeSWITCH one file per sentence (calls/playout.py; mod_audio_fork's playAudio takes
a whole file too), so a sentence plays once its last byte is in: with sentence-sized requests the
stream saves the server's own buffering, not a wait on our side.  ``pcm`` answers are raw 16-bit
mono at TTS_PCM_RATE (OpenAI: 24 kHz); ``wav`` answers carry their rate, and a streamed WAV's
unknown data size (0 or 0xFFFFFFFF) is accepted.
"""
from __future__ import annotations

import struct
import time
from typing import Any, List, Optional, Tuple

from .audio import resample_pcm16
from .remote_http import REMOTE_SECONDS, RemoteEndpoint, past

__all__ = ["RemoteTTS", "parse_wav_stream"]

CHUNK_BYTES = 8192


class RemoteTTS:
    """A ``TextToSpeech`` (speech/seams.py) backed by a remote server."""

    def __init__(self, base_url: str, *, model: str = "tts-1", voice: str = "en_US-joe-medium",
                 response_format: str = "pcm", pcm_rate: int = 24000, api_key: str = "", timeout: float = 10.0,
                 retries: int = 1) -> None:
        if response_format not in ("pcm", "wav"):
            raise ValueError(f"response_format must be 'pcm' or 'wav', not {response_format!r}")
        self.endpoint = RemoteEndpoint("tts", base_url, "/audio/speech", api_key=api_key, timeout=timeout,
                                       retries=retries)
        self.model = model
        self.voice = voice
        self.response_format = response_format
        self.sample_rate = pcm_rate
        self.voice_id = f"remote:{model}:{voice}"

    @classmethod
    def from_settings(cls, s: Any) -> "RemoteTTS":
        return cls(s.tts_url, model=s.tts_remote_model, voice=s.tts_remote_voice, response_format=s.tts_response_format,
                   pcm_rate=s.tts_pcm_rate, api_key=s.tts_api_key.get_secret_value(), timeout=s.tts_timeout_s,
                   retries=s.tts_retries)

    def synthesize(self, text: str, rate: Optional[int] = None) -> Tuple[bytes, int]:
        if not text.strip():
            return b"", rate or self.sample_rate
        body = {"model": self.model, "input": text, "voice": self.voice, "response_format": self.response_format}
        data = self.endpoint.call(self._read, json=body)
        if self.response_format == "wav":
            pcm, got_rate = parse_wav_stream(data)
        else:
            pcm, got_rate = data[: len(data) // 2 * 2], self.sample_rate
        out_rate = rate or self.sample_rate
        return resample_pcm16(pcm, got_rate, out_rate), out_rate

    def _read(self, resp: Any, deadline: float) -> bytes:
        t0 = time.monotonic()
        parts: List[bytes] = []
        for chunk in resp.iter_content(CHUNK_BYTES):
            if not parts and chunk:
                REMOTE_SECONDS.labels("tts", "first_audio").observe(time.monotonic() - t0)
            parts.append(chunk)
            if past(deadline):
                raise TimeoutError("the speech took longer than TTS_TIMEOUT_S to arrive")
        return b"".join(parts)


def parse_wav_stream(data: bytes) -> Tuple[bytes, int]:
    """(PCM16 mono bytes, rate) of a WAV that may have been streamed (data size unknown)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("the answer is not a WAV file")
    pos, rate, channels, bits = 12, 0, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body:body + 16])
            if fmt != 1 or bits != 16:
                raise ValueError(f"only 16-bit PCM WAV is supported (format {fmt}, {bits} bits)")
        elif cid == b"data":
            if not rate:
                raise ValueError("WAV data before its fmt chunk")
            end = len(data) if size in (0, 0xFFFFFFFF) or body + size > len(data) else body + size
            pcm = data[body:end]
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            if channels > 1:
                import numpy as np

                x = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32).mean(axis=1)
                pcm = x.round().astype("<i2").tobytes()
            return pcm, rate
        pos = body + size + (size & 1)
    raise ValueError("the WAV has no data chunk")
