"""The voice worker's side of the records: a call observer that writes records and events.

Calls never wait on Redis: each notification becomes an operation on one ordered queue that a
single writer greenlet applies (record change + event in one transaction).  While Redis is
down the writer retries with backoff and keeps the queue (bounded; the oldest operations are
dropped with a warning beyond ``max_queued``), so a call's events stay in order and an outage
loses nothing that fits.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple

import gevent
import gevent.event
import redis

from .events import (CallAnswered, CallBargeIn, CallChoice, CallDialing, CallDtmf, CallEnded, CallRefused,
                     CallRinging, CallTool, CallTurn, _Event)
from .models import (CallRecord, ChoiceAnswer, DtmfRecord, Outcome, StateChange, ToolCallRecord, TurnRecord)
from .store import RecordGone, RecordStore, end

log = logging.getLogger(__name__)

Change = Callable[[CallRecord], Optional[_Event]]


class RecordWriter:
    """One ordered queue of record changes, applied by one greenlet."""

    def __init__(self, store: RecordStore, *, max_queued: int = 10000) -> None:
        self.store = store
        self.max_queued = max_queued
        self._ops: Deque[Tuple[str, Change, Optional[Callable[[], CallRecord]]]] = deque()
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._greenlet: Optional[gevent.Greenlet] = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)
            self._greenlet = None

    def submit(self, call_id: str, change: Change, create: Optional[Callable[[], CallRecord]] = None) -> None:
        self._ops.append((call_id, change, create))
        while len(self._ops) > self.max_queued:
            dropped = self._ops.popleft()
            log.warning("records: write queue full, dropped the oldest change", extra={"call_id": dropped[0]})
        self._idle.clear()
        self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (True) or ``timeout`` passes."""
        return bool(self._idle.wait(timeout))

    @property
    def queued(self) -> int:
        return len(self._ops)

    def _run(self) -> None:
        backoff = 0.2
        while True:
            if not self._ops:
                self._idle.set()
                self._wake.clear()
                self._wake.wait()
                continue
            call_id, change, create = self._ops[0]
            try:
                self.store.update(call_id, change, create=create)
                backoff = 0.2
            except RecordGone:
                log.warning("records: no record to update (expired or never made)", extra={"call_id": call_id})
            except redis.RedisError as exc:
                log.warning("records: redis write failed, retrying in %.1fs: %s", backoff, exc,
                            extra={"call_id": call_id})
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:
                log.exception("records: change failed; skipped", extra={"call_id": call_id})
            self._ops.popleft()


def _state_value(state: Any) -> str:
    return str(state.value if hasattr(state, "value") else state)


