"""The dial job: a queued call gets a slot of CALL_CONCURRENCY_LIMIT, then goes to the voice workers.

RQ runs :func:`dial_job` (``dial-<call id>``).  The job never lasts a call: it waits only while
the cluster is full (a free RQ worker always takes ``high`` before ``bulk``, so waiting keeps the
priorities), then moves the record ``queued -> requested`` and returns; the voice workers dial.
It is safe to run again (RQ retries a job whose worker died): a record that is not ``queued`` any
more was handed over already and is left alone, and a slot the call already holds is taken again,
not a second one.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Optional

from ..observability.ops_metrics import QUEUE_RETRIES, QUEUE_WAIT
from ..records.client import CallClient
from ..records.models import Outcome
from ..records.store import RecordGone, ending
from .slots import CallSlots, lease_seconds

log = logging.getLogger(__name__)

WAIT_STEP_SECONDS = 1.0  # longest a waiting job sleeps before it looks at its record and the slots again


def no_slot_reason(limit: int) -> str:
    return f"no free call slot before the request's deadline (CALL_CONCURRENCY_LIMIT={limit} calls were live)"


class DialJob:
    def __init__(self, client: CallClient, slots: CallSlots, *, max_call_seconds: float = 1800.0,
                 lease_margin: float = 120.0) -> None:
        self.client = client
        self.slots = slots
        self.max_call_seconds = max_call_seconds
        self.lease_margin = lease_margin

    def run(self, call_id: str) -> str:
        """Hand ``call_id`` over when a slot is free; returns what happened (RQ keeps it as the job's result)."""
        rec = self.client.get(call_id)
        if rec is None:
            return "no record"
        if rec.ended:
            self.slots.release(call_id)  # an ended call holds no slot (its end freed it; this is for sure)
            return "not dialed: ended"
        if rec.state != "queued":
            return f"already handed over ({rec.state})"
        if rec.cancel_requested:
            self._end(call_id, Outcome.CANCELED, "canceled before dialing")
            return "not dialed: canceled"
        req = rec.request
        lease = lease_seconds(req.ring_timeout if req else 30, req.max_duration if req else None,
                              self.max_call_seconds, self.lease_margin)
        while not self.slots.take(call_id, lease):
            left = rec.deadline - time.time()
            if left <= 0:
                self._end(call_id, Outcome.FAILED, no_slot_reason(self.slots.limit))
                return "deadline passed waiting for a slot"
            self.slots.wait(min(WAIT_STEP_SECONDS, left))
            latest = self.client.get(call_id)
            if latest is None or latest.ended or latest.state != "queued":
                return f"not dialed: {latest.state if latest else 'record gone'}"
            rec = latest
        handed = self.client.hand_over(call_id)
        if handed is not None:
            priority = handed.priority or "high"
            QUEUE_WAIT.labels(priority=priority).observe(max(0.0, time.time() - (handed.due or handed.created)))
            if handed.attempt > 1:
                QUEUE_RETRIES.labels(priority=priority).inc()
            return "requested"
        latest = self.client.get(call_id)
        if latest is None or latest.ended or latest.state == "queued":
            self.slots.release(call_id)  # not going to be dialed: the slot is not its
        return f"not dialed: {latest.state if latest else 'record gone'}"

    def _end(self, call_id: str, outcome: Outcome, reason: str) -> None:
        try:
            self.client.records.update(call_id, ending(outcome, worker="jobs", reason=reason))
        except RecordGone:
            pass


@lru_cache(maxsize=1)
def _runtime() -> DialJob:
    """One per RQ worker process, from its settings (REDIS_URL, REDIS_PREFIX, the JobsSettings)."""
    from ..config import load_settings

    s = load_settings()
    client = CallClient.from_settings(s)
    return DialJob(client, CallSlots(client.r, client.keys, s.call_concurrency_limit),
                   max_call_seconds=s.max_call_seconds, lease_margin=s.slot_lease_margin_seconds)


def dial_job(call_id: str, runtime: Optional[DialJob] = None) -> str:
    """What RQ runs (by name: ``voiceagent.jobs.dial.dial_job``)."""
    return (runtime or _runtime()).run(call_id)
