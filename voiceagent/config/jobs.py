"""The operator layer's sections: the call queue (RQ), schedules, webhooks in and out."""
from __future__ import annotations

from pydantic import Field

from .base import Section


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
