"""``voiceagent jobs worker|follow|dashboard``: the Procfile's ``worker``, ``follow`` and ``dashboard``.

``worker`` is an RQ worker on this prefix's queues.  A job here is short (hand a call to the voice
workers, deliver a webhook, fire a schedule), so the worker runs jobs in its own process
(:class:`rq_worker.QueueWorker`, a SimpleWorker whose running job keeps a short lease) instead of
forking one per job.
``--with-scheduler`` also runs RQ's scheduler, which moves jobs enqueued for later
(``enqueue_at``/``enqueue_in``, retries with a delay) onto their queue when due; any number of
workers may have it: one at a time holds the scheduler lock.

``follow`` runs the call-event follower (retries, and the other handlers of ``follower.handlers``);
``dashboard`` runs rq-dashboard on the same Redis, on DASHBOARD_HOST (loopback by default: it has
no auth of its own).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Optional, Tuple

import click


def _settings() -> Any:
    from ..config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _telemetry(s: Any, service: str, metrics_port: int) -> None:
    """Log lines and spans as LOG_FORMAT/OTEL_EXPORTER say; /metrics on ``metrics_port`` (0 = none).

    An RQ worker here is one long-lived process (a SimpleWorker: no fork per job), so its own
    registry is the whole truth about it and Prometheus scrapes each worker like each voice worker;
    prometheus-client's multiprocess mode (a shared directory, pid files of dead workers to clean,
    gauges merged by rule) would buy nothing."""
    from ..observability.logs import setup_from_settings
    from ..observability.tracing import setup_tracing

    setup_from_settings(s)
    setup_tracing(s, service)
    if metrics_port:
        from ..observability.metrics import serve

        serve(metrics_port, s.metrics_host)


def register(main: click.Group) -> None:
    @main.group("jobs")
    def jobs() -> None:
        """The job workers: queued calls, schedules, webhook deliveries."""

    @jobs.command("worker")
    @click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
                  help="Also run RQ's scheduler (jobs enqueued for later).")
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty (tests, one-off runs).")
    @click.option("--name", default=None, help="Worker name (default: RQ's host.pid).")
    @click.option("--queue", "roles", multiple=True, help="Queue roles to serve (default: all, high first).")
    @click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
                  help="Serve /metrics on this port (default JOBS_METRICS_PORT; 0 = off).")
    def worker(with_scheduler: bool, burst: bool, name: Optional[str], roles: Tuple[str, ...],
               metrics_port: Optional[int]) -> None:
        """Run queued jobs, high-priority calls first."""
        from .queues import Queues
        from .rq_worker import QueueWorker

        s = _settings()
        _telemetry(s, "jobs", s.jobs_metrics_port if metrics_port is None else metrics_port)
        queues = Queues.from_settings(s)
        try:
            chosen = queues.all(list(roles) or None)
        except ValueError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        if "schedules" in (roles or ("schedules",)):
            from ..schedules.runner import on_worker_start

            on_worker_start(s)  # free a killed worker's scheduler locks, arm runs that have no job
        w = QueueWorker(chosen, connection=queues.connection, name=name, heartbeat_seconds=s.jobs_heartbeat_seconds,
                        maintenance_seconds=s.jobs_maintenance_seconds)
        w.work(burst=burst, with_scheduler=with_scheduler)

    @jobs.command("follow")
    @click.option("--consumer", default=None, help="Consumer name in the group (default: host-pid).")
    def follow(consumer: Optional[str]) -> None:
        """Follow the call events: retries per outcome (and the other event handlers)."""
        from ..records.client import CallClient
        from .follower import Follower, handlers

        s = _settings()
        _telemetry(s, "follow", 0)
        client = CallClient.from_settings(s)
        f = Follower(client, handlers(s, client), consumer=consumer, retry_seconds=s.follow_retry_seconds,
                     stale_seconds=s.follow_stale_seconds)
        f.ensure_group()
        click.echo(f"following {client.keys.events} as {f.group}/{f.consumer}", err=True)
        f.run()

    @jobs.command("dashboard")
    def dashboard() -> None:
        """rq-dashboard on this Redis (DASHBOARD_HOST:DASHBOARD_PORT; keep it on loopback: it has no auth)."""
        from ..config.base import is_loopback_host

        s = _settings()
        if not is_loopback_host(s.dashboard_host):
            click.echo(f"warning: DASHBOARD_HOST {s.dashboard_host!r} is not loopback and rq-dashboard has no "
                       "auth: anyone who reaches it can delete and requeue jobs", err=True)
        env = dict(os.environ, RQ_DASHBOARD_REDIS_URL=s.redis_url)  # in the environment: not on ps' command line
        os.execve(sys.executable, [sys.executable, "-m", "rq_dashboard", "--bind", s.dashboard_host,
                                   "--port", str(s.dashboard_port)], env)
