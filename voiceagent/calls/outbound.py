"""Outbound calls: the session exists before the originate is sent, so the call's own ESL events
(progress, answer, hangup) reach it; the originate's reply then confirms or ends it.

REQUESTED → DIALING (originate sent) → RINGING (CHANNEL_PROGRESS) → ANSWERED → ACTIVE (the fork is
started and the dialog runs).  A failed originate ends the session at once as FAILED with the
outcome the cause maps to (busy, no_answer, rejected, invalid_number, failed): it never counts as a
live call and its observers hear ``call_ended``.
"""
from __future__ import annotations

import logging
import uuid as uuidlib
from typing import TYPE_CHECKING, Any, Dict, Optional

from ..observability import metrics
from ..telephony.call_ids import call_uuid
from ..telephony.outcomes import ANSWERED, FAILED
from .call_state import CallState, Direction

if TYPE_CHECKING:  # pragma: no cover
    from .session import CallSession
    from .worker import VoiceWorker

log = logging.getLogger(__name__)


class Dialer:
    """Places a worker's outbound calls."""

    def __init__(self, worker: "VoiceWorker") -> None:
        self.w = worker

    def originate(self, destination: str, *, node: Optional[str] = None, gateway: Optional[str] = None,
                  caller_id_number: Optional[str] = None, caller_id_name: Optional[str] = None,
                  timeout: Optional[int] = None, profile: Optional[str] = None, call_id: Optional[str] = None,
                  request: Optional[object] = None, request_id: Optional[str] = None,
                  max_seconds: Optional[float] = None, trace_parent: str = "") -> Dict[str, Any]:
        """Place an outbound call; blocks the calling greenlet until answered or failed.

        Returns ``{"uuid", "outcome", "cause"}``; ``call_id`` is the uuid to give the channel (ours by
        default); ``request`` rides along on the session for the dialog (``session.request``);
        ``max_seconds`` caps this call's length (default MAX_CALL_SECONDS); ``trace_parent`` is the trace
        context of what placed it (its call span's parent)."""
        w, s = self.w, self.w.settings
        link = w.nodes[node] if node else next(iter(w.nodes.values()))
        if w.draining or w._capacity_left() <= 0:
            return {"uuid": None, "outcome": FAILED, "cause": "WORKER_BUSY"}
        call_id = call_uuid(call_id) if call_id else str(uuidlib.uuid4())
        if call_id in w.sessions:
            raise ValueError(f"call {call_id} already exists on this worker")
        caller = caller_id_number or s.caller_id_number or None
        sess = w._new_session(link, call_id, Direction.OUTBOUND, admitted=False, caller=caller or "",
                              callee=destination, profile=profile, state=CallState.REQUESTED, request=request,
                              request_id=request_id)
        if max_seconds:
            sess.max_seconds = min(max_seconds, s.max_call_seconds)
        sess.trace_parent = trace_parent
        sess.observe()  # our own call: nobody made it up
        sess._to(CallState.DIALING)
        try:
            result = link.fs.originate(destination, gateway=gateway or s.originate_gateway or None,
                                       caller_id_number=caller, caller_id_name=caller_id_name or s.caller_id_name,
                                       timeout=timeout or s.originate_timeout,
                                       variables={"playback_terminators": "none"}, call_uuid=call_id)
            outcome, cause = str(result.outcome), result.cause
        except Exception as exc:  # transport failure (ESL down, job lost): the attempt failed
            log.warning("originate to %s failed: %s", destination, exc, extra={"call_id": call_id})
            outcome, cause = FAILED, "NO_REPLY"
        metrics.ORIGINATES.labels(outcome=outcome).inc()
        if outcome != ANSWERED:
            log.info("originate to %s: %s (%s)", destination, outcome, cause, extra={"call_id": call_id})
            sess.finish_unstarted(cause, outcome)
            return {"uuid": call_id, "outcome": outcome, "cause": cause}
        self._answered(sess)
        return {"uuid": call_id, "outcome": ANSWERED, "cause": cause}

    def _answered(self, sess: "CallSession") -> None:
        w, s = self.w, self.w.settings
        if sess.state in (CallState.DIALING, CallState.RINGING):
            sess._to(CallState.ANSWERED)  # the reply came before the CHANNEL_ANSWER event
        w.admit_session(sess)
        sess.confirmed.set()  # we created the channel ourselves
        sess.expect_fork(s.fork_arrival_timeout)
        sess.start()
        try:
            sess.node.fs.audio_fork_start(sess.id, w.fork_url_for(sess.id), mix="mono", rate=s.fork_sample_rate,
                                          bugname="audio_fork", metadata=w.fork_metadata(sess))
        except Exception as exc:
            log.warning("fork start failed on outbound call: %s", exc, extra={"call_id": sess.id})
            sess.hangup("NORMAL_TEMPORARY_FAILURE")
