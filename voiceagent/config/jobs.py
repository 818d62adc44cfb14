"""The operator layer's sections: the call queue (RQ), schedules, webhooks in and out."""
from __future__ import annotations

from .base import Section


class JobsSettings(Section):
    """The call queue: RQ queues, the cluster-wide call limit, retries (``voiceagent/jobs/``)."""

    title = "jobs: the call queue, the cluster-wide call limit, retries (voiceagent/jobs/)"


class ScheduleSettings(Section):
    """One-time and recurring scheduled calls (``voiceagent/schedules/``)."""

    title = "schedules: one-time and recurring calls (voiceagent/schedules/)"


class WebhookSettings(Section):
    """Webhooks in (calls triggered by Grafana, Alertmanager, Home Assistant ...) and out (status events)."""

    title = "webhooks: calls from webhooks, status events to webhooks (voiceagent/webhooks/)"
