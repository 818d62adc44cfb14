"""Audio conversions used on the call path: PCM16 <-> float32, resampling, WAV bytes.

Phone audio arrives as little-endian signed 16-bit mono PCM (L16) at 8 or 16 kHz; the models want
float32 in [-1, 1] at 16 kHz (Whisper, Silero) or produce float32 at the voice's rate (Piper).
Resampling uses soxr (audioop is gone in Python 3.13).
"""
from __future__ import annotations

import io
import wave
from typing import Tuple

import numpy as np
import soxr

__all__ = [
    "pcm16_to_float",
    "float_to_pcm16",
    "resample",
    "resample_pcm16",
    "StreamResampler",
    "wav_encode",
    "wav_decode",
    "duration_s",
    "pcm16_duration_s",
    "samples_for_ms",
    "rms_dbfs",
]


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """Little-endian int16 bytes -> float32 samples in [-1, 1)."""
    if len(pcm) % 2:
        raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(x: np.ndarray) -> bytes:
    """float32 samples -> little-endian int16 bytes (clipped, rounded)."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2").tobytes()


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole float32 mono signal (one-shot; use StreamResampler for frames)."""
    x = np.asarray(x, dtype=np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    return soxr.resample(x, src_rate, dst_rate, quality="HQ").astype(np.float32, copy=False)


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample PCM16 bytes (e.g. Piper's 22050 Hz to the channel's 8000/16000 Hz)."""
    if src_rate == dst_rate:
        return bytes(pcm)
    return float_to_pcm16(resample(pcm16_to_float(pcm), src_rate, dst_rate))


class StreamResampler:
    """Resample a stream frame by frame, keeping filter state across frames.

    Resampling each 20 ms frame independently would click at every frame edge; soxr's stream
    keeps its history, so the output equals one-shot resampling of the concatenation (minus
    a small constant delay that ``flush()`` releases).
    """

    def __init__(self, src_rate: int, dst_rate: int):
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._stream = (None if src_rate == dst_rate
                        else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32", quality="HQ"))

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        out = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = soxr.ResampleStream(self.src_rate, self.dst_rate, 1, dtype="float32", quality="HQ")
        return out


def wav_encode(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    """PCM16 bytes -> a complete RIFF/WAVE file in memory."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def wav_decode(data: bytes) -> Tuple[bytes, int]:
    """WAV bytes -> (mono PCM16 bytes, rate). Stereo is mixed down; only 16-bit PCM is accepted."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
        channels, rate = w.getnchannels(), w.getframerate()
        pcm = w.readframes(w.getnframes())
    if channels > 1:
        x = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32).mean(axis=1)
        pcm = x.round().astype("<i2").tobytes()
    return pcm, rate


def duration_s(x: np.ndarray, rate: int) -> float:
    return len(x) / float(rate)


def pcm16_duration_s(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2.0 / rate


def samples_for_ms(ms: float, rate: int) -> int:
    return int(round(ms * rate / 1000.0))


def rms_dbfs(x: np.ndarray) -> float:
    """Signal level in dBFS (-inf-safe: silence gives -120)."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return max(-120.0, 20.0 * np.log10(rms + 1e-12))
