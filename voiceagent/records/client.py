"""What any process uses to place calls and learn how they went: the call client.

``place(request) -> id``, ``get(id)``, ``wait(id, until=...)``, ``send(id, command)``,
``cancel(id)``, ``list(...)`` and ``events(group, consumer)``.  It talks only to Redis: the
voice worker that takes a request dials it and writes the record this client reads.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import redis
from pydantic import BaseModel

from ..calls.inbox import CallNotFound, CallStore
from ..observability.tracing import traceparent
from .dial_policy import DialPolicy
from .events import CallEnded, CallRequested
from .keys import Keys
from .models import TERMINAL, CallRecord, CallRequest, Outcome, StateChange, new_call_id
from .store import RecordGone, RecordStore, ending
from .stream import EventStream

DEFAULT_RETENTION_DAYS = 30.0


class CallClient:
    """``policy`` checks every request before it is queued; without one (a client built by hand,
    as tests do) a permissive policy applies: :meth:`from_settings` builds the DIAL_* one."""

    def __init__(self, client: redis.Redis, prefix: str = "voiceagent", *,
                 retention_days: float = DEFAULT_RETENTION_DAYS, stream_maxlen: Optional[int] = None,
                 policy: Optional[DialPolicy] = None) -> None:
        self.r = client
        self.policy = policy or DialPolicy.permissive()
        self.keys = Keys(prefix)
        self.stream = EventStream(client, self.keys, **({"maxlen": stream_maxlen} if stream_maxlen else {}))
        self.records = RecordStore(client, self.keys, retention_seconds=retention_days * 86400, stream=self.stream)
        self.calls = CallStore(client, prefix)

    @classmethod
    def from_settings(cls, s: Any, client: Optional[redis.Redis] = None) -> "CallClient":
        from ..calls.inbox import make_redis

        r = client or make_redis(s.redis_url, socket_timeout=s.redis_socket_timeout)
        return cls(r, s.redis_prefix, retention_days=s.call_retention_days, stream_maxlen=s.call_events_maxlen,
                   policy=DialPolicy.from_settings(s))

    # ------------------------------------------------------------------ requests
    def place(self, request: Union[CallRequest, Dict[str, Any]]) -> str:
        """Queue an outbound call for the voice workers directly (no RQ queue, no concurrency limit,
        no retries: :class:`jobs.dispatch.Dispatcher` is the way with them); returns its id (the
        FreeSWITCH uuid it will have).

        Raises pydantic.ValidationError for a bad request and dial_policy.DialRefused for one the
        policy refuses.  Placing again with the same idempotency key returns the first call's id
        and queues nothing."""
        req = self.checked(request)
        rec = self.new_record(req, "requested")
        ev = self.requested_event(rec)
        return self.records.create(rec, event=ev, pending_score=ev.request_deadline,
                                   idempotency_key=req.idempotency_key)

    def checked(self, request: Union[CallRequest, Dict[str, Any]]) -> CallRequest:
        """``request`` validated and passed by the dial policy (raises ValidationError, DialRefused)."""
        req = request if isinstance(request, CallRequest) else CallRequest.model_validate(request)
        self.policy.check(req)
        return req

    @staticmethod
    def new_record(req: CallRequest, state: str, *, now: Optional[float] = None, **fields: Any) -> CallRecord:
        """A new outbound record for ``req`` in ``state`` (``requested``, or ``queued`` for the RQ queue),
        carrying the trace context it was placed in (an API request's span, say)."""
        now = time.time() if now is None else now
        fields.setdefault("traceparent", traceparent())
        return CallRecord(id=new_call_id(), direction="outbound", state=state, to=req.to,
                          from_=req.caller_id_number or "", profile=req.profile, request=req, created=now,
                          history=[StateChange(state=state, at=now)], **fields)

    @staticmethod
    def requested_event(rec: CallRecord, now: Optional[float] = None) -> CallRequested:
        return CallRequested(call_id=rec.id, at=time.time() if now is None else now, to=rec.to,
                             request_deadline=rec.deadline)

    def hand_over(self, call_id: str) -> Optional[CallRecord]:
        """A ``queued`` call to the voice workers: ``requested``, in the pending zset, workers nudged, all in
        one transaction.  None (and nothing changed) when it is not queued any more."""
        done: Dict[str, bool] = {}

        def change(rec: CallRecord) -> Optional[CallRequested]:
            done["ok"] = False
            if rec.ended or rec.state != "queued" or rec.cancel_requested:
                return None
            now = time.time()
            rec.state = "requested"
            rec.history.append(StateChange(state="requested", at=now))
            rec.traceparent = traceparent() or rec.traceparent  # the dial job's span, when traced
            done["ok"] = True
            return self.requested_event(rec, now)
        rec = self.records.update(call_id, change)
        return rec if done.get("ok") else None

    def cancel(self, call_id: str) -> CallRecord:
        """Cancel a call: a queued request ends at once as canceled; a call being dialed or talked
        to is hung up by its worker (the record says canceled unless it had been answered)."""
        if self.records.unqueue(call_id):
            finish = ending(Outcome.CANCELED, reason="canceled before a worker took it", ended_by="")

            def mark(rec: CallRecord) -> Optional[CallEnded]:
                rec.cancel_requested = True
                return finish(rec)
            return self._update(call_id, mark)

        queued = ending(Outcome.CANCELED, reason="canceled while queued", ended_by="")

        def flag(rec: CallRecord) -> Optional[CallEnded]:
            if rec.ended:
                return None
            rec.cancel_requested = True
            if rec.state == "queued":  # in the RQ queue: its dial job finds it ended and dials nothing
                return queued(rec)
            return None
        rec = self._update(call_id, flag)
        if not rec.ended and rec.worker:
            try:  # to the worker that took it: a call being dialed is not live in Redis yet
                self.calls.push_command(rec.worker, call_id, {"type": "hangup", "cause": "ORIGINATOR_CANCEL"})
            except CallNotFound:
                pass  # its worker is gone: the dead-worker sweep ends the record
        return rec

    def _update(self, call_id: str, fn: Any) -> CallRecord:
        try:
            rec = self.records.update(call_id, fn)
        except RecordGone:
            raise CallNotFound(call_id) from None
        assert rec is not None
        return rec

    # ------------------------------------------------------------------ reading
    def get(self, call_id: str) -> Optional[CallRecord]:
        return self.records.get(call_id)

    def wait(self, call_id: str, until: Union[str, Iterable[str]] = TERMINAL, timeout: float = 60.0,
             ) -> CallRecord:
        """Block until the call's record has reached one of the states ``until`` (default: ended).

        Wakes on the event stream, not by polling the record.  Also fails requests whose deadline
        has passed when no worker is left to do it.  Raises TimeoutError with the last state seen."""
        states = {until} if isinstance(until, str) else set(until)
        deadline = time.monotonic() + timeout
        last = self.stream.last_id()
        while True:
            rec = self.get(call_id)
            if rec is None:
                raise CallNotFound(call_id)
            if rec.state in states or any(rec.reached(s) for s in states) or rec.ended:
                return rec
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"call {call_id} still {rec.state} after {timeout:.0f}s")
            self.expire_requests()
            last, _events = self.stream.tail(last, block_ms=max(1, int(min(left, 1.0) * 1000)))

    def list(self, *, direction: Optional[str] = None, state: Optional[str] = None,
             outcome: Optional[str] = None, since: float = 0.0, until: float = float("inf"),
             limit: int = 50) -> List[CallRecord]:
        """Records newest first, filtered (scans at most 10x ``limit`` of the index)."""
        out: List[CallRecord] = []
        ids = self.records.ids_between(since, until, limit=max(limit * 10, 100))
        for rec in self.records.get_many(ids):
            if direction and rec.direction != direction:
                continue
            if state and rec.state != state:
                continue
            if outcome and (rec.outcome.value if rec.outcome else None) != outcome:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        return out

    def events(self, group: str, consumer: str, **kw: Any) -> Iterator[Tuple[str, Any]]:
        """The event stream for a consumer group (see :class:`stream.EventStream`); ack with :meth:`ack`."""
        return self.stream.consume(group, consumer, **kw)

    def ack(self, group: str, *entry_ids: str) -> None:
        self.stream.ack(group, *entry_ids)

    # ------------------------------------------------------------------ acting
    def send(self, call_id: str, command: Union[BaseModel, Dict[str, Any]]) -> Any:
        """A command for a live call (say, play, hangup, transfer): see calls/inbox_commands."""
        return self.calls.send_command(call_id, command)

    def expire_requests(self) -> List[str]:
        """Fail the queued requests whose deadline passed (any process may run this; each once)."""
        return self.records.fail_expired()
