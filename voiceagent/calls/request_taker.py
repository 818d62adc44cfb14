"""Outbound call requests: this worker takes them from Redis while it has room, and dials them.

A request is taken atomically (see ``records.store``): exactly one worker gets it.  Before
dialing, the record is marked ``claimed`` by this worker, with the id FreeSWITCH will use as
the channel's uuid; from then on the dial reports every step through the call observers.  A
request whose deadline passed, or that was cancelled meanwhile, ends without a dial.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Optional

import gevent
import redis

from ..records.models import CallRecord, Outcome, StateChange
from ..records.store import RecordGone, RecordStore, end, ended_event, ending

if TYPE_CHECKING:
    from .worker import VoiceWorker

log = logging.getLogger(__name__)

FULL_POLL_SECONDS = 0.2     # how often a full worker looks again for room
EXPIRE_EVERY_SECONDS = 1.0  # how often this worker fails requests nobody took in time
END_RETRY_SECONDS = 300.0   # how long a dial keeps trying to end its record while Redis is unreachable


class RequestTaker:
    def __init__(self, worker: "VoiceWorker", records: RecordStore, *, wait_seconds: float = 1.0) -> None:
        self.worker = worker
        self.records = records
        self.wait_seconds = wait_seconds
        self.reserved = 0  # taken, not yet a session: counted against MAX_CALLS
        self._greenlet: Optional[gevent.Greenlet] = None
        self._stopping = False
        self._last_expire = 0.0

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)

    def room(self) -> int:
        w = self.worker
        if w.draining or self._stopping or not w.nodes:
            return 0
        return w.settings.max_calls - w.live_calls() - self.reserved

    def _run(self) -> None:
        from .inbox import dedicated_connection

        backoff = 0.5
        waiter = dedicated_connection(self.records.r, self.wait_seconds)  # BLPOP never holds a pooled one
        while not self._stopping:
            try:
                self._expire()
                if self.room() <= 0:
                    gevent.sleep(FULL_POLL_SECONDS)
                    continue
                call_id = self.records.take_request(self.worker.worker_id,
                                                    claim_ttl=self.worker.settings.max_call_seconds + 3600)
                if call_id is None:
                    self.records.wait_for_request(self.wait_seconds, conn=waiter)
                    continue
                self.reserved += 1
                self.worker.spawn(self._dial, call_id, call_id=call_id)
                backoff = 0.5
            except redis.RedisError as exc:
                log.warning("requests: redis error: %s", exc)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        waiter.connection_pool.disconnect()

    def _expire(self) -> None:
        now = time.monotonic()
        if now - self._last_expire < EXPIRE_EVERY_SECONDS:
            return
        self._last_expire = now
        self.records.fail_expired(self.worker.worker_id)

    def _end(self, call_id: str, outcome: Outcome, reason: str, cause: str = "") -> None:
        """End the record, retrying through a Redis outage (this greenlet is the dial's own): a raise here
        would leave the record open for good, since nobody else ends a live worker's request."""
        backoff, deadline = 0.5, time.monotonic() + END_RETRY_SECONDS
        while True:
            try:
                self.records.update(call_id, ending(outcome, worker=self.worker.worker_id, reason=reason, cause=cause))
                return
            except RecordGone:
                log.warning("requests: record vanished", extra={"call_id": call_id})
                return
            except redis.RedisError as exc:
                if time.monotonic() + backoff > deadline:
                    log.error("requests: gave up ending the record (%s): %s", outcome.value, exc,
                              extra={"call_id": call_id})
                    return
                log.warning("requests: could not end the record (%s), retrying: %s", outcome.value, exc,
                            extra={"call_id": call_id})
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _dial(self, call_id: str) -> None:
        worker = self.worker
        reserved = True
        try:
            rec = self._claim(call_id)
            if rec is None or rec.ended or rec.request is None:
                return
            req = rec.request
            if req.node and req.node not in worker.nodes:
                self._end(call_id, Outcome.FAILED, f"this worker does not serve node {req.node!r}")
                return
            # a cancel that came after the claim: its hangup reached our inbox before the call had a session
            latest = self.records.get(call_id)
            if latest is not None and latest.cancel_requested:
                self._end(call_id, Outcome.CANCELED, "canceled before dialing")
                return
            # from here the dial's session counts against MAX_CALLS (no yield before it is created, so a
            # cancel arriving now finds the session)
            self.reserved -= 1
            reserved = False
            result = worker.originate(req.to, node=req.node, gateway=req.gateway,
                                      caller_id_number=req.caller_id_number, caller_id_name=req.caller_id_name,
                                      timeout=req.ring_timeout, profile=req.profile, call_id=call_id,
                                      request=req, request_id=call_id, max_seconds=req.max_duration,
                                      trace_parent=rec.traceparent)
            if result.get("outcome") != "answered":  # the session reported it; this only covers no session at all
                worker.observers_flush()
                outcome = result.get("outcome", "failed")
                self._end(call_id, Outcome.of(outcome), f"originate: {result.get('cause') or outcome}",
                          cause=result.get("cause") or "")
        except Exception as exc:
            log.exception("requests: dial failed")
            self._end(call_id, Outcome.FAILED, f"dial failed: {exc}")
        finally:
            if reserved:
                self.reserved -= 1

    def _claim(self, call_id: str) -> Optional[CallRecord]:
        """Mark the record taken by this worker before dialing (or end it when it must not be dialed)."""
        from ..records.events import CallEnded

        wid = self.worker.worker_id
        now = time.time()

        def change(rec: CallRecord) -> Optional[CallEnded]:
            if rec.ended:
                return None
            rec.worker = wid
            if rec.cancel_requested:
                end(rec, Outcome.CANCELED, at=now, reason="canceled before dialing", ended_by="system")
            elif rec.request is not None and now > rec.deadline:
                end(rec, Outcome.FAILED, at=now, reason="deadline passed before a worker could dial",
                    ended_by="system")
            else:
                rec.state = "claimed"
                rec.history.append(StateChange(state="claimed", at=now))
                return None
            return ended_event(rec, wid)
        try:
            return self.records.update(call_id, change)
        except RecordGone:
            log.warning("requests: taken request has no record", extra={"call_id": call_id})
            return None
