"""A remote speech engine with its local fallback (STT_FALLBACK / TTS_FALLBACK = local).

The local model is loaded at the first remote failure, not at start-up: a worker whose speech
server is up never holds a model, and one whose server went down pays the load once (in the
inference pool, so no greenlet freezes) and goes on in process.  Each request still tries the
remote first, so the worker goes back to it as soon as it answers again.  Without a fallback (or
when loading it fails) ``SpeechUnavailable`` reaches the call, which apologises and hangs up.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Generic, Optional, Tuple, TypeVar

import gevent.lock
from prometheus_client import Counter

from .seams import SpeechToText, SpeechUnavailable, TextToSpeech

__all__ = ["LazyEngine", "FallbackTranscriber", "FallbackTTS", "FALLBACKS"]

log = logging.getLogger(__name__)

FALLBACKS = Counter("voiceagent_speech_fallbacks_total", "Requests the local fallback served after the remote "
                    "speech server failed", ["kind"])

E = TypeVar("E")


class LazyEngine(Generic[E]):
    """An engine built once, on first use, in the inference pool; a failed build is not retried."""

    def __init__(self, what: str, build: Callable[[], E], pool: Any) -> None:
        self.what = what
        self._build = build
        self._pool = pool
        self._lock = gevent.lock.BoundedSemaphore()
        self.engine: Optional[E] = None
        self._error: Optional[str] = None

    def get(self) -> E:
        with self._lock:
            if self.engine is None and self._error is None:
                log.warning("loading the local %s fallback", self.what)
                try:
                    self.engine = self._pool.run(self._build, kind="load")
                except Exception as exc:  # noqa: BLE001 - a missing model package, a bad path...
                    self._error = f"{type(exc).__name__}: {exc}"
                    log.error("the local %s fallback cannot be loaded (%s)", self.what, self._error)
        if self.engine is None:
            raise SpeechUnavailable(f"no local {self.what} fallback: {self._error}")
        return self.engine


class FallbackTranscriber:
    """``SpeechToText``: the remote one, else the local one."""

    uses_pool = False

    def __init__(self, remote: SpeechToText, local: Optional[LazyEngine]) -> None:
        self.remote = remote
        self.local = local
        self.name = remote.name

    def transcribe(self, audio: Any, *, initial_prompt: Optional[str] = None) -> Any:
        try:
            return self.remote.transcribe(audio, initial_prompt=initial_prompt)
        except SpeechUnavailable as exc:
            if self.local is None:
                raise
            log.warning("remote STT failed, transcribing locally: %s", exc)
            engine = self.local.get()
            FALLBACKS.labels("stt").inc()
            return engine.transcribe(audio, initial_prompt=initial_prompt)

    def transcribe_blocking(self, audio: Any, initial_prompt: Optional[str] = None) -> Any:
        return self.transcribe(audio, initial_prompt=initial_prompt)


class FallbackTTS:
    """``TextToSpeech``: the remote one, else the local one (resampled to the rate asked for)."""

    def __init__(self, remote: TextToSpeech, local: Optional[LazyEngine]) -> None:
        self.remote = remote
        self.local = local
        self.voice_id = remote.voice_id
        self.sample_rate = remote.sample_rate

    def synthesize(self, text: str, rate: Optional[int] = None) -> Tuple[bytes, int]:
        try:
            return self.remote.synthesize(text, rate)
        except SpeechUnavailable as exc:
            if self.local is None:
                raise
            log.warning("remote TTS failed, synthesizing locally: %s", exc)
            engine = self.local.get()
            FALLBACKS.labels("tts").inc()
            return engine.synthesize(text, rate or self.sample_rate)
