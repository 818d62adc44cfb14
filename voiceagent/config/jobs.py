"""The operator layer's sections: the call queue (RQ), schedules, webhooks in and out."""
from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from .base import Section, check_url


class JobsSettings(Section):
    """The call queue: RQ queues, the cluster-wide call limit, retries (``voiceagent/jobs/``)."""

    title = "jobs: the call queue, the cluster-wide call limit, retries (voiceagent/jobs/)"


class ScheduleSettings(Section):
    """One-time and recurring scheduled calls (``voiceagent/schedules/``)."""

    title = "schedules: one-time and recurring calls (voiceagent/schedules/)"

    schedule_misfire_grace_seconds: float = Field(default=300.0, ge=0, le=7 * 86400, description="A run found due later than this (everything was down) is recorded as missed and skipped instead of dialed late.")
    schedule_claim_seconds: int = Field(default=300, ge=10, le=86400, description="How long one run job holds its (schedule, due) claim; a job that died holding it is retried after this.")
    schedule_history_runs: int = Field(default=100, ge=1, le=10000, description="Runs kept in each schedule's history (older ones are dropped).")


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
