"""The operator layer's sections: the call queue (RQ), schedules, webhooks in and out."""
from __future__ import annotations

from pydantic import Field

from .base import Section


class JobsSettings(Section):
    """The call queue: RQ queues, the cluster-wide call limit, retries (``voiceagent/jobs/``)."""

    title = "jobs: the call queue, the cluster-wide call limit, retries (voiceagent/jobs/)"

    call_concurrency_limit: int = Field(default=20, ge=1, le=100000, description="Most outbound calls live at once in the whole cluster (ringing or talking); queued calls wait for a free slot, high before bulk.")
    queue_max_depth: int = Field(default=1000, ge=1, le=1000000, description="Most calls waiting in one priority's queue (high, bulk); a call submitted beyond it is refused (HTTP 429).")
    slot_lease_margin_seconds: float = Field(default=120.0, ge=1, le=86400, description="Added to a call's ring timeout and longest duration to make its slot's lease: a slot whose call never reported its end is free again after the lease.")
    dial_job_retries: int = Field(default=3, ge=0, le=20, description="Times a dial job whose RQ worker died (or that failed) is run again; it dials nothing twice.")
    jobs_heartbeat_seconds: int = Field(default=10, ge=1, le=600, description="How often an RQ worker refreshes the lease of the job it runs (and looks for jobs abandoned by dead workers when idle); a job unrefreshed for 3 times this is abandoned.")
    jobs_maintenance_seconds: float = Field(default=30.0, ge=0.5, le=3600, description="How often RQ workers retry abandoned jobs and clean RQ's registries (one worker at a time).")
    follow_retry_seconds: float = Field(default=10.0, ge=0.1, le=3600, description="How often the follower retries the call events a handler failed on (they stay unacknowledged until handled).")
    follow_stale_seconds: float = Field(default=60.0, ge=1, le=86400, description="Call events a dead follower left unacknowledged this long are taken over by another.")
    dashboard_host: str = Field(default="127.0.0.1", description="Address rq-dashboard binds (the Procfile's dashboard; it has no auth of its own: keep it on loopback).")
    dashboard_port: int = Field(default=9181, ge=0, le=65535, description="Port of rq-dashboard.")


class ScheduleSettings(Section):
    """One-time and recurring scheduled calls (``voiceagent/schedules/``)."""

    title = "schedules: one-time and recurring calls (voiceagent/schedules/)"


class WebhookSettings(Section):
    """Webhooks in (calls triggered by Grafana, Alertmanager, Home Assistant ...) and out (status events)."""

    title = "webhooks: calls from webhooks, status events to webhooks (voiceagent/webhooks/)"