class RecordReporter:
    """Implements the worker's CallObserver: every notification updates the call's record and
    appends its event to the stream."""

    def __init__(self, writer: RecordWriter, worker_id: str) -> None:
        self.writer = writer
        self.worker_id = worker_id

    def _new(self, call: Any, at: float) -> Callable[[], CallRecord]:
        def make() -> CallRecord:
            return CallRecord(id=call.id, direction=call.direction_value, state="offered", from_=call.caller,
                              to=call.callee, node=call.node, worker=self.worker_id, profile=call.profile,
                              created=at)
        return make

    def call_state(self, call: Any, state: Any, at: float) -> None:
        value = _state_value(state)
        worker = self.worker_id

        def change(rec: CallRecord) -> Optional[_Event]:
            if rec.ended:
                return None
            rec.state = value
            rec.history.append(StateChange(state=value, at=at))
            rec.worker = worker
            rec.node = call.node or rec.node
            if call.caller and not rec.from_:
                rec.from_ = call.caller
            if call.callee and not rec.to:
                rec.to = call.callee
            if call.profile and not rec.profile:
                rec.profile = call.profile
            if value == "dialing":
                return CallDialing(call_id=rec.id, at=at, worker=worker, to=rec.to, node=rec.node)
            if value == "ringing":
                return CallRinging(call_id=rec.id, at=at, worker=worker)
            if value in ("answered", "active") and rec.answered_at is None:
                rec.answered_at = at
                return CallAnswered(call_id=rec.id, at=at, worker=worker, direction=rec.direction,
                                    from_=rec.from_, to=rec.to)
            return None
        self.writer.submit(call.id, change, self._new(call, at))

    def call_turn(self, call: Any, turn: Any) -> None:
        at = time.time()
        tr = TurnRecord(index=turn.index, kind=turn.kind, at=at, caller_text=turn.heard,
                        caller_raw=getattr(turn, "raw", "") or turn.heard, agent_text=list(turn.said),
                        heard=list(turn.heard_by_caller), interrupted=turn.interrupted, ack=turn.ack or "",
                        tools=[_tool(t) for t in turn.tools],
                        timings={k: round(float(v), 1) for k, v in turn.timings.items()
                                 if not k.startswith("_") and isinstance(v, (int, float))})

        def change(rec: CallRecord) -> Optional[_Event]:
            rec.turns.append(tr)
            return CallTurn(call_id=rec.id, at=at, worker=self.worker_id, index=tr.index, kind=tr.kind,
                            caller_text=tr.caller_text, agent_text=tr.agent_text, interrupted=tr.interrupted,
                            timings=tr.timings)
        self.writer.submit(call.id, change, self._new(call, at))
        for tool in tr.tools:
            self.writer.submit(call.id, lambda rec, t=tool: CallTool(call_id=rec.id, at=at, worker=self.worker_id,
                                                                     tool=t))

    def call_dtmf(self, call: Any, digit: str, at: float) -> None:
        def change(rec: CallRecord) -> Optional[_Event]:
            rec.dtmf.append(DtmfRecord(digit=digit, at=at))
            return CallDtmf(call_id=rec.id, at=at, worker=self.worker_id, digit=digit)
        self.writer.submit(call.id, change, self._new(call, at))

    def call_barge_in(self, call: Any, at: float) -> None:
        def change(rec: CallRecord) -> Optional[_Event]:
            rec.barge_ins.append(at)
            return CallBargeIn(call_id=rec.id, at=at, worker=self.worker_id)
        self.writer.submit(call.id, change, self._new(call, at))

    def call_choice(self, call: Any, answer: ChoiceAnswer) -> None:
        at = time.time()

        def change(rec: CallRecord) -> Optional[_Event]:
            rec.choice = answer
            return CallChoice(call_id=rec.id, at=at, worker=self.worker_id, answer=answer)
        self.writer.submit(call.id, change, self._new(call, at))

    def call_ended(self, call: Any, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        def change(rec: CallRecord) -> Optional[_Event]:
            if rec.ended:
                return None
            out = Outcome(outcome) if outcome in Outcome._value2member_map_ else Outcome.FAILED
            end(rec, out, at=at, cause=cause, ended_by=ended_by, reason=f"refused: {refused}" if refused else "")
            return CallEnded(call_id=rec.id, at=at, worker=self.worker_id, outcome=rec.outcome or out,
                             duration=rec.duration or 0.0, hangup_cause=rec.hangup_cause, ended_by=rec.ended_by,
                             reason=rec.reason)
        if refused:
            self.writer.submit(call.id, lambda rec: CallRefused(call_id=rec.id, at=at, worker=self.worker_id,
                                                                reason=refused), self._new(call, at))
        self.writer.submit(call.id, change, self._new(call, at))


def _tool(t: Any) -> ToolCallRecord:
    if isinstance(t, ToolCallRecord):
        return t
    if isinstance(t, dict):
        return ToolCallRecord(name=str(t.get("name", "")), arguments=dict(t.get("arguments") or {}),
                              result=t.get("result"), ok=bool(t.get("ok", True)))
    return ToolCallRecord(name=t.name, arguments=dict(t.arguments or {}), result=t.result, ok=bool(t.ok))
