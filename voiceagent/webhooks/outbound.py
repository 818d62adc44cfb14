"""Call status events out: one stream event becomes one delivery job per target URL.

``StatusNotifier.handle(entry_id, event)`` is the call-event follower's handler: for the events
that change a call's status (queued, dialing, ringing, answered, ended) it reads the record (for
the call's own ``webhook_url`` and, once ended, the outcome, duration, transcript and choice
answer) and enqueues a :func:`delivery.deliver` job on the ``webhooks`` queue for the call's URL
and WEBHOOK_URL.  The delivery id is derived from the stream entry, the call, the event and the
URL, so handling one event twice makes the same id, which the job sends at most once.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, Field
from rq import Retry

from ..jobs.queues import Queues
from ..records.client import CallClient
from ..records.models import CallRecord, ChoiceAnswer, Outcome
from .delivery import deliver

log = logging.getLogger(__name__)

Status = Literal["queued", "dialing", "ringing", "answered", "completed", "busy", "no_answer", "failed", "canceled"]

#: The events that change a call's status, and the status each means (call.ended: by outcome).
STATUS_OF: Dict[str, Status] = {"call.queued": "queued", "call.dialing": "dialing", "call.ringing": "ringing",
                                "call.answered": "answered"}
ENDED: Dict[Outcome, Status] = {Outcome.ANSWERED: "completed", Outcome.BUSY: "busy",
                                Outcome.REJECTED: "busy", Outcome.NO_ANSWER: "no_answer",
                                Outcome.INVALID_NUMBER: "failed", Outcome.FAILED: "failed",
                                Outcome.CANCELED: "canceled"}
MAX_TURNS = 200        # transcript turns sent with an ended call
RETRY_CAP_SECONDS = 3600


class TranscriptLine(BaseModel):
    caller: str = ""
    agent: str = Field(default="", description="What the caller heard of the agent's reply.")


class StatusEvent(BaseModel):
    """The JSON body of a status webhook."""

    id: str = Field(description="The delivery id (also the Voiceagent-Delivery header): same event, same id.")
    type: Literal["call.status"] = "call.status"
    event: str = Field(description="The call event it reports (call.dialing, call.ended ...).")
    status: Status
    call_id: str
    at: float = Field(description="When it happened, Unix seconds.")
    direction: Optional[Literal["inbound", "outbound"]] = None
    to: str = ""
    from_: str = Field(default="", alias="from")
    outcome: Optional[Outcome] = Field(default=None, description="call.ended: how it ended.")
    duration: Optional[float] = Field(default=None, description="call.ended: seconds from answer to hangup.")
    hangup_cause: str = ""
    reason: str = ""
    transcript: Optional[List[TranscriptLine]] = None
    choice: Optional[ChoiceAnswer] = Field(default=None, description="call.ended: the choice question's answer.")
    answer: Optional[str] = Field(default=None, description="The chosen option's value, if any.")


def delivery_id(entry_id: str, call_id: str, event_type: str, url: str) -> str:
    return hashlib.sha256(f"{entry_id}\n{call_id}\n{event_type}\n{url}".encode()).hexdigest()[:32]


def retry_intervals(base: int, count: int) -> List[int]:
    return [min(base * 3 ** i, RETRY_CAP_SECONDS) for i in range(count)]


class StatusNotifier:
    def __init__(self, client: CallClient, queues: Queues, *, url: str = "", retries: int = 8,
                 retry_base_seconds: int = 10, job_timeout: float = 30.0) -> None:
        self.client = client
        self.queue = queues.get("webhooks")
        self.url = url
        self.retries = retries
        self.retry_base = retry_base_seconds
        self.job_timeout = job_timeout

    @classmethod
    def from_settings(cls, s: Any, client: Optional[CallClient] = None,
                      queues: Optional[Queues] = None) -> "StatusNotifier":
        return cls(client or CallClient.from_settings(s), queues or Queues.from_settings(s), url=s.webhook_url,
                   retries=s.webhook_retries, retry_base_seconds=s.webhook_retry_base_seconds,
                   job_timeout=4 * s.webhook_timeout + 10)

    def handle(self, entry_id: str, event: Any) -> None:
        """Enqueue the deliveries of one stream event (nothing for events that are not a status)."""
        kind = getattr(event, "type", "")
        if kind not in STATUS_OF and kind != "call.ended":
            return
        rec = self.client.get(event.call_id)
        urls = self.targets(rec)
        if not urls:
            return
        fields = self.body(event, rec)
        for url in urls:
            did = delivery_id(entry_id, event.call_id, kind, url)
            if self.queue.connection.exists(self.client.keys.webhook_sent(did)):
                continue  # delivered already: a re-handled event is not re-sent
            body = StatusEvent.model_validate({**fields, "id": did}).model_dump_json(by_alias=True)
            retry = Retry(max=self.retries, interval=retry_intervals(self.retry_base, self.retries)) \
                if self.retries else None
            # the job is named after the prefix and delivery id: one job per delivery, findable by prefix
            self.queue.enqueue(deliver, {"id": did, "url": url, "body": body, "prefix": self.client.keys.prefix},
                               job_id=f"{self.client.keys.prefix}-webhook-{did}", retry=retry,
                               job_timeout=int(self.job_timeout), result_ttl=86400, failure_ttl=7 * 86400,
                               description=f"webhook {kind} {event.call_id}")

    def targets(self, rec: Optional[CallRecord]) -> List[str]:
        own = rec.request.webhook_url if rec is not None and rec.request is not None else None
        urls: List[str] = []
        for u in (own, self.url):
            if u and u not in urls:
                urls.append(u)
        return urls

    @staticmethod
    def body(event: Any, rec: Optional[CallRecord]) -> Dict[str, Any]:
        kind = event.type
        out: Dict[str, Any] = {"event": kind, "call_id": event.call_id, "at": getattr(event, "at", time.time())}
        if rec is not None:
            out.update(direction=rec.direction, to=rec.to, **{"from": rec.from_})
        if kind != "call.ended":
            out["status"] = STATUS_OF[kind]
            return out
        out.update(status=ENDED.get(event.outcome, "failed"), outcome=event.outcome, duration=event.duration,
                   hangup_cause=event.hangup_cause, reason=event.reason)
        if rec is not None:
            out["transcript"] = [TranscriptLine(caller=t.caller_text, agent=" ".join(t.heard or t.agent_text))
                                 for t in rec.turns[:MAX_TURNS]]
            if rec.choice is not None:
                out["choice"] = rec.choice
                out["answer"] = rec.choice.value
        return out
