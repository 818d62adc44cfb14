"""The RQ worker voiceagent runs: a SimpleWorker (no fork per job) whose running job keeps a short lease.

Each job runs in a span (:func:`job_span`) parented on the trace context its enqueuer left in its meta.

RQ's SimpleWorker registers a job as started until ``job timeout + 60 s`` and never refreshes it,
so a worker killed while a dial job waits for a slot would leave that job unretried for as long
as its call's deadline.  Here a heartbeat greenlet (thread) refreshes the job's entry every
JOBS_HEARTBEAT_SECONDS with a lease of three beats; once a dead worker's lease lapses, the next
maintenance run of any worker (every JOBS_MAINTENANCE_SECONDS, one worker at a time) retries the job
(``Retry(max=DIAL_JOB_RETRIES)``), and the dial job is safe to run again.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.trace import SpanKind
from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from ..observability.tracing import context_of, tracer

log = logging.getLogger(__name__)


def job_span(job: Job, queue: Queue) -> Any:
    """The span a job runs in (current while it runs), a child of the ``traceparent`` in its meta: the
    API request (or job) that enqueued it.  A dial job hands that on to the call record."""
    name = (job.func_name or "job").rsplit(".", 1)[-1]
    attrs = {"messaging.system": "rq", "messaging.destination.name": queue.name, "messaging.message.id": job.id}
    return tracer().start_as_current_span(f"job {name}", context=context_of((job.meta or {}).get("traceparent")),
                                          kind=SpanKind.CONSUMER, attributes=attrs)


class QueueWorker(SimpleWorker):
    def __init__(self, queues: Any, *, heartbeat_seconds: int = 10, maintenance_seconds: float = 30.0,
                 **kw: Any) -> None:
        beat = max(1, int(heartbeat_seconds))
        # worker_ttl - 15 is how long an idle worker blocks on the queues before it looks at maintenance
        kw.update(worker_ttl=beat + 15, job_monitoring_interval=beat, maintenance_interval=maintenance_seconds)
        super().__init__(queues, **kw)
        self.beat = beat

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return 3 * self.beat

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()
        beater = threading.Thread(target=self._keep_alive, args=(job, execution, done), daemon=True,
                                  name=f"heartbeat-{job.id}")
        beater.start()
        try:
            with job_span(job, queue):
                self.perform_job(job, queue, execution)
        finally:
            done.set()
            beater.join(timeout=self.beat + 5)
        self.set_state(WorkerStatus.IDLE)

    def _keep_alive(self, job: Job, execution: Execution, done: threading.Event) -> None:
        while not done.wait(self.beat):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception as exc:  # a Redis blip: the next beat tries again (the lease is 3 beats)
                log.warning("job %s: heartbeat failed: %s", job.id, exc)
