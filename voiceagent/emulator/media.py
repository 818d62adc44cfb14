"""What the emulated channel can play: WAV (any rate), raw .r8/.r16, tone_stream://."""
from __future__ import annotations

import os
import re
import wave
from typing import Optional, Tuple

import numpy as np
import soxr

HEARD_RATE = 16000  # the caller-side recording is kept at this rate


class MediaError(Exception):
    """The file cannot be opened (FreeSWITCH: FILE NOT FOUND)."""


def _to_heard_rate(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == HEARD_RATE or len(pcm) == 0:
        return pcm.astype(np.int16)
    out = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, HEARD_RATE)
    return np.clip(out * 32768.0, -32768, 32767).astype(np.int16)


def _tone_stream(spec: str) -> Tuple[np.ndarray, int]:
    """``tone_stream://%(on_ms,off_ms,freq[,freq...]);loops=N`` (a subset of teletone's syntax)."""
    body = spec[len("tone_stream://"):]
    loops = 1
    m = re.search(r"loops=(-?\d+)", body)
    if m:
        loops = max(1, int(m.group(1)))
    parts = []
    for on, off, freqs in re.findall(r"%\((\d+),(\d+),([\d.,]+)\)", body):
        n_on = int(HEARD_RATE * int(on) / 1000)
        t = np.arange(n_on) / HEARD_RATE
        wave_ = np.zeros(n_on)
        fs = [float(f) for f in freqs.split(",") if f]
        for f in fs:
            wave_ += np.sin(2 * np.pi * f * t) / max(1, len(fs))
        parts.append((wave_ * 0.5 * 32767).astype(np.int16))
        parts.append(np.zeros(int(HEARD_RATE * int(off) / 1000), dtype=np.int16))
    if not parts:
        raise MediaError(f"unparsable tone_stream {spec!r}")
    one = np.concatenate(parts)
    return np.tile(one, loops), HEARD_RATE


def load(path: str) -> np.ndarray:
    """Decode ``path`` into int16 mono samples at HEARD_RATE; MediaError if it cannot be played."""
    if path.startswith("tone_stream://"):
        pcm, _ = _tone_stream(path)
        return pcm
    if path.startswith("silence_stream://"):
        ms = int(re.match(r"silence_stream://(\d+)", path).group(1)) if re.match(r"silence_stream://(\d+)", path) else 0
        return np.zeros(int(HEARD_RATE * ms / 1000), dtype=np.int16)
    if not os.path.isfile(path):
        raise MediaError(f"no such file {path!r}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".r8", ".r16"):
            rate = 8000 if ext == ".r8" else 16000
            raw = open(path, "rb").read()
            pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
            return _to_heard_rate(pcm, rate)
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise MediaError(f"{path!r}: only 16-bit WAV is supported")
            rate, ch = w.getframerate(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if ch > 1:
            pcm = pcm.reshape(-1, ch).mean(axis=1).astype(np.int16)
        return _to_heard_rate(pcm, rate)
    except (wave.Error, EOFError, OSError) as exc:
        raise MediaError(f"{path!r}: {exc}") from exc


def file_type(path: str) -> Optional[str]:
    """``Playback-File-Type`` as FreeSWITCH reports it (only for stream URLs)."""
    m = re.match(r"^([a-z_]+)://", path)
    return m.group(1) if m else None


