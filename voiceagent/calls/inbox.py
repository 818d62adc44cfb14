"""Live calls and their command inboxes, in Redis.

Any process (the API, an RQ job, a CLI) can see which calls are live and act on a call it
does not own: it pushes a validated command onto the owning worker's inbox list, and that
worker hands it to the session.  The keys are named in :mod:`voiceagent.records.keys`.

Call records carry a TTL refreshed by their worker (which rewrites the whole record, so a Redis
restart cannot leave half a record).  Writes that fail while Redis is unreachable are queued and
replayed before the next write that succeeds, so a hangup during an outage still removes its record.
"""
from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple, Union

import gevent
import redis
from pydantic import ValidationError

from ..records.keys import Keys
from ..records.replies import text
from .inbox_commands import (  # noqa: F401 - the command models are part of this module's API
    CallCommand,
    HangupCommand,
    InboxMessage,
    PlayCommand,
    SayCommand,
    TransferCommand,
    describe_error,
    parse_command,
)

log = logging.getLogger(__name__)

CLOSED_RECORD_TTL = 300      # a swept call's closed record stays readable this long (why it ended)
MAX_PENDING_OPS = 10000      # writes kept for replay while Redis is down (oldest dropped first)
MAX_TOMBSTONES = 5000        # ids of calls removed lately: a late refresh must not bring them back

# update a record only if it still exists: a bare HSET after a Redis restart would create half a record
_UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def make_redis(url: str, *, max_connections: int = 50, pool_timeout: float = 5.0,
               socket_timeout: Optional[float] = 5.0) -> redis.Redis:
    """A client on a *blocking* pool: at most ``max_connections``, a caller waits up to
    ``pool_timeout`` for a free one instead of failing with "Too many connections"."""
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=pool_timeout,
                                                 socket_timeout=socket_timeout,
                                                 socket_connect_timeout=socket_timeout)
    return redis.Redis(connection_pool=pool)


def dedicated_connection(client: redis.Redis, block_seconds: float) -> redis.Redis:
    """A one-connection client like ``client``, for a loop that blocks in Redis (BLPOP) for up to
    ``block_seconds``: it must never hold one of the shared pool's connections, which calls wait for."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    sock_timeout = kwargs.get("socket_timeout")
    if sock_timeout is not None and sock_timeout <= block_seconds:
        kwargs["socket_timeout"] = block_seconds + 5  # the server waits block_seconds before it answers
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class,
                                                            max_connections=1, **kwargs))


def _as_command(command: Any) -> CallCommand:
    """A command model as is; anything else (a dict) validated into one."""
    if isinstance(command, (SayCommand, PlayCommand, HangupCommand, TransferCommand)):
        return command
    return parse_command(command)


class CallNotFound(LookupError):
    pass


class WorkerGone(CallNotFound):
    """The call's record names a worker that has no heartbeat: nobody would read the command."""

    def __init__(self, call_id: str, worker_id: str) -> None:
        super().__init__(f"call {call_id}: its worker {worker_id} has no heartbeat (crashed or stopped)")
        self.call_id = call_id
        self.worker_id = worker_id


