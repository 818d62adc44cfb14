"""What the emulated caller says: queued speech, then silence, read out frame by frame."""
from __future__ import annotations

import os
import threading
from typing import Callable, List, Optional, Tuple, Union

from gevent.event import Event

from voiceagent.speech.audio import resample_pcm16, wav_decode

Speech = Union[str, os.PathLike, bytes, Tuple[bytes, int]]


class CallerAudio:
    """A queue of L16LE mono audio at ``sample_rate``; reads past its end are silence.

    With a ``clock`` (the channel's call time) it also keeps what was said when: ``spoken`` holds
    (call time, PCM) per stretch of speech read out (a call recording's caller leg)."""

    def __init__(self, sample_rate: int, clock: Optional[Callable[[], float]] = None) -> None:
        self.sample_rate = sample_rate
        self.clock = clock
        self.spoken: List[Tuple[float, bytearray]] = []
        self._speaking = False
        self._buf = bytearray()
        self._pos = 0
        self._lock = threading.Lock()
        self._idle = Event()
        self._idle.set()

    def say(self, audio: Speech) -> None:
        """Queue speech: a WAV path, ``(pcm_bytes, rate)``, or bytes already at ``sample_rate``."""
        if isinstance(audio, (str, os.PathLike)):
            with open(audio, "rb") as f:
                pcm, rate = wav_decode(f.read())
        elif isinstance(audio, tuple):
            pcm, rate = audio
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            pcm, rate = bytes(audio), self.sample_rate
        else:
            raise TypeError(f"say() takes a WAV path, (pcm, rate) or PCM bytes, not {type(audio).__name__}")
        if len(pcm) % 2:
            raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
        if rate != self.sample_rate:
            pcm = resample_pcm16(pcm, rate, self.sample_rate)
        if not pcm:
            return
        with self._lock:
            self._buf += pcm
            self._idle.clear()

    def read(self, n_samples: int) -> bytes:
        """The next ``n_samples`` samples (``2 * n_samples`` bytes), padded with silence."""
        want = 2 * n_samples
        with self._lock:
            chunk = bytes(self._buf[self._pos:self._pos + want])
            self._pos += len(chunk)
            if self._pos >= len(self._buf):
                self._buf.clear()
                self._pos = 0
                self._idle.set()
            elif self._pos > 1 << 20:  # drop what was read, now and then
                del self._buf[:self._pos]
                self._pos = 0
            if self.clock is not None:
                self._keep(chunk, want)
        return chunk + b"\x00" * (want - len(chunk))

    def _keep(self, chunk: bytes, want: int) -> None:
        if chunk:
            if not self._speaking:
                self.spoken.append((self.clock(), bytearray()))  # type: ignore[misc]
                self._speaking = True
            self.spoken[-1][1].extend(chunk)
        self._speaking = len(chunk) == want  # the queue ran dry: the next speech starts a new stretch

    def clear(self) -> None:
        """Stop talking: drop everything still queued."""
        with self._lock:
            self._buf.clear()
            self._pos = 0
            self._speaking = False
            self._idle.set()

    def idle(self) -> bool:
        return self._idle.is_set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def pending_seconds(self) -> float:
        with self._lock:
            return (len(self._buf) - self._pos) / 2 / self.sample_rate
