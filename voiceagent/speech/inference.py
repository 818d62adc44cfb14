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

Order: first come, first served, except that calls made inside :func:`urgent` (a decision the caller
is waiting on: the barge-in transcript, the smart-turn model, the speculative transcript at a pause)
go before the ordinary ones still waiting.  Measured (bench latency, one thread): a reply's later
sentences queued for synthesis held a barge-in's transcript back ~2.5 s, and with it the resume.
"""
from __future__ import annotations

import os
import time
import weakref
from collections import Counter, deque
from contextlib import contextmanager
from typing import Any, Callable, Deque, Dict, Iterator, Optional, Tuple

import gevent
from gevent.event import Event
from gevent.threadpool import ThreadPool

from ..observability.metrics import INFERENCE_QUEUE_WAIT

__all__ = ["InferencePool", "default_pool_size", "get_pool", "urgent"]

_URGENT: "weakref.WeakSet[Any]" = weakref.WeakSet()  # greenlets inside urgent()


@contextmanager
def urgent() -> Iterator[None]:
    """Model calls this greenlet makes inside go before the ordinary ones waiting for a thread."""
    g = gevent.getcurrent()
    fresh = g not in _URGENT
    _URGENT.add(g)
    try:
        yield
    finally:
        if fresh:
            _URGENT.discard(g)


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
        self._free = self.size  # threads not handed to a job
        self._queued: Tuple[Deque[Event], Deque[Event]] = (deque(), deque())  # (urgent, ordinary) waiting

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
        held = False
        try:
            self._acquire(gevent.getcurrent() in _URGENT)
            held = True
            ok, value = self._pool.spawn(job).get()
            if not ok:
                raise value
            return value
        finally:
            if held:
                self._release()
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

    def _acquire(self, urgent_job: bool) -> None:
        """A thread for this job: at once if one is free and nobody waits, else in turn (urgent first)."""
        if self._free > 0 and not (self._queued[0] or self._queued[1]):
            self._free -= 1
            return
        turn = Event()
        line = self._queued[0 if urgent_job else 1]
        line.append(turn)
        try:
            turn.wait()
        except BaseException:  # killed while waiting: leave the line, or pass on a thread just handed over
            if turn.is_set():
                self._release()
            else:
                line.remove(turn)
            raise

    def _release(self) -> None:
        for line in self._queued:
            if line:
                line.popleft().set()  # the thread goes straight to the next job
                return
        self._free += 1

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