class CallStore:
    """Redis view of live calls; one per process."""

    def __init__(self, client: redis.Redis, prefix: str = "voiceagent", call_ttl: float = 3600.0,
                 inbox_ttl: float = 60.0) -> None:
        self.r = client
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.call_ttl = int(call_ttl)
        self.inbox_ttl = max(1, int(inbox_ttl))
        # call id -> ("register", record) | ("update", fields) | ("remove", None), oldest first
        self._pending: "OrderedDict[str, Tuple[str, Optional[Dict[str, str]]]]" = OrderedDict()
        self._removed: "OrderedDict[str, None]" = OrderedDict()
        self._inflight: Set[str] = set()  # calls whose write is on the wire: one at a time per call, in order
        self._update_script = client.register_script(_UPDATE_IF_EXISTS)

    # keys: named in records/keys.py
    def call_key(self, call_id: str) -> str:
        return self.keys.call(call_id)

    @property
    def live_key(self) -> str:
        return self.keys.live_calls

    def inbox_key(self, worker_id: str) -> str:
        return self.keys.inbox(worker_id)

    def worker_key(self, worker_id: str) -> str:
        return self.keys.worker(worker_id)

    def claim_key(self, kind: str, call_id: str) -> str:
        return self.keys.claim(kind, call_id)

    # call records: every write goes through the pending queue
    def register(self, record: Dict[str, str]) -> None:
        """Write the whole record (creating or overwriting it) and list the call as live."""
        self._removed.pop(str(record["id"]), None)
        self._write(str(record["id"]), "register", {k: str(v) for k, v in record.items()})

    def refresh(self, record: Dict[str, str]) -> None:
        """``register`` again (heartbeat, state change), unless this store removed the call meanwhile."""
        if str(record["id"]) in self._removed:
            return
        self._write(str(record["id"]), "register", {k: str(v) for k, v in record.items()})

    def update(self, call_id: str, **fields: object) -> None:
        """Set some fields of an existing record (a missing record stays missing)."""
        self._write(call_id, "update", {k: str(v) for k, v in fields.items()})

    def remove(self, call_id: str) -> None:
        self._removed[call_id] = None
        while len(self._removed) > MAX_TOMBSTONES:
            self._removed.popitem(last=False)
        self._write(call_id, "remove", None)

    @property
    def pending_ops(self) -> int:
        return len(self._pending)

    def flush_pending(self) -> None:
        """Write what is queued, oldest first; raises RedisError if Redis is unreachable (it stays queued).

        Writes of different calls go out concurrently; a call whose write is on the wire is skipped
        (its writer applies the newer entry next), so a call's writes never overtake each other.
        """
        while True:
            call_id = next((c for c in self._pending if c not in self._inflight), None)
            if call_id is None:
                return
            entry = self._pending[call_id]
            self._inflight.add(call_id)
            try:
                self._apply(call_id, *entry)
            finally:
                self._inflight.discard(call_id)
            if self._pending.get(call_id) is entry:
                del self._pending[call_id]

    def _write(self, call_id: str, op: str, data: Optional[Dict[str, str]]) -> None:
        prev = self._pending.pop(call_id, None)
        if op == "update" and prev is not None:
            if prev[0] == "remove":  # an update never resurrects a removed call
                self._pending[call_id] = prev
                return
            op, data = prev[0], {**(prev[1] or {}), **(data or {})}
        self._pending[call_id] = (op, data)
        while len(self._pending) > MAX_PENDING_OPS:
            dropped, _ = self._pending.popitem(last=False)
            log.warning("redis: pending-write queue full, dropped the oldest (call %s)", dropped)
        self.flush_pending()

    def _apply(self, call_id: str, op: str, data: Optional[Dict[str, str]]) -> None:
        key = self.call_key(call_id)
        if op == "update":
            args: List[str] = [str(self.call_ttl)]
            for k, v in (data or {}).items():
                args += [k, v]
            self._update_script(keys=[key], args=args)
            return
        pipe = self.r.pipeline()
        if op == "register":
            pipe.delete(key)
            # redis-py's Mapping[FieldT | KeyT, EncodableT] refuses a Dict[str, str] (a Mapping's key is invariant)
            pipe.hset(key, mapping=data or {})  # type: ignore[arg-type]
            pipe.expire(key, self.call_ttl)
            pipe.sadd(self.live_key, call_id)
        else:
            pipe.delete(key)
            pipe.srem(self.live_key, call_id)
        pipe.execute()

    def close(self, call_id: str, outcome: str, reason: str, **fields: object) -> None:
        """End a call someone else owned: keep its record briefly, marked, and drop it from the live set."""
        self.flush_pending()
        key = self.call_key(call_id)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"state": "ended", "outcome": outcome, "reason": reason, "ended": f"{time.time():.3f}",
                                **{k: str(v) for k, v in fields.items()}})
        pipe.expire(key, CLOSED_RECORD_TTL)
        pipe.srem(self.live_key, call_id)
        pipe.execute()

    def get(self, call_id: str) -> Optional[Dict[str, str]]:
        data = self.r.hgetall(self.call_key(call_id))
        return {text(k): text(v) for k, v in data.items()} or None

    def live_calls(self) -> List[Dict[str, str]]:
        out = []
        for raw in sorted(self.r.smembers(self.live_key)):
            cid = text(raw)
            rec = self.get(cid)
            if rec is None:  # expired: its worker died
                self.r.srem(self.live_key, cid)
                continue
            out.append(rec)
        return out

    # workers
    def worker_alive(self, worker_id: str) -> bool:
        return bool(worker_id) and bool(self.r.exists(self.worker_key(worker_id)))

    def claim(self, kind: str, call_id: str, owner: str, ttl: float) -> bool:
        """True for exactly one caller per (kind, call) within ``ttl`` (SET NX)."""
        return bool(self.r.set(self.claim_key(kind, call_id), owner, nx=True, ex=max(1, int(ttl))))

    # commands
    def send_command(self, call_id: str, command: Any) -> CallCommand:
        """Validate and queue a command for a live call, wherever it runs.

        Raises CallNotFound for an unknown call and WorkerGone when the owning worker has no heartbeat.
        """
        cmd = _as_command(command)
        rec = self.get(call_id)
        if not rec or not rec.get("worker") or rec.get("state") == "ended":
            raise CallNotFound(call_id)
        return self.push_command(rec["worker"], call_id, cmd)

    def push_command(self, worker_id: str, call_id: str, command: Any) -> CallCommand:
        """Queue a command on a given worker's inbox (a call it is dialing is not live in Redis yet).

        Raises WorkerGone when that worker has no heartbeat."""
        cmd = _as_command(command)
        if not self.worker_alive(worker_id):
            raise WorkerGone(call_id, worker_id)
        payload = json.dumps({"call_id": call_id, "command": cmd.model_dump(), "sent": time.time()})
        pipe = self.r.pipeline()
        pipe.rpush(self.inbox_key(worker_id), payload)
        pipe.expire(self.inbox_key(worker_id), self.inbox_ttl)
        pipe.execute()
        return cmd

    def heartbeat(self, worker_id: str, info: Mapping[str, object], ttl: float = 15) -> None:
        """Say this worker is alive for ``ttl`` seconds; its inbox lives as long. Replays pending writes."""
        self.flush_pending()
        key = self.worker_key(worker_id)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={**{k: str(v) for k, v in info.items()}, "seen": str(time.time())})
        pipe.expire(key, max(1, int(ttl)))
        pipe.expire(self.inbox_key(worker_id), max(1, int(ttl)))
        pipe.execute()


