"""Every Redis key voiceagent uses, in one place (all under ``REDIS_PREFIX``).

Live state (refreshed by the owning worker, expires when it dies):

- ``<p>:call:<id>``             hash: a live call (id, node, worker, direction, caller, callee, state, started)
- ``<p>:calls``                 set of live call ids
- ``<p>:worker:<id>``           hash: a live worker's heartbeat (calls, capacity, fork url, ``nodes``: its ESL
                                links' states as JSON ...)
- ``<p>:worker:<id>:inbox``     list of JSON commands for the calls that worker owns
- ``<p>:<kind>:<id>``           claims (SET NX): ``claim`` (START_FORK_ON_PARK), ``sweep``, ``forkfail``

Records, requests and events (kept for ``CALL_RETENTION_DAYS``):

- ``<p>:record:<id>``           JSON: the call record (:class:`models.CallRecord`), id = FreeSWITCH uuid
- ``<p>:records``               zset: record ids by creation time (the listing index, trimmed by retention)
- ``<p>:records:open``          set: records not ended yet (what the dead-worker sweep checks)
- ``<p>:requests:pending``      zset: outbound requests no worker has taken, by creation time
- ``<p>:requests:wake``         list: a nudge for idle workers when a request arrives (capped)
- ``<p>:requests:queued:<prio>`` zset: calls in the RQ queue (state ``queued``) of priority high|bulk, by deadline
- ``<p>:slots``                 zset: call ids holding a slot of CALL_CONCURRENCY_LIMIT, by lease expiry
- ``<p>:slots:wake``            list: a nudge for dial jobs waiting for a slot when one is freed (capped)
- ``<p>-high``, ``<p>-bulk`` ...  RQ queue names (RQ's own keys, ``rq:...``; see jobs/queues.py)
- ``<p>:idem:<key>``            string: the record id an idempotency key created
- ``<p>:events``                stream: every call event (:mod:`events`), bounded length

Webhooks (``voiceagent/webhooks/``):

- ``<p>:webhook:seen:<hash>``   string: the call ids an inbound webhook delivery placed (SET NX, WEBHOOK_DEDUP_SECONDS)
- ``<p>:webhook:sent:<id>``     string: a status delivery id that was delivered (SET NX after a 2xx; kept a week)
- ``<p>:webhook:sending:<id>``  string: a status delivery being sent now (a short lock: one sender per id)

Schedules (``voiceagent/schedules/``, kept until deleted):

- ``<p>:schedule:<id>``         JSON: a scheduled call (:class:`schedules.models.Schedule`)
- ``<p>:schedules``             zset: schedule ids by creation time (the listing index)
- ``<p>:schedule:<id>:runs``    hash: due (Unix seconds) -> JSON run (:class:`schedules.models.ScheduleRun`)
- ``<p>:schedule:<id>:claim:<due>``  string (SET NX, expires): the one run job placing that run
- ``<p>:schedules:owner:<number>``  zset: the ids of the schedules a caller made by voice (timers, callbacks,
                                briefings; ``Schedule.owner``, normalised), by creation time

Tools (``voiceagent/dialog/tool_reload.py``):

- ``<p>:tools:generation``      string (INCR): bumped by ``POST /tools/reload``/``voiceagent tools reload``; every
                                process holding a registry reloads it from TOOLS_DIRS when it changes
- ``<p>:tools:reload``          pub/sub channel: the new generation, published with the bump (wakes the watchers)
"""
from __future__ import annotations


class Keys:
    """Key names for one prefix; no module builds a key name itself."""

    def __init__(self, prefix: str = "voiceagent") -> None:
        self.prefix = prefix

    @property
    def everything(self) -> str:
        """SCAN pattern of every key of this prefix (tests and benchmarks clean up with it)."""
        return f"{self.prefix}:*"

    # live state
    def call(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    @property
    def live_calls(self) -> str:
        return f"{self.prefix}:calls"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def inbox(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}:inbox"

    @property
    def worker_pattern(self) -> str:
        """SCAN pattern of heartbeats (inboxes end in ':inbox' and are filtered out by the reader)."""
        return f"{self.prefix}:worker:*"

    def claim(self, kind: str, call_id: str) -> str:
        return f"{self.prefix}:{kind}:{call_id}"

    # records, requests, events
    def record(self, call_id: str) -> str:
        return f"{self.prefix}:record:{call_id}"

    @property
    def records(self) -> str:
        return f"{self.prefix}:records"

    @property
    def open_records(self) -> str:
        return f"{self.prefix}:records:open"

    @property
    def pending_requests(self) -> str:
        return f"{self.prefix}:requests:pending"

    @property
    def request_wake(self) -> str:
        return f"{self.prefix}:requests:wake"

    def queued(self, priority: str) -> str:
        return f"{self.prefix}:requests:queued:{priority}"

    @property
    def call_slots(self) -> str:
        return f"{self.prefix}:slots"

    @property
    def slot_wake(self) -> str:
        return f"{self.prefix}:slots:wake"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    # webhooks
    def webhook_seen(self, fingerprint: str) -> str:
        return f"{self.prefix}:webhook:seen:{fingerprint}"

    def webhook_sent(self, delivery_id: str) -> str:
        return f"{self.prefix}:webhook:sent:{delivery_id}"

    def webhook_sending(self, delivery_id: str) -> str:
        return f"{self.prefix}:webhook:sending:{delivery_id}"

    # schedules
    def schedule(self, schedule_id: str) -> str:
        return f"{self.prefix}:schedule:{schedule_id}"

    @property
    def schedules(self) -> str:
        return f"{self.prefix}:schedules"

    def schedule_runs(self, schedule_id: str) -> str:
        return f"{self.prefix}:schedule:{schedule_id}:runs"

    def schedule_claim(self, schedule_id: str, due: int) -> str:
        return f"{self.prefix}:schedule:{schedule_id}:claim:{due}"

    def schedules_owned(self, owner: str) -> str:
        return f"{self.prefix}:schedules:owner:{owner}"

    # tools
    @property
    def tools_generation(self) -> str:
        return f"{self.prefix}:tools:generation"

    @property
    def tools_reload(self) -> str:
        return f"{self.prefix}:tools:reload"
