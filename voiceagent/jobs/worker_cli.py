"""``voiceagent jobs worker``: an RQ worker on this prefix's queues (the Procfile's ``worker``).

A job here is short (hand a call to the voice workers, deliver a webhook, fire a schedule), so
the worker runs jobs in its own process (RQ's SimpleWorker) instead of forking one per job.
``--with-scheduler`` also runs RQ's scheduler, which moves jobs enqueued for later
(``enqueue_at``/``enqueue_in``, retries with a delay) onto their queue when due; any number of
workers may have it: one at a time holds the scheduler lock.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional, Tuple

import click


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
    def worker(with_scheduler: bool, burst: bool, name: Optional[str], roles: Tuple[str, ...]) -> None:
        """Run queued jobs, high-priority calls first."""
        from rq import SimpleWorker

        from ..config import ConfigError, load_settings
        from .queues import Queues

        try:
            s = load_settings()
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        queues = Queues.from_settings(s)
        try:
            chosen = queues.all(list(roles) or None)
        except ValueError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        if "schedules" in (roles or ("schedules",)):
            from ..schedules.runner import on_worker_start

            on_worker_start(s)  # free a killed worker's scheduler locks, arm runs that have no job
        w = SimpleWorker(chosen, connection=queues.connection, name=name)
        w.work(burst=burst, with_scheduler=with_scheduler)
