"""Live calls and their command inboxes, in Redis.

Any process (the API, an RQ job, a CLI) can see which calls are live and act on a call it
does not own: it pushes a validated command onto the owning worker's inbox list, and that
worker hands it to the session.  Keys (all under ``REDIS_PREFIX``):

- ``<p>:call:<uuid>``          hash: id, node, worker, direction, caller, callee, state, started
- ``<p>:calls``                set of live call ids
- ``<p>:worker:<id>:inbox``    list of JSON commands ``{"call_id": ..., "command": {...}}``
- ``<p>:worker:<id>``          hash: heartbeat of a live worker (expires if the worker dies)

Call records carry a TTL refreshed by their worker, so a crashed worker's calls disappear
instead of haunting the registry.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Callable, Dict, List, Literal, Optional, Union

import gevent
import redis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)


class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SayCommand(_Cmd):
    type: Literal["say"]
    text: str = Field(min_length=1, max_length=2000)


class PlayCommand(_Cmd):
    type: Literal["play"]
    file: str = Field(min_length=1, max_length=1024)


class HangupCommand(_Cmd):
    type: Literal["hangup"]
    cause: str = Field(default="NORMAL_CLEARING", pattern=r"^[A-Z_]{3,40}$")


class TransferCommand(_Cmd):
    type: Literal["transfer"]
    destination: str = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")
    dialplan: str = Field(default="XML", pattern=r"^[A-Za-z0-9_]+$")
    context: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")


CallCommand = Annotated[Union[SayCommand, PlayCommand, HangupCommand, TransferCommand], Field(discriminator="type")]
_command_adapter: TypeAdapter = TypeAdapter(CallCommand)


def parse_command(data) -> CallCommand:
    """Validate a command; raises pydantic.ValidationError naming the bad field."""
    return _command_adapter.validate_python(data)


class CallNotFound(LookupError):
    pass


class CallStore:
    """Redis view of live calls; one per process."""

    def __init__(self, client: redis.Redis, prefix: str = "voiceagent", call_ttl: float = 3600.0) -> None:
        self.r = client
        self.prefix = prefix
        self.call_ttl = int(call_ttl)

    # keys
    def call_key(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    @property
    def live_key(self) -> str:
        return f"{self.prefix}:calls"

    def inbox_key(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}:inbox"

    def worker_key(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    # call records
    def register(self, record: Dict[str, str]) -> None:
        key = self.call_key(record["id"])
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={k: str(v) for k, v in record.items()})
        pipe.expire(key, self.call_ttl)
        pipe.sadd(self.live_key, record["id"])
        pipe.execute()

    def update(self, call_id: str, **fields) -> None:
        key = self.call_key(call_id)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={k: str(v) for k, v in fields.items()})
        pipe.expire(key, self.call_ttl)
        pipe.execute()

    def remove(self, call_id: str) -> None:
        pipe = self.r.pipeline()
        pipe.delete(self.call_key(call_id))
        pipe.srem(self.live_key, call_id)
        pipe.execute()

    def get(self, call_id: str) -> Optional[Dict[str, str]]:
        data = self.r.hgetall(self.call_key(call_id))
        return {k.decode(): v.decode() for k, v in data.items()} or None

    def live_calls(self) -> List[Dict[str, str]]:
        out = []
        for raw in sorted(self.r.smembers(self.live_key)):
            cid = raw.decode()
            rec = self.get(cid)
            if rec is None:  # expired: its worker died
                self.r.srem(self.live_key, cid)
                continue
            out.append(rec)
        return out

    # commands
    def send_command(self, call_id: str, command) -> CallCommand:
        """Validate and queue a command for a live call, wherever it runs."""
        cmd = command if isinstance(command, BaseModel) else parse_command(command)
        rec = self.get(call_id)
        if not rec or not rec.get("worker"):
            raise CallNotFound(call_id)
        payload = json.dumps({"call_id": call_id, "command": cmd.model_dump(), "sent": time.time()})
        self.r.rpush(self.inbox_key(rec["worker"]), payload)
        return cmd

    def heartbeat(self, worker_id: str, info: Dict[str, str], ttl: int = 15) -> None:
        key = self.worker_key(worker_id)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={**{k: str(v) for k, v in info.items()}, "seen": str(time.time())})
        pipe.expire(key, ttl)
        pipe.execute()


class InboxListener:
    """Pops this worker's inbox and hands each valid command to ``dispatch(call_id, command)``.

    Runs in one greenlet with its own connection (BLPOP holds it).  Invalid entries are logged
    and dropped; they never stop the loop.
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

    def _run(self) -> None:
        key = self.store.inbox_key(self.worker_id)
        conn = redis.Redis(connection_pool=self.store.r.connection_pool)
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

    def _handle(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
            call_id = str(msg["call_id"])
            cmd = parse_command(msg["command"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            log.warning("inbox: dropping invalid command %r: %s", raw[:200], exc)
            return
        try:
            self.dispatch(call_id, cmd)
        except Exception:
            log.exception("inbox: dispatch of %s failed", cmd.type, extra={"call_id": call_id})
