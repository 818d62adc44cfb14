"""A bounded native thread pool for every model call (Whisper, Piper, XTTS).

Why: the worker is one gevent process.  A greenlet that calls Whisper or Piper directly runs C++
for up to a second without yielding, and every other call on the worker freezes (measured: a 20 ms
timer stalled 736 ms).  In a native thread the C++ code releases the GIL and the hub keeps serving
audio (stalls ~20 ms).

Size: the models are themselves multi-threaded (Whisper with STT_THREADS, Piper with TTS_THREADS),
so the pool holds ``cores // STT_THREADS`` workers (at least 1).  On 2 cores with 2-thread Whisper
that is one model call at a time; more would only make every call slower.  Callers queue, and the
queue wait is measured so the call registry can refuse new calls before latency collapses
(``saturated()`` / ``expected_wait()``).
"""
from __future__ import annotations

import os
import time
from collections import Counter, deque
from typing import Any, Callable, Deque, Dict, Optional

from gevent.threadpool import ThreadPool

from ..observability.metrics import INFERENCE_QUEUE_WAIT

__all__ = ["InferencePool", "default_pool_size", "get_pool"]


def default_pool_size(model_threads: int = 2, cores: Optional[int] = None) -> int:
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, model_threads))


class InferencePool:
    """Run blocking model calls in native threads; only the calling greenlet waits."""

    def __init__(self, size: Optional[int] = None, *, model_threads: int = 2):
        self.size = size or default_pool_size(model_threads)
        self._pool = ThreadPool(self.size)
        self._pending = 0  # submitted and not yet finished (queued + running)
        self._pending_kinds: Counter = Counter()
        self._service_ewma: Dict[str, float] = {}
        self._default_service = 0.5  # prior for expected_wait before anything has run, s
        self._waits: Deque[float] = deque(maxlen=256)
        self.completed = 0

    def run(self, fn: Callable[..., Any], *args: Any, kind: Optional[str] = None, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` in a pool thread and return its result (or raise its error)."""
        kind = str(kind or getattr(fn, "__qualname__", "call"))
        submitted = time.perf_counter()
        started = [0.0]

        def job():
            # Runs in the native thread: only touch locals here.  Errors travel back as values
            # (gevent would otherwise print every model exception as an unhandled hub error).
            started[0] = time.perf_counter()
            try:
                return True, fn(*args, **kwargs)
            except BaseException as exc:  # noqa: B902 - re-raised in the caller's greenlet
                return False, exc

        self._pending += 1
        self._pending_kinds[kind] += 1
        try:
            ok, value = self._pool.spawn(job).get()
            if not ok:
                raise value
            return value
        finally:
            self._pending -= 1
            self._pending_kinds[kind] -= 1
            if not self._pending_kinds[kind]:
                del self._pending_kinds[kind]
            done = time.perf_counter()
            if started[0]:
                self._waits.append(started[0] - submitted)
                INFERENCE_QUEUE_WAIT.labels(kind=kind).observe(started[0] - submitted)
                service = done - started[0]
                prev = self._service_ewma.get(kind)
                self._service_ewma[kind] = service if prev is None else 0.8 * prev + 0.2 * service
                self.completed += 1

    # --- admission control -------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._pending

    def service_estimate(self, kind: str) -> float:
        """Typical seconds one ``kind`` job holds a thread (a cautious prior until measured)."""
        return self._service_ewma.get(kind, self._default_service)

    def expected_wait(self) -> float:
        """Seconds a job submitted now would wait for a thread: the work already pending, spread
        over the threads (running jobs counted whole: errs on the side of refusing)."""
        if self._pending < self.size:
            return 0.0
        work = sum(n * self.service_estimate(k) for k, n in self._pending_kinds.items())
        return work / self.size

    def saturated(self, max_wait_s: float = 2.0) -> bool:
        return self.expected_wait() > max_wait_s

    def recent_wait_p95(self) -> float:
        """95th percentile of measured queue waits (s) over the last 256 calls."""
        if not self._waits:
            return 0.0
        w = sorted(self._waits)
        return w[min(len(w) - 1, int(0.95 * len(w)))]

    def stats(self) -> Dict[str, Any]:
        return {
            "size": self.size,
            "pending": self._pending,
            "completed": self.completed,
            "expected_wait_s": round(self.expected_wait(), 3),
            "wait_p95_s": round(self.recent_wait_p95(), 3),
            "service_s": {k: round(v, 3) for k, v in self._service_ewma.items()},
        }

    def close(self) -> None:
        self._pool.kill()


_default: Optional[InferencePool] = None


def get_pool() -> InferencePool:
    """The worker's shared pool, sized from settings on first use."""
    global _default
    if _default is None:
        from voiceagent.config import settings

        s = settings()
        _default = InferencePool(s.inference_threads or None, model_threads=s.stt_threads)
    return _default
