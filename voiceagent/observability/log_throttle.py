"""At most one log line per interval for a kind of event that an attacker can trigger at will.

A flood of refused connections must not become a flood of log lines (10,000 WARNINGs in 30 s
of bad credentials drown everything else and fill disks): the first one of a kind is logged,
the rest of the interval only counted, and the next line that gets through says how many were
suppressed.  Kinds are a small fixed set chosen by the caller (never per address or per uuid),
so the table stays bounded.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional


@dataclass
class _Kind:
    last: float
    suppressed: int = 0


class LogThrottle:
    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._kinds: Dict[str, _Kind] = {}
        self._lock = threading.Lock()
        self.suppressed_total = 0

    def log(self, kind: str, level: int, msg: str, *args, extra: Optional[dict] = None) -> bool:
        """Log ``msg`` unless a line of this ``kind`` went out less than ``interval`` ago.

        Returns whether the line was written.
        """
        now = self._clock()
        with self._lock:
            k = self._kinds.get(kind)
            if k is not None and now - k.last < self.interval:
                k.suppressed += 1
                self.suppressed_total += 1
                return False
            suppressed = k.suppressed if k is not None else 0
            since = now - k.last if k is not None else 0.0
            self._kinds[kind] = _Kind(last=now)
        if suppressed:
            msg += " (%d more like this in the last %.0fs not logged)"
            args = args + (suppressed, since)
        self.logger.log(level, msg, *args, extra=extra)
        return True
