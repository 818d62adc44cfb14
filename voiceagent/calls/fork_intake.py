"""Forks arriving at a worker: whose call, does FreeSWITCH have it, does the worker take it.

Anyone who reaches the fork port can open a fork with a made-up uuid, so a fork proves
nothing until FreeSWITCH confirms its channel (an ESL event, or one ``uuid_exists``).  Until
then it is a *pending* session: not counted against MAX_CALLS, not in Redis, dropped after the
grace window without a ``uuid_kill`` when FreeSWITCH said the channel does not exist.  Only a
confirmed call is admitted (or refused with USER_BUSY), and only then does caller/callee come
in — from FreeSWITCH's own channel data, never from the metadata JSON the dialplan built.

A second fork for a call that has a live one is refused: only the worker itself (restart,
outbound start) may ask for a new fork.  Calls whose fork never comes (``connect_failed``, or a
claimed call whose fork did not arrive in time) are hung up instead of staying parked.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Dict, Optional
from urllib.parse import urlsplit

import gevent
import gevent.event

from ..config import Settings, is_loopback_host
from ..observability import metrics
from ..observability.log_throttle import LogThrottle
from ..observability.logs import call_id_var
from ..telephony.call_ids import is_call_uuid
from ..telephony.events import ForkConnectFailed
from ..telephony.fork_messages import Metadata
from .call_state import CallState, Direction
from .node_link import link_of
from .session import CallSession

if TYPE_CHECKING:
    from .node_link import NodeLink
    from .worker import VoiceWorker

log = logging.getLogger(__name__)

def advertised_url_warning(settings: Settings, url: str) -> Optional[str]:
    """Why FreeSWITCH may be unable to reach ``url`` (a loopback URL but a node on another host)."""
    host = urlsplit(url).hostname or ""
    if not is_loopback_host(host):
        return None
    remote = [f"{name}={h}" for name, h, _ in settings.esl_endpoints() if not is_loopback_host(h)]
    if not remote:
        return None
    return (f"the fork URL this worker gives FreeSWITCH is {url}, but node(s) {', '.join(remote)} are not on this "
            "machine and cannot reach it: set FORK_PUBLIC_URL (and FORK_HOST with fork auth)")


class ForkIntake:
    def __init__(self, worker: "VoiceWorker") -> None:
        self.w = worker
        self.throttle = LogThrottle(log, worker.settings.fork_refusal_log_seconds)
        self._arrived: Dict[str, gevent.event.Event] = {}  # claimed calls waiting for their fork

    # ------------------------------------------------------------------ at the upgrade
    def precheck(self, call_id: str):
        if not is_call_uuid(call_id):
            return (404, "bad call id")
        sess = self.w.sessions.get(call_id)
        if sess is not None and not sess.may_attach_fork():
            self.throttle.log("takeover", logging.WARNING,
                              "second fork for a call with a live fork refused at the upgrade (409)",
                              extra={"call_id": call_id})
            return (409, "call already has a fork")
        return None

    # ------------------------------------------------------------------ one fork WebSocket
    def handle(self, conn) -> None:
        """Runs for the lifetime of one fork WebSocket."""
        metrics.FORK_CONNECTIONS.inc()
        with metrics.FORK_OPEN.track_inprogress():
            self._handle(conn)

    def _handle(self, conn) -> None:
        call_id = conn.call_uuid
        call_id_var.set(call_id)
        messages = conn.messages()
        # mod_audio_fork sends the metadata frame first; it names the node
        first = next(messages, None)
        if first is None:
            return
        meta: Dict[str, Any] = dict(conn.metadata or {})
        sess = self.w.sessions.get(call_id)
        node: Optional[NodeLink] = None
        if sess is None:
            node = self._wait_node(call_id, meta)
            if node is None:
                self.throttle.log("unknown", logging.WARNING, "fork for a call no node knows: refused")
                metrics.CALLS_REFUSED.labels(reason="unknown").inc()
                conn.close(1008, "unknown call")
                return
            sess = self.w.sessions.get(call_id)  # another fork may have come while we waited
        if sess is not None:
            if not self._attach_again(sess, conn):
                return
        else:
            assert node is not None  # no session yet: the node was found above (or we returned)
            outbound = str(meta.get("direction", "")).lower() == "outbound"
            direction = Direction.OUTBOUND if outbound else Direction.INBOUND
            sess = self.w._new_session(node, call_id, direction, metadata=meta, admitted=False)
            sess.attach_fork(conn)
            sess.start()
            self.w.spawn(self.confirm, sess, call_id=call_id)
            arrived = self._arrived.pop(call_id, None)
            if arrived is not None:
                arrived.set()
        if not isinstance(first, Metadata):
            sess.on_fork_message(first)
        for msg in messages:
            sess.on_fork_message(msg)
        sess.report_audio()
        sess.on_fork_closed(conn)

    def _attach_again(self, sess: CallSession, conn) -> bool:
        """A fork for a call that already has a session: the worker's own restart, or a takeover attempt."""
        if bool(self.w.settings.fork_auth_user) and not conn.authenticated:
            ok = False
        else:
            ok = sess.may_attach_fork() and sess.attach_fork(conn)
        if not ok:
            self.throttle.log("takeover", logging.WARNING,
                              "second fork for a call with a live fork, from %s: refused", conn.remote)
            metrics.CALLS_REFUSED.labels(reason="second_fork").inc()
            conn.close(1008, "call already has a fork")
        return ok

    def _find_node(self, call_id: str, meta: Dict[str, Any]) -> Optional["NodeLink"]:
        nodes = self.w.nodes
        name = str(meta.get("node") or "")
        if name in nodes:
            return nodes[name]
        for node in nodes.values():
            if node.knows(call_id):
                return node
        if len(nodes) == 1:
            return next(iter(nodes.values()))
        return None

    def _wait_node(self, call_id: str, meta: Dict[str, Any]) -> Optional["NodeLink"]:
        # more than one node and none knows the call yet: wait for the ESL side
        node = self._find_node(call_id, meta)
        deadline = time.monotonic() + self.w.settings.fork_grace_seconds
        while node is None and time.monotonic() < deadline:
            gevent.sleep(0.05)
            node = self._find_node(call_id, meta)
        return node

    # ------------------------------------------------------------------ confirmation and admission
    def confirm(self, sess: CallSession) -> None:
        """Wait for the node's events about the call, and ask FreeSWITCH once early in the grace
        window (the events may have been lost in an ESL outage).  A "no" from uuid_exists is final
        for the question: only the node's events can still confirm the call."""
        node = link_of(sess.node)
        grace = self.w.settings.fork_grace_seconds
        deadline = time.monotonic() + grace
        if node.wait_known(sess.id, min(0.3, grace / 3)):
            return self.admit(sess)
        while not sess.confirmed.is_set() and not sess.ended.is_set() and time.monotonic() < deadline:
            if not sess.channel_absent:
                try:
                    if node.fs.uuid_exists(sess.id):
                        return self.admit(sess)
                    sess.channel_absent = True
                except Exception as exc:
                    self.throttle.log("uuid_exists", logging.WARNING, "uuid_exists failed: %s", exc)
            if node.wait_known(sess.id, min(0.5, max(0.0, deadline - time.monotonic()))):
                sess.channel_absent = False
                return self.admit(sess)

    def admit(self, sess: CallSession) -> None:
        """FreeSWITCH has the channel: take the call (count it, publish it) or refuse it with USER_BUSY."""
        if sess.state != CallState.PENDING or sess.ended.is_set() or sess.confirmed.is_set():
            return
        self._fill_caller(sess)
        sess.observe()  # FreeSWITCH has the channel: a real call, taken or not
        reason = self.w._refusal_reason()
        if reason:
            self.w._refuse(link_of(sess.node), sess.id, reason)
            sess.refuse(reason)
            return
        sess._to(CallState.CONFIRMED)
        self.w.admit_session(sess)
        if sess.fork is not None:
            sess.fork.mark_established()
        sess.confirmed.set()

    def _fill_caller(self, sess: CallSession) -> None:
        """Caller, callee and direction from FreeSWITCH (its events, else uuid_getvar)."""
        info = link_of(sess.node).channels.get(sess.id) or {}
        caller, callee = info.get("caller", ""), info.get("callee", "")
        if not info:
            try:
                caller, callee = sess.node.fs.caller_ids(sess.id)
            except Exception as exc:
                log.info("caller id not available: %s", exc)
        sess.caller, sess.callee = caller, callee
        if info.get("direction") in ("inbound", "outbound"):
            sess.direction = Direction(info["direction"])

    # ------------------------------------------------------------------ forks that never come
    def watch_claimed(self, node: "NodeLink", call_id: str) -> None:
        """START_FORK_ON_PARK: the worker claimed this call and started its fork; hang up if it never arrives."""
        if call_id in self.w.sessions:
            return
        arrived = self._arrived.setdefault(call_id, gevent.event.Event())
        came = arrived.wait(self.w.settings.fork_arrival_timeout)
        self._arrived.pop(call_id, None)
        if came or call_id in self.w.sessions or not node.knows(call_id):
            return
        self._hang_up_forkless(node, call_id, f"no fork within {self.w.settings.fork_arrival_timeout:.0f}s")

    def orphan_fork_failed(self, node: "NodeLink", ev: ForkConnectFailed) -> None:
        """``connect_failed`` for a call no session of ours has: hang it up if it is ours and nobody has it."""
        u = ev.uuid
        w = self.w
        if u in w.sessions:
            return
        try:
            claimed = (w.settings.start_fork_on_park
                       and w.redis.get(w.store.claim_key("claim", u)) == w.worker_id.encode())
            if not claimed:
                # the shipped dialplan keeps uuid_audio_fork's reply in voiceagent_fork: a fork we do not
                # know of on a channel without it belongs to something else on this FreeSWITCH
                if node.fs.getvar(u, "voiceagent_fork") is None:
                    return
                if w.store.get(u) is not None:  # another worker has the call
                    return
                if not w.store.claim("forkfailed", u, w.worker_id, ttl=300):
                    return  # another worker hangs it up
        except Exception as exc:  # Redis or ESL down, or the channel already gone
            log.info("connect_failed on a parked call: cannot tell whose it is (%s)", exc, extra={"call_id": u})
            return
        self._hang_up_forkless(node, u, f"fork connect failed: {ev.reason[:80]}")

    def _hang_up_forkless(self, node: "NodeLink", call_id: str, why: str) -> None:
        self.throttle.log("forkless", logging.WARNING,
                          "call without a fork (%s): hanging up instead of leaving it parked", why,
                          extra={"call_id": call_id})
        metrics.CALLS_REFUSED.labels(reason="no_fork").inc()
        node.fs_async("kill", call_id, "NORMAL_TEMPORARY_FAILURE")
