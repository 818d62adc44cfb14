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
from typing import Any, Callable, Deque, Dict, Optional, Tuple

import gevent
import gevent.event
import redis

from ..calls.call_state import CallState
from ..calls.ports import CallInfo
from ..calls.turns import Turn
from .events import (
    CallAnswered,
    CallBargeIn,
    CallChoice,
    CallDialing,
    CallDtmf,
    CallRefused,
    CallRinging,
    CallTool,
    CallTurn,
    _Event,
)
from .models import CallRecord, ChoiceAnswer, DtmfRecord, Outcome, StateChange, ToolCallRecord, TurnRecord
from .store import RecordGone, RecordStore, end, ended_event

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


def record_state(state: CallState) -> str:
    """The record's word for a call state (the worker's OFFERED is still 'pending' in the live hash)."""
    return "offered" if state is CallState.OFFERED else state.value


class RecordReporter:
    """The worker's :class:`calls.ports.CallObserver` for records: every notification updates the
    call's record and appends its event to the stream (through the ordered :class:`RecordWriter`)."""

    def __init__(self, writer: RecordWriter, worker_id: str) -> None:
        self.writer = writer
        self.worker_id = worker_id

    def _new(self, call: CallInfo, at: float) -> Callable[[], CallRecord]:
        """An inbound call's first record (an outbound call's was written when it was requested)."""
        def make() -> CallRecord:
            return CallRecord(id=call.id, direction=call.direction.value, state="offered", from_=call.caller,
                              to=call.callee, node=call.node, worker=self.worker_id, profile=call.profile,
                              created=at)
        return make

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        if state is CallState.ENDED:
            return  # call_ended (always next) ends the record, with the outcome, in one change
        value = record_state(state)
        worker = self.worker_id

        def change(rec: CallRecord) -> Optional[_Event]:
            if rec.ended:
                return None
            rec.state = value
            rec.history.append(StateChange(state=value, at=at))
            rec.worker = worker
            rec.node = call.node or rec.node
            rec.from_ = rec.from_ or call.caller
            rec.to = rec.to or call.callee
            rec.profile = rec.profile or call.profile
            if state is CallState.DIALING:
                return CallDialing(call_id=rec.id, at=at, worker=worker, to=rec.to, node=rec.node)
            if state is CallState.RINGING:
                return CallRinging(call_id=rec.id, at=at, worker=worker)
            if state in (CallState.ANSWERED, CallState.ACTIVE) and rec.answered_at is None:
                rec.answered_at = at
                return CallAnswered(call_id=rec.id, at=at, worker=worker, direction=rec.direction,
                                    from_=rec.from_, to=rec.to)
            return None
        self.writer.submit(call.id, change, self._new(call, at))

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        at = time.time()
        tr = TurnRecord(index=turn.index, kind=turn.kind, at=at, caller_text=turn.heard,
                        caller_raw=turn.raw or turn.heard, agent_text=list(turn.said),
                        heard=list(turn.heard_by_caller), interrupted=turn.interrupted, ack=turn.ack or "",
                        tools=[ToolCallRecord(name=t.name, arguments=_arguments(t.arguments), result=_plain(t.result),
                                              ok=bool(t.ok)) for t in turn.tools],
                        timings={k: round(float(v), 1) for k, v in turn.timings.items()
                                 if not k.startswith("_") and isinstance(v, (int, float))})
        answer = turn.choice if isinstance(turn.choice, ChoiceAnswer) else None
        worker = self.worker_id

        def change(rec: CallRecord) -> Optional[_Event]:
            rec.turns.append(tr)
            return CallTurn(call_id=rec.id, at=at, worker=worker, index=tr.index, kind=tr.kind,
                            caller_text=tr.caller_text, agent_text=tr.agent_text, interrupted=tr.interrupted,
                            timings=tr.timings)
        self.writer.submit(call.id, change, self._new(call, at))
        for tool in tr.tools:
            def used(rec: CallRecord, t: ToolCallRecord = tool) -> Optional[_Event]:
                return CallTool(call_id=rec.id, at=at, worker=worker, tool=t)
            self.writer.submit(call.id, used)
        if answer is not None:
            def choose(rec: CallRecord, a: ChoiceAnswer = answer) -> Optional[_Event]:
                rec.choice = a
                return CallChoice(call_id=rec.id, at=at, worker=worker, answer=a)
            self.writer.submit(call.id, choose)

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        def change(rec: CallRecord) -> Optional[_Event]:
            rec.dtmf.append(DtmfRecord(digit=digit, at=at))
            return CallDtmf(call_id=rec.id, at=at, worker=self.worker_id, digit=digit)
        self.writer.submit(call.id, change, self._new(call, at))

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        def change(rec: CallRecord) -> Optional[_Event]:
            rec.barge_ins.append(at)
            return CallBargeIn(call_id=rec.id, at=at, worker=self.worker_id)
        self.writer.submit(call.id, change, self._new(call, at))

    def call_recording(self, call: CallInfo, name: str) -> None:
        """FreeSWITCH is recording the call into ``name`` (calls/recording.py)."""
        def change(rec: CallRecord) -> Optional[_Event]:
            rec.recording = name
            return None
        self.writer.submit(call.id, change, self._new(call, time.time()))

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        worker = self.worker_id
        out = Outcome.of(outcome)
        reason = f"refused: {refused}" if refused else ""
        if refused:
            self.writer.submit(call.id, lambda rec: CallRefused(call_id=rec.id, at=at, worker=worker, reason=refused),
                               self._new(call, at))

        def change(rec: CallRecord) -> Optional[_Event]:
            if rec.ended:
                return None
            end(rec, out, at=at, cause=cause, ended_by=ended_by, reason=reason)
            return ended_event(rec, worker)
        self.writer.submit(call.id, change, self._new(call, at))


def _plain(value: Any) -> Any:
    """A tool result as JSON can hold it (anything else as its text)."""
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _arguments(value: Any) -> Dict[str, Any]:
    return dict(value) if isinstance(value, dict) else ({} if value is None else {"value": _plain(value)})
