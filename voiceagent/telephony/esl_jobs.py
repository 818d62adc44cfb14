"""bgapi correlation: each job carries a Job-UUID we chose, its BACKGROUND_JOB resolves it.

Jobs outlive a reconnect (FreeSWITCH fires BACKGROUND_JOB to every subscriber) and expire on
their own timer, so a result that never comes fails the waiter instead of leaking it.
"""
from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Callable, Dict, Tuple

import gevent
import gevent.event

from voiceagent.telephony import eslwire
from voiceagent.telephony.esl_errors import EslTimeout

log = logging.getLogger("voiceagent.telephony.esl")  # one logger for the whole ESL client


class BgapiJobs:
    """The running bgapi jobs of one connection."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._jobs: Dict[str, Tuple[gevent.event.AsyncResult, str]] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def open(self, cmd: str, wait: float) -> Tuple[str, gevent.event.AsyncResult]:
        """A new job for ``cmd``: its Job-UUID and the result, failed after ``wait`` seconds."""
        job = str(uuidlib.uuid4())
        result = gevent.event.AsyncResult()
        self._jobs[job] = (result, cmd)
        expiry = gevent.spawn_later(wait, self._expire_job, job, wait)
        result.rawlink(lambda _r: expiry.kill(block=False))
        return job, result

    def discard(self, job: str) -> None:
        """Forget a job FreeSWITCH never accepted."""
        self._jobs.pop(job, None)

    def resolve(self, event: eslwire.Event) -> None:
        """Runs in the reader: a BACKGROUND_JOB's body is its job's result."""
        try:
            entry = self._jobs.pop(event.get("Job-UUID", "") or "", None)
            if entry is not None and not entry[0].ready():
                entry[0].set(event.text)
        except Exception:
            log.exception("ESL %s: BACKGROUND_JOB handling failed", self.node)

    def fail_all(self, error: Callable[[], Exception]) -> None:
        jobs, self._jobs = self._jobs, {}
        for result, _ in jobs.values():
            if not result.ready():
                result.set_exception(error())

    def _expire_job(self, job: str, wait: float) -> None:
        entry = self._jobs.pop(job, None)
        if entry and not entry[0].ready():
            what = entry[1].split(" ", 1)[0]
            entry[0].set_exception(EslTimeout(f"ESL {self.node}: no BACKGROUND_JOB for {what!r} within {wait:g}s"))