class InboxListener:
    """Pops this worker's inbox and hands each valid command to ``dispatch(call_id, command)``.

    Runs in one greenlet with its own connection (outside the shared pool: BLPOP holds it, and
    calls must never wait for it).  Invalid entries are logged and dropped; they never stop the loop.
    """

    def __init__(self, store: CallStore, worker_id: str, dispatch: Callable[[str, CallCommand], None],
                 poll_timeout: float = 1.0) -> None:
        self.store = store
        self.worker_id = worker_id
        self.dispatch = dispatch
        self.poll_timeout = poll_timeout
        self._greenlet: Optional[gevent.Greenlet] = None
        self._stopping = False

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)

    def _connection(self) -> redis.Redis:
        return dedicated_connection(self.store.r, self.poll_timeout)

    def _run(self) -> None:
        key = self.store.inbox_key(self.worker_id)
        conn = self._connection()
        backoff = 0.5
        while not self._stopping:
            try:
                item = conn.blpop([key], timeout=self.poll_timeout)
                backoff = 0.5
            except redis.RedisError as exc:
                log.warning("inbox: redis error: %s", exc)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            if item is None:
                continue
            self._handle(item[1])
        conn.connection_pool.disconnect()

    def _handle(self, raw: Union[bytes, str]) -> None:
        call_id = "-"
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and isinstance(data.get("call_id"), str):
                call_id = data["call_id"][:64]
            msg = InboxMessage.model_validate(data)
        except ValidationError as exc:
            log.warning("inbox: dropping invalid command: %s", describe_error(exc), extra={"call_id": call_id})
            return
        except (ValueError, TypeError) as exc:
            log.warning("inbox: dropping unreadable entry (%d bytes): %s", len(raw), exc, extra={"call_id": call_id})
            return
        try:
            self.dispatch(msg.call_id, msg.command)
        except Exception:
            log.exception("inbox: dispatch of %s failed", msg.command.type, extra={"call_id": msg.call_id})
