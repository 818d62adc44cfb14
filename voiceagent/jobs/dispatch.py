"""Where every outbound call enters the system: ``Dispatcher.submit(request, priority=...)``.

The API, webhooks, schedules and tools submit through here, never through the call client
directly, so the queue (priorities, depth limit, the cluster-wide call limit, retries) applies to
all of them alike.  A submitted call is a record in state ``queued`` plus an RQ job ``dial-<id>``
on the ``high`` or ``bulk`` queue; the job (:mod:`dial`) hands it to the voice workers when a slot
of CALL_CONCURRENCY_LIMIT is free.  The record is written first, the job second: a second
submission with the same idempotency key enqueues the job again if it is missing (RQ refuses a
duplicate id), so a submitter that died between the two is healed by its own retry.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, Dict, Literal, Optional, Union

import redis
from rq import Retry
from rq.exceptions import DuplicateJobError

from ..records.client import CallClient
from ..records.events import CallQueued
from ..records.models import CallRecord, CallRequest
from ..records.store import PRIORITIES, QueueFull
from .queues import Queues

log = logging.getLogger(__name__)

Priority = Literal["high", "bulk"]

__all__ = ["Dispatcher", "Priority", "QueueFull", "dial_job_id"]

DIAL_JOB = "voiceagent.jobs.dial.dial_job"
JOB_TIMEOUT_MARGIN = 60     # seconds a dial job may run past its call's deadline (RQ kills it then)
RESULT_TTL = 3600           # what a finished dial job did, kept for the dashboard


def dial_job_id(call_id: str) -> str:
    return f"dial-{call_id}"


def _setting(s: Any, name: str) -> Any:
    """A JobsSettings value; a settings object without the section (an API built from a few) gets its default."""
    from ..config.jobs import JobsSettings

    return getattr(s, name, JobsSettings.model_fields[name].default)


class Dispatcher:
    """Submits outbound calls.  ``high`` is for calls a person asked for now (API, webhooks);
    ``bulk`` for scheduled and batch calls, dialed when no ``high`` call waits."""

    def __init__(self, client: CallClient, queues: Optional[Queues] = None, *, max_depth: int = 1000,
                 dial_retries: int = 3) -> None:
        self.client = client
        self.queues = queues or Queues(client.r, client.keys.prefix)
        self.max_depth = max_depth
        self.dial_retries = dial_retries

    @classmethod
    def from_settings(cls, s: Any, client: Optional[Union[redis.Redis, CallClient]] = None) -> "Dispatcher":
        cc = client if isinstance(client, CallClient) else CallClient.from_settings(s, client)
        return cls(cc, max_depth=_setting(s, "queue_max_depth"), dial_retries=_setting(s, "dial_job_retries"))

    def submit(self, request: Union[CallRequest, Dict[str, Any]], *, priority: Priority = "high") -> str:
        """Queue ``request``; returns the call id.  Raises pydantic.ValidationError, DialRefused, QueueFull."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        req = self.client.checked(request)
        rec = CallClient.new_record(req, "queued", priority=priority)
        call_id = self.client.records.create(rec, event=self._queued_event(rec), max_queued=self.max_depth,
                                             idempotency_key=req.idempotency_key)
        if call_id == rec.id:
            self._enqueue(rec)
        else:
            self._heal(call_id)
        return call_id

    def retry(self, ended: CallRecord, delay: float) -> str:
        """The next attempt of ``ended`` (a new call, linked both ways), dialed after ``delay`` seconds on
        the same priority; idempotent: asking again for the same ended call returns the same attempt."""
        if ended.request is None or ended.priority is None:
            raise ValueError(f"call {ended.id} was not queued: nothing to retry")
        now = time.time()
        rec = CallClient.new_record(ended.request, "queued", now=now, priority=ended.priority, due=now + delay,
                                    attempt=ended.attempt + 1, first_attempt=ended.first_attempt or ended.id,
                                    previous_attempt=ended.id, traceparent=ended.traceparent)
        call_id = self.client.records.create(rec, event=self._queued_event(rec),
                                             idempotency_key=f"retry-of:{ended.id}")
        if call_id == rec.id:
            self._enqueue(rec, delay)
        else:
            self._heal(call_id)

        def link(old: CallRecord) -> None:
            old.next_attempt = call_id
            return None
        self.client.records.update(ended.id, link)
        return call_id

    def depth(self) -> Dict[str, int]:
        """Calls waiting in the queue per priority (queued, not yet handed to the voice workers)."""
        return self.client.records.queued_counts()

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _queued_event(rec: CallRecord) -> CallQueued:
        assert rec.priority is not None
        return CallQueued(call_id=rec.id, at=rec.created, to=rec.to, priority=rec.priority,
                          request_deadline=rec.deadline, attempt=rec.attempt, previous_attempt=rec.previous_attempt)

    def _heal(self, call_id: str) -> None:
        """An earlier submission made ``call_id``: enqueue its job again in case that submitter died first."""
        rec = self.client.get(call_id)
        if rec is not None and rec.state == "queued" and rec.priority is not None:
            self._enqueue(rec, max(0.0, (rec.due or 0.0) - time.time()))

    def _enqueue(self, rec: CallRecord, delay: float = 0.0) -> None:
        assert rec.priority is not None and rec.request is not None
        q = self.queues.get(rec.priority)
        kw: Dict[str, Any] = dict(job_id=dial_job_id(rec.id), unique=True, result_ttl=RESULT_TTL,
                                  job_timeout=int(rec.request.deadline_seconds) + JOB_TIMEOUT_MARGIN,
                                  description=f"dial {rec.id} (attempt {rec.attempt})",
                                  meta={"traceparent": rec.traceparent} if rec.traceparent else None)
        if self.dial_retries:
            kw["retry"] = Retry(max=self.dial_retries)
        try:
            if delay > 0:
                q.enqueue_in(timedelta(seconds=delay), DIAL_JOB, rec.id, **kw)
            else:
                q.enqueue(DIAL_JOB, rec.id, **kw)
        except DuplicateJobError:
            log.debug("dial job of %s exists already", rec.id)

