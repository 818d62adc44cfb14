"""The operator layer's sections: the call queue (RQ), schedules, webhooks in and out."""
from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from .base import Section, check_url


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
    jobs_metrics_port: int = Field(default=0, ge=0, le=65535, description="Port of an RQ worker's Prometheus /metrics endpoint on METRICS_HOST (0 = off; several workers on one host: give each its own with 'jobs worker --metrics-port').")
    dashboard_host: str = Field(default="127.0.0.1", description="Address rq-dashboard binds (the Procfile's dashboard; it has no auth of its own: keep it on loopback).")
    dashboard_port: int = Field(default=9181, ge=0, le=65535, description="Port of rq-dashboard.")


class ScheduleSettings(Section):
    """One-time and recurring scheduled calls (``voiceagent/schedules/``)."""

    title = "schedules: one-time and recurring calls (voiceagent/schedules/)"

    schedule_misfire_grace_seconds: float = Field(default=300.0, ge=0, le=7 * 86400, description="A run found due later than this (everything was down) is recorded as missed and skipped instead of dialed late.")
    schedule_claim_seconds: int = Field(default=300, ge=10, le=86400, description="How long one run job holds its (schedule, due) claim; a job that died holding it is retried after this.")
    schedule_history_runs: int = Field(default=100, ge=1, le=10000, description="Runs kept in each schedule's history (older ones are dropped).")
    timer_min_seconds: int = Field(default=5, ge=1, le=3600, description="Shortest timer or callback delay a caller may ask for by voice (the timer tools' lower bound; the longest timer is 24 hours).")
    caller_schedules_max: int = Field(default=20, ge=1, le=1000, description="Most timers, callbacks and briefings one caller may have at once (made by voice through the tools).")


class WebhookSettings(Section):
    """Webhooks in (calls triggered by Grafana, Alertmanager, Home Assistant ...) and out (status events)."""

    title = "webhooks: calls from webhooks, status events to webhooks (voiceagent/webhooks/)"

    webhooks_file: str = Field(default="", description="YAML or JSON file of the webhook sources that may trigger calls (/webhooks/<kind>/<source>): auth, numbers, message template (empty = none; see docs/webhooks.md).")
    webhook_dedup_seconds: int = Field(default=21600, ge=1, le=30 * 86400, description="A repeated webhook delivery (same source, group, status and alerts, or same delivery id header) within this long calls nobody again.")
    webhook_url: str = Field(default="", description="URL every call's status events are POSTed to (besides a call's own webhook_url); empty = none.")
    webhook_secret: SecretStr = Field(default=SecretStr(""), description="Shared secret signing status events (Voiceagent-Signature: t=<unix>,v1=<HMAC-SHA256 hex of 't.body'>); empty = unsigned.")
    webhook_allow_private: bool = Field(default=False, description="Allow status webhooks to loopback, private, link-local and other non-public addresses (off: such targets are refused, SSRF guard).")
    webhook_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds a status delivery may take to connect and to answer (then it is retried).")
    webhook_retries: int = Field(default=8, ge=0, le=20, description="Retries of a status delivery after a 5xx, 408, 429, timeout or connection error.")
    webhook_retry_base_seconds: int = Field(default=10, ge=0, le=3600, description="First retry delay of a status delivery; each next waits 3x longer (capped at an hour).")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v, ("http", "https"), "https://ops.example.com/voiceagent-events")
