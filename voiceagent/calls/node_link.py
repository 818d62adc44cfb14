"""One FreeSWITCH node as a worker sees it: its ESL connection, typed commands, the channels it has
told us about, and the per-call lanes its events are delivered in (already typed: telephony.events)."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Dict, Optional, cast

import gevent.event

from ..observability.metrics import ESL_CONNECTED, ESL_RECONNECTS
from ..telephony import events as fs_events
from ..telephony.commands import FreeSwitch, channel_gone
from ..telephony.eslwire import Event
from .ports import NodePort

if TYPE_CHECKING:  # pragma: no cover
    from .worker import VoiceWorker

log = logging.getLogger(__name__)


def link_of(node: NodePort) -> NodeLink:
    """A session's node as the worker knows it: every session the worker makes is on one of its
    NodeLinks (``VoiceWorker._new_session``); the session itself only needs the :class:`NodePort`."""
    return cast(NodeLink, node)


class NodeLink:
    """One FreeSWITCH node: its ESL connection, typed commands, and the channels it has told us about.

    Its ESL dispatcher only updates the channel table and hands the events of this worker's
    calls to per-call lanes (:mod:`lanes`), so one call's slow handling never holds the others.
    """

    def __init__(self, worker: "VoiceWorker", name: str, host: str, port: int) -> None:
        from ..telephony.esl import EslConnection
        from .lanes import CallLanes

        s = worker.settings
        self.worker = worker
        self.name = name
        self.esl = EslConnection.from_settings(s, name, host, port, events=fs_events.worker_subscription())
        self.fs = FreeSwitch(self.esl)
        self.lanes = CallLanes(worker.spawn, self._deliver, self._on_stuck, limit=s.esl_event_queue_max)
        self.channels: Dict[str, Dict[str, str]] = {}
        self._was_connected = False  # a connect after the first is a reconnect (metrics)
        self._waiters: Dict[str, gevent.event.Event] = {}  # forks waiting for their channel to appear
        self.synced = gevent.event.Event()  # set after each re-sync with `show channels`
        # the link's state for the heartbeat (/health): down until the first connect, reconnecting
        # after a loss; ``since`` is wall-clock seconds
        self.state = "down"
        self.since = time.time()

    def start(self) -> None:
        self.esl.on_event(self._on_event)
        self.esl.on_connected(self._on_connected)
        self.esl.on_disconnected(self._on_disconnected)
        self._set_state("down")
        self.esl.start(wait=False)

    def stop(self) -> None:
        self.esl.stop()
        self._set_state("down")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.time()

    def status(self) -> Dict[str, object]:
        """``{"state": connected | reconnecting | down, "since": t}``.  The handlers' view is checked
        against the connection itself: their notices queue behind the node's events."""
        if self.esl.connected:
            self._set_state("connected")
        elif self.state == "connected":
            self._set_state("reconnecting")
        return {"state": self.state, "since": round(self.since, 3)}

    def _on_disconnected(self, _conn=None) -> None:
        self._set_state("reconnecting")
        ESL_CONNECTED.labels(node=self.name).set(0)

    def fs_async(self, method: str, *args, on_error: Optional[Callable[[Exception], None]] = None, **kwargs) -> None:
        """Run a command without blocking the caller (the ESL dispatch greenlet must never wait on a reply)."""
        def run():
            try:
                getattr(self.fs, method)(*args, **kwargs)
            except Exception as exc:
                gone = channel_gone(exc)
                # the channel hung up first (a race with the caller): nothing to do, not a fault
                log.log(logging.INFO if gone else logging.WARNING, "%s %s failed: %s", method, args[:1], exc)
                if on_error is not None:
                    on_error(exc)

        self.worker.spawn(run)

    def knows(self, call_id: str) -> bool:
        return call_id in self.channels

    def _on_connected(self, _conn=None) -> None:
        """After every (re)connect: re-sync which calls are still alive."""
        ESL_CONNECTED.labels(node=self.name).set(1)
        if self._was_connected:
            ESL_RECONNECTS.labels(node=self.name).inc()
        self._was_connected = True
        self._set_state("connected")
        self.synced.clear()
        self.worker.spawn(self._resync, call_id="")

    def _resync(self) -> None:
        try:
            rows = self.fs.show_channels()
        except Exception as exc:
            log.warning("node %s: show channels failed: %s", self.name, exc)
            return
        alive = {}
        for row in rows:
            u = row.get("uuid")
            if u:
                alive[u] = {"direction": row.get("direction", ""), "caller": row.get("cid_num", ""),
                            "callee": row.get("dest", "")}
        self.channels = alive
        for u in alive:
            self._wake(u)
        for sess in list(self.worker.sessions.values()):
            if sess.node is self and sess.id not in alive and sess.confirmed.is_set():
                log.warning("call vanished while ESL was down: cleaning up", extra={"call_id": sess.id})
                sess.kill()
            elif sess.node is self:
                sess.reconcile_playbacks()  # their PLAYBACK_STOPs may have been lost in the outage
        log.info("node %s: re-synced, %d live channels", self.name, len(alive))
        self.synced.set()

    def _on_event(self, raw: Event) -> None:
        ev = fs_events.parse(raw)  # the one place a node's wire events become typed ones
        u = ev.uuid
        if u:
            if isinstance(ev, (fs_events.ChannelDestroy, fs_events.ChannelHangupComplete)):
                self.channels.pop(u, None)
            elif not isinstance(ev, (fs_events.ChannelHangup, fs_events.BackgroundJob)) and u not in self.channels:
                self.channels[u] = {"direction": ev.direction, "caller": ev.caller, "callee": ev.destination}
                self._wake(u)
        if u and u in self.worker.sessions:
            self.lanes.put(u, ev)  # this worker's call: delivered in its own lane
        else:
            self.worker.on_node_event(self, ev)

    def _deliver(self, ev: fs_events.EslEvent) -> None:
        self.worker.on_node_event(self, ev)

    def _on_stuck(self, call_id: str, waiting: int) -> None:
        sess = self.worker.sessions.get(call_id)
        if sess is not None and sess.node is self:
            sess.hangup("NORMAL_TEMPORARY_FAILURE")
            sess.kill()  # its hangup event would wait behind the stuck ones

    def _wake(self, call_id: str) -> None:
        w = self._waiters.pop(call_id, None)
        if w is not None:
            w.set()

    def wait_known(self, call_id: str, timeout: float) -> bool:
        if call_id in self.channels:
            return True
        waiter = self._waiters.setdefault(call_id, gevent.event.Event())
        waiter.wait(timeout)
        self._waiters.pop(call_id, None)
        return call_id in self.channels
