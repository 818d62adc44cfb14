"""How late the gevent loop runs: the admission signal the inference queue cannot give.

Every call's audio, ESL events and fork handshakes share one event loop.  With enough calls
(silent callers, VAD on every frame, the conversation dialog) the loop saturates while the
inference queue is empty: handshakes pass their timeout and new calls stay parked.  A greenlet
asks to wake every ``interval`` and records how much later it actually woke; the median of the
last ``window`` wake-ups is the lag (a median, so one GC pause or model load refuses nobody).
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from typing import Deque, Optional

import gevent

from ..observability.metrics import LOOP_LAG


class LoopLagMonitor:
    def __init__(self, interval: float = 0.1, window: int = 10) -> None:
        self.interval = interval
        self._samples: Deque[float] = deque(maxlen=window)
        self._greenlet: Optional[gevent.Greenlet] = None

    def start(self) -> "LoopLagMonitor":
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    @property
    def lag_ms(self) -> float:
        """Median lateness of the recent wake-ups, ms (0 until measured)."""
        samples = list(self._samples)
        return statistics.median(samples) * 1000.0 if samples else 0.0

    def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            gevent.sleep(self.interval)
            late = max(0.0, time.monotonic() - t0 - self.interval)
            self._samples.append(late)
            LOOP_LAG.observe(late)
