"""The follower: reads the call-event stream in a consumer group and hands each event to handlers.

A handler is ``handler(entry_id, event) -> None`` (retries are one: :mod:`retries`; status
webhooks are another).  The lead adds one by appending it to :func:`handlers` (one line).  An
entry is acknowledged once every handler has handled it; a handler that raises is logged, the
others go on, and the entry stays unacknowledged: it is offered again to the handlers that
failed on it every FOLLOW_RETRY_SECONDS, while new entries keep flowing.  Entries a dead
follower left behind are taken over after FOLLOW_STALE_SECONDS (XAUTOCLAIM).  Delivery is at
least once (a follower that dies after a handler ran and before the ack runs it again on the
next follower), so handlers are idempotent.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import redis

from ..records.client import CallClient

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], None]
GROUP = "jobs-follower"


def handlers(s: Any, client: CallClient) -> List[Tuple[str, Handler]]:
    """Every handler the follower runs, by name: retries per outcome, then status webhooks (both idempotent:
    an entry is handed to a handler again until that handler has succeeded on it)."""
    from ..webhooks.outbound import StatusNotifier
    from .dispatch import Dispatcher
    from .retries import Retries

    return [
        ("retries", Retries(Dispatcher.from_settings(s, client)).handle),
        ("status", StatusNotifier.from_settings(s, client).handle),
    ]


class Follower:
    def __init__(self, client: CallClient, named_handlers: Sequence[Tuple[str, Handler]], *, group: str = GROUP,
                 consumer: Optional[str] = None, retry_seconds: float = 10.0, stale_seconds: float = 60.0,
                 block_ms: int = 1000) -> None:
        self.client = client
        self.handlers = list(named_handlers)
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.retry_seconds = retry_seconds
        self.stale_ms = int(stale_seconds * 1000)
        self.block_ms = block_ms
        self._done: Dict[str, Set[str]] = {}   # entry id -> handlers that handled it (entries not acked yet)
        self._next_retry = 0.0
        self.stopping = False

    def ensure_group(self) -> None:
        """The group, created at the stream's end the first time (a new follower does not replay history)."""
        self.client.stream.ensure_group(self.group, start="$")

    def run(self) -> None:
        self.ensure_group()
        backoff = 0.5
        while not self.stopping:
            try:
                self.step()
                backoff = 0.5
            except redis.RedisError as exc:
                log.warning("follower: redis error: %s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def step(self) -> int:
        """One read (the failed and stale entries when their retry is due, else new ones); returns how many."""
        stream = self.client.stream
        if time.monotonic() >= self._next_retry:
            self._next_retry = time.monotonic() + self.retry_seconds
            batch = stream.read_own(self.group, self.consumer) + stream.claim_stale(self.group, self.consumer,
                                                                                     self.stale_ms)
        else:
            batch = stream.read_new(self.group, self.consumer, block_ms=self.block_ms)
        for entry_id, event in batch:
            self.handle(entry_id, event)
        return len(batch)

    def handle(self, entry_id: str, event: Any) -> bool:
        """Run the handlers that have not handled ``entry_id`` yet; ack it when all have (True)."""
        done = self._done.setdefault(entry_id, set())
        ok = True
        for name, handler in self.handlers:
            if name in done:
                continue
            try:
                handler(entry_id, event)
                done.add(name)
            except Exception:
                ok = False
                log.exception("follower: handler %s failed on %s (%s %s): kept for a retry", name, entry_id,
                              getattr(event, "type", "?"), getattr(event, "call_id", "?"))
        if ok:
            self.client.ack(self.group, entry_id)
            self._done.pop(entry_id, None)
        return ok
