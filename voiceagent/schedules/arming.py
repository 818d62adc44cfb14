"""Each due run is one RQ job on the ``schedules`` queue, enqueued for its due time.

The job id is made of the schedule id and the due time, so arming twice saves the same job
(harmless) and the reconciler can ask whether the run it expects has a job.  RQ's scheduler
(inside ``voiceagent jobs worker``) moves the job onto the queue when due.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ..jobs.queues import Queues

RUN_JOB = "voiceagent.schedules.runner.run_schedule"
#: A job in one of these states will still run (a started one's worker may be dead: not counted).
WAITING = {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED}


class Armer:
    def __init__(self, queues: Queues) -> None:
        self.queues = queues

    def job_id(self, schedule_id: str, due: int, retry: Optional[int] = None) -> str:
        base = f"{self.queues.prefix}-schedule-{schedule_id}-{int(due)}"
        return base if retry is None else f"{base}-retry-{retry}"

    def arm(self, schedule_id: str, due: int, *, at: Optional[float] = None, retry: Optional[int] = None) -> str:
        """Enqueue the run job for ``due`` (at ``at`` if given: a retry); returns the job id."""
        when = datetime.fromtimestamp(at if at is not None else due, timezone.utc)
        jid = self.job_id(schedule_id, due, retry)
        self.queues.get("schedules").enqueue_at(when, RUN_JOB, schedule_id, int(due), job_id=jid,
                                                result_ttl=600, failure_ttl=7 * 86400,
                                                description=f"schedule {schedule_id} run due {int(due)}")
        return jid

    def waiting(self, schedule_id: str, due: int) -> bool:
        """True if the run's job is still to run (scheduled or queued)."""
        try:
            job = Job.fetch(self.job_id(schedule_id, due), connection=self.queues.connection)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in WAITING

    def disarm(self, schedule_id: str, due: Optional[int]) -> None:
        """Cancel and delete the run's job so it never fires (no job: nothing to do)."""
        if due is None:
            return
        try:
            job = Job.fetch(self.job_id(schedule_id, due), connection=self.queues.connection)
        except NoSuchJobError:
            return
        job.delete()
