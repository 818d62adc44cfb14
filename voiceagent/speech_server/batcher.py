"""The micro-batcher: concurrent transcription requests gathered into one Whisper run.

The first request of a batch waits up to SPEECH_SERVER_BATCH_WAIT_MS for others (and takes at once
whatever queued while the model was busy), up to SPEECH_SERVER_BATCH_MAX; requests with the same
language, temperature and prompt run together (speech/stt_batch.py), in the inference pool, so the
server's greenlets keep accepting requests meanwhile.  With batching off each request is its own
model call, queued in the pool.  The measured gain is in README "Speech on another machine".
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import gevent
import gevent.queue
import numpy as np
from gevent.event import AsyncResult

from ..speech.stt import WhisperSegment
from ..speech.stt_batch import transcribe_batch
from .metrics import BATCH_SIZE

__all__ = ["TranscriptionBatcher"]

log = logging.getLogger(__name__)

Key = Tuple[Optional[str], float, Optional[str]]  # language, temperature, prompt


@dataclass
class _Request:
    audio: np.ndarray
    key: Key
    result: AsyncResult = field(default_factory=AsyncResult)


class TranscriptionBatcher:
    def __init__(self, stt: Any, pool: Any, *, enabled: bool = True, max_batch: int = 8, wait_ms: int = 15) -> None:
        self.stt = stt
        self.pool = pool
        self.enabled = enabled
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._loop: Optional[gevent.Greenlet] = gevent.spawn(self._run) if enabled else None

    def transcribe(self, audio: np.ndarray, *, language: Optional[str] = None, temperature: float = 0.0,
                   prompt: Optional[str] = None) -> List[WhisperSegment]:
        """Whisper's raw segments for one utterance (float32 mono 16 kHz); only this greenlet waits."""
        if not self.enabled:
            BATCH_SIZE.observe(1)
            return self.pool.run(self.stt.raw_segments, audio, prompt, language=language, temperature=temperature,
                                 kind="stt")
        req = _Request(audio, (language, temperature, prompt))
        self._queue.put(req)
        return req.result.get()

    def _gather(self) -> List[_Request]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except gevent.queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            groups: "OrderedDict[Key, List[_Request]]" = OrderedDict()
            for req in self._gather():
                groups.setdefault(req.key, []).append(req)
            for (language, temperature, prompt), reqs in groups.items():
                BATCH_SIZE.observe(len(reqs))
                try:
                    results = self.pool.run(transcribe_batch, self.stt, [r.audio for r in reqs], language=language,
                                            temperature=temperature, initial_prompt=prompt, kind="stt")
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, the loop goes on
                    log.exception("batched transcription of %d failed", len(reqs))
                    for r in reqs:
                        r.result.set_exception(exc)
                    continue
                for r, segments in zip(reqs, results, strict=True):
                    r.result.set(segments)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
