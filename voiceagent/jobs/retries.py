"""Retries per outcome: a follower handler that queues the next attempt of a call that ended busy,
unanswered, rejected or failed, as the request's ``retry`` policy says.

Each attempt is a new call (a new FreeSWITCH uuid) with ``attempt`` n+1, ``first_attempt`` and
``previous_attempt`` set, and the ended call's ``next_attempt`` pointing at it; it is created with
an idempotency key derived from the ended call's id, so an event handled twice queues one attempt.
It is dialed after the rule's delay (RQ's scheduler), on the ended call's priority.  Only calls
that went through the queue (they have a priority) are retried; a canceled, answered or invalid
number never is.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from ..records.events import CallEnded
from ..records.models import CallRecord, RetryRule
from .dispatch import Dispatcher

log = logging.getLogger(__name__)


def next_rule(rec: CallRecord) -> Optional[RetryRule]:
    """The rule that calls for another attempt after ``rec``, or None."""
    if rec.request is None or rec.request.retry is None or rec.priority is None or rec.outcome is None:
        return None
    if rec.cancel_requested:
        return None
    rule = rec.request.retry.rule(rec.outcome)
    if rule is None or rec.attempt > rule.attempts:
        return None
    return rule


class Retries:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def handle(self, entry_id: str, event: Any) -> None:
        if not isinstance(event, CallEnded):
            return
        rec = self.dispatcher.client.get(event.call_id)
        if rec is None or not rec.ended:
            return
        rule = next_rule(rec)
        if rule is None:
            return
        nxt = self.dispatcher.retry(rec, rule.delay_seconds)
        log.info("retries: call %s ended %s (attempt %d): attempt %d is %s, in %.0fs", rec.id,
                 rec.outcome.value if rec.outcome else "?", rec.attempt, rec.attempt + 1, nxt, rule.delay_seconds,
                 extra={"call_id": rec.id, "next_attempt": nxt})
