"""The voice worker: ESL connections to every FreeSWITCH node it serves, the fork server, and its calls.

Ownership: every worker's ESL connection sees every call on a node; a worker acts only on the
calls whose fork reached it (inbound), that it originated (outbound), or that it won the Redis
claim for (``START_FORK_ON_PARK`` mode).  Events for other calls only update the node's table
of known channels, which is how a fork that arrives first gets confirmed.
"""
from __future__ import annotations

import json
import logging
import os
import signal
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import gevent
import gevent.pool
import redis

from ..config import Settings
from ..observability import metrics
from ..observability.call_telemetry import call_telemetry
from ..records.keys import Keys
from ..records.reporter import RecordReporter, RecordWriter
from ..records.store import RecordStore
from ..records.stream import EventStream
from ..telephony import events as fs_events
from .call_state import CallState, Direction
from .flags import Flag
from .fork_intake import ForkIntake, advertised_url_warning
from .greeting import GreetingDialog, default_greeting_path  # noqa: F401 - public here since the start
from .inbox import CallStore, InboxListener, make_redis
from .inbox_commands import resolve_media_path
from .loop_lag import LoopLagMonitor
from .node_link import NodeLink, link_of
from .observers import Observers
from .outbound import Dialer
from .ports import CallObserver, Dialog
from .recording import CallRecorder
from .recovery import Recovery
from .request_taker import RequestTaker
from .session import CallSession

if TYPE_CHECKING:
    from ..telephony.fork_server import ForkServer

log = logging.getLogger(__name__)


class VoiceWorker:
    """Everything one voice process runs. Use ``start()`` / ``stop()``; ``serve_forever()`` for the CLI."""

    def __init__(self, settings: Settings, *, dialog_factory: Optional[Callable[[CallSession], Dialog]] = None,
                 redis_client: Optional[redis.Redis] = None) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        self.dialog_factory = dialog_factory or (
            lambda call: GreetingDialog(settings.greeting_file or default_greeting_path()))
        self.redis = redis_client or make_redis(settings.redis_url, max_connections=settings.redis_max_connections,
                                                pool_timeout=settings.redis_pool_timeout,
                                                socket_timeout=settings.redis_socket_timeout)
        self.store = CallStore(self.redis, settings.redis_prefix, call_ttl=settings.max_call_seconds + 120,
                               inbox_ttl=settings.worker_heartbeat_ttl)
        self.records, self.record_writer = _records(self.redis, settings)
        reporter = RecordReporter(self.record_writer, self.worker_id)
        # records first; then metrics, the call's trace and its log lines (observability/call_telemetry.py)
        self.observers: List[CallObserver] = [reporter, *call_telemetry()]
        if settings.record_calls:
            self.observers.append(CallRecorder(self, reporter))
        self.notify: CallObserver = Observers(self.observers)  # told about every call (calls.ports.CallObserver)
        self.requests = RequestTaker(self, self.records)
        self.recovery = Recovery(self)
        self._record_extra: Dict[str, Dict[str, str]] = {}  # fields store_update added to a call's record
        self.nodes: Dict[str, NodeLink] = {}
        self.sessions: Dict[str, CallSession] = {}
        self.draining = False
        self.fork_server: Optional[ForkServer] = None
        self.metrics_server: Optional[Any] = None  # /metrics on METRICS_PORT (observability/metrics.py)
        self.inbox = InboxListener(self.store, self.worker_id, self._dispatch_command)
        self._heartbeat: Optional[gevent.Greenlet] = None
        self.admission_check: Optional[Callable[[], bool]] = None  # True = inference too backed up for a new call
        self.loop_lag = LoopLagMonitor()
        self.intake = ForkIntake(self)
        self.dialer = Dialer(self)
        self.greenlets = gevent.pool.Group()  # every greenlet working for a call: none may outlive it
        self.stopped = Flag()
        self.idle = Flag()
        self.idle.set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        from ..telephony.fork_guard import effective_max_connections, raise_nofile_limit
        from ..telephony.fork_server import ForkServer

        s = self.settings
        os.makedirs(s.playback_dir, exist_ok=True)
        nofile = raise_nofile_limit()
        auth = (s.fork_auth_user, s.fork_auth_password.get_secret_value()) if s.fork_auth_user else None
        self.fork_server = ForkServer(s.fork_host, s.fork_port, self.intake.handle, auth=auth,
                                      max_frame_bytes=s.fork_max_frame_bytes,
                                      max_metadata_bytes=s.fork_max_metadata_bytes, precheck=self.intake.precheck,
                                      default_sample_rate=s.fork_sample_rate,
                                      max_connections=effective_max_connections(s.fork_max_connections, nofile),
                                      max_pending_per_address=s.fork_max_pending_per_address,
                                      handshake_timeout=s.fork_handshake_timeout,
                                      first_frame_timeout=s.fork_metadata_timeout,
                                      log_interval=s.fork_refusal_log_seconds, reuse_port=s.fork_reuse_port)
        self.fork_server.start()
        self.loop_lag.start()
        unreachable = advertised_url_warning(s, self.fork_url_base)
        if unreachable:
            log.warning("%s", unreachable)
        for name, host, port in s.esl_endpoints():
            node = NodeLink(self, name, host, port)
            self.nodes[name] = node
            node.start()
        self.inbox.start()
        self.record_writer.start()
        self._heartbeat = gevent.spawn(self._heartbeat_loop)
        self.recovery.start()
        if s.take_requests:
            self.requests.start()  # after the first heartbeat: a request is only taken by a worker others see
        if s.metrics_port:
            self.metrics_server = metrics.serve(s.metrics_port, s.metrics_host)
        log.info("voice worker %s ready: fork server %s, nodes %s", self.worker_id, self.fork_url_base,
                 ",".join(self.nodes))

    def stop(self) -> None:
        self.draining = True
        for sess in list(self.sessions.values()):
            if sess.admitted:
                sess.hangup()
            elif sess.state == CallState.PENDING:  # not ours yet: do not leave a real channel parked
                if link_of(sess.node).knows(sess.id):
                    sess.node.fs_async("kill", sess.id, "USER_BUSY")
                sess.refuse("stopping")
        self.requests.stop()
        gevent.wait([s.closed for s in list(self.sessions.values())], timeout=5)
        self.record_writer.stop(timeout=5)  # what the calls reported reaches Redis before we go
        self.loop_lag.stop()
        self.inbox.stop()
        self.recovery.stop()
        if self._heartbeat is not None:
            self._heartbeat.kill()
        if self.fork_server is not None:
            self.fork_server.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        for node in self.nodes.values():
            node.stop()
        try:
            self.redis.delete(self.store.worker_key(self.worker_id), self.store.inbox_key(self.worker_id))
        except redis.RedisError:
            pass
        self.stopped.set()

    def drain(self, timeout: Optional[float] = None) -> None:
        """Stop taking calls, let live ones finish (up to ``timeout``), hang up the rest, stop."""
        timeout = self.settings.drain_seconds if timeout is None else timeout
        self.draining = True
        log.info("draining: %d live calls, waiting up to %.0fs", len(self.sessions), timeout)
        self._beat()
        self.idle.wait(timeout)
        self.stop()

    def install_signal_handlers(self) -> None:
        gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.drain))
        gevent.signal_handler(signal.SIGINT, lambda: gevent.spawn(self.drain, 0))

    @property
    def fork_url_base(self) -> str:
        s = self.settings
        if s.fork_public_url:
            return s.fork_public_url.rstrip("/")
        host = "127.0.0.1" if s.fork_host in ("0.0.0.0", "", "::") else s.fork_host
        if self.fork_server is None:
            raise RuntimeError("the worker has not started: no fork server yet")
        return f"ws://{host}:{self.fork_server.port}"

    def fork_url_for(self, call_id: str) -> str:
        return f"{self.fork_url_base}/call/{call_id}"

    def fork_metadata(self, sess: CallSession) -> Dict[str, Any]:
        # only values we control: caller ids come from FreeSWITCH's channel data, never from this JSON
        return {"uuid": sess.id, "node": sess.node.name, "direction": sess.direction.value}

    def health(self) -> Dict[str, Any]:
        """What an operator (or the heartbeat) needs to see: can this worker take calls at all?"""
        fork = self.fork_server.health() if self.fork_server is not None else {"serving": False}
        nodes = {name: bool(n.esl.connected) for name, n in self.nodes.items()}
        return {"ok": bool(fork.get("serving")) and not self.stopped.is_set(), "fork_server": fork, "nodes": nodes,
                "calls": self.live_calls(), "draining": self.draining, "loop_lag_ms": round(self.loop_lag.lag_ms, 1)}

    # ------------------------------------------------------------------ calls
    def make_dialog(self, sess: CallSession) -> Dialog:
        return self.dialog_factory(sess)

    def spawn(self, fn, *args, call_id: Optional[str] = None, **kwargs) -> gevent.Greenlet:
        """Spawn a tracked greenlet that logs with the call id (of the caller, unless given)."""
        from ..observability.logs import call_id_var

        cid = call_id_var.get() if call_id is None else call_id

        def run():
            call_id_var.set(cid)
            return fn(*args, **kwargs)

        return self.greenlets.spawn(run)

    def live_calls(self) -> int:
        """Calls counted against MAX_CALLS: admitted ones (a fork FreeSWITCH has not confirmed is not a call)
        and our outbound calls being dialed (they will be calls the moment they are answered)."""
        return sum(1 for sess in self.sessions.values()
                   if sess.admitted or (sess.direction is Direction.OUTBOUND and not sess.state.over))

    def observers_flush(self, timeout: float = 5.0) -> bool:
        """Wait until what the calls reported so far is in Redis (True) or ``timeout`` passes."""
        return self.record_writer.flush(timeout)

    def _capacity_left(self) -> int:
        return self.settings.max_calls - self.live_calls()

    def _refusal_reason(self) -> str:
        """Why a new call cannot be taken now ('' = it can)."""
        if self.draining:
            return "draining"
        if self._capacity_left() <= 0:
            return "busy"
        if self.admission_check is not None and self.admission_check():
            return "overloaded"
        max_lag = self.settings.admission_max_loop_lag_ms
        if max_lag and self.loop_lag.lag_ms > max_lag:
            return "loop_lag"  # the loop is saturating: new handshakes would time out and calls stay parked
        return ""

    def log_refusal(self, kind: str, msg: str, *args) -> None:
        """Refusals can be forced by anyone reaching the fork port: at most one line per interval and kind."""
        self.intake.throttle.log(kind, logging.WARNING, msg, *args)

    def _refuse(self, node: Optional[NodeLink], call_id: str, reason: str) -> None:
        metrics.CALLS_REFUSED.labels(reason=reason).inc()
        extra = f" (event loop {self.loop_lag.lag_ms:.0f} ms late)" if reason == "loop_lag" else ""
        self.intake.throttle.log(f"refuse_{reason}", logging.WARNING, "refusing call: %s%s", reason, extra,
                                 extra={"call_id": call_id})
        if node is not None:
            node.fs_async("kill", call_id, "USER_BUSY")

    def metrics_refused(self, reason: str) -> None:
        metrics.CALLS_REFUSED.labels(reason=reason).inc()

    def _new_session(self, node: NodeLink, call_id: str, direction: Direction, *, admitted: bool = True,
                     **kw) -> CallSession:
        """A session; ``admitted=False`` for a fork FreeSWITCH has not confirmed yet (see fork_intake)."""
        sess = CallSession(self, node, call_id, direction=direction, **kw)
        self.sessions[call_id] = sess
        self.idle.clear()
        if admitted:
            self.admit_session(sess)
        return sess

    def admit_session(self, sess: CallSession) -> None:
        """From now on the call counts against MAX_CALLS and is listed in Redis."""
        sess.admitted = True
        call_id, node, direction = sess.id, sess.node, sess.direction
        metrics.ACTIVE_CALLS.labels(worker=self.worker_id).set(self.live_calls())
        try:
            self.store.register({"id": call_id, "node": node.name, "worker": self.worker_id,
                                 "direction": direction.value, "caller": sess.caller, "callee": sess.callee,
                                 "state": sess.state.record_value, "started": f"{sess.started_wall:.3f}"})
        except redis.RedisError as exc:
            log.warning("could not register call in redis: %s", exc)

    def _record(self, sess: CallSession) -> Dict[str, str]:
        """The call's whole Redis record: always written whole, so a Redis restart cannot leave half of it."""
        return {"id": sess.id, "node": sess.node.name, "worker": self.worker_id, "direction": sess.direction.value,
                "caller": sess.caller, "callee": sess.callee, "started": f"{sess.started_wall:.3f}",
                **self._record_extra.get(sess.id, {}), "state": sess.state.record_value}

    def store_update(self, sess: CallSession, **fields) -> None:
        fields.pop("state", None)  # the record's state is always the session's own
        self._record_extra.setdefault(sess.id, {}).update({k: str(v) for k, v in fields.items()})
        if self.sessions.get(sess.id) is not sess or sess.ended.is_set():
            return
        try:
            self.store.refresh(self._record(sess))
        except redis.RedisError as exc:
            log.warning("redis update failed (queued for replay): %s", exc)

    def session_closed(self, sess: CallSession) -> None:
        # Redis first: while the record exists the session is still listed, so no sweep takes it for an orphan
        try:
            if sess.admitted:  # an unconfirmed fork never reached Redis: no round trip for it
                self.store.remove(sess.id)
        except redis.RedisError as exc:
            log.warning("redis remove failed (queued for replay): %s", exc)
        if self.sessions.get(sess.id) is sess:
            del self.sessions[sess.id]
            self._record_extra.pop(sess.id, None)
        metrics.ACTIVE_CALLS.labels(worker=self.worker_id).set(self.live_calls())
        if not self.sessions:
            self.idle.set()

    def on_node_event(self, node: NodeLink, ev: fs_events.EslEvent) -> None:
        u = ev.uuid
        sess = self.sessions.get(u) if u else None
        if sess is not None and sess.node is node:
            sess.on_esl_event(ev)
            return
        if u and isinstance(ev, fs_events.ForkConnectFailed):
            self.spawn(self.intake.orphan_fork_failed, node, ev, call_id=u)
            return
        if (self.settings.start_fork_on_park and isinstance(ev, fs_events.ChannelPark) and u
                and ev.direction == Direction.INBOUND.value):
            self.spawn(self._claim_and_fork, node, ev, call_id=u)

    def _claim_and_fork(self, node: NodeLink, ev: fs_events.ChannelPark) -> None:
        """START_FORK_ON_PARK: the first worker to win the Redis claim forks the call to itself."""
        u = ev.uuid
        if self.draining or self._capacity_left() <= 0:
            return
        if not self.store.claim("claim", u, self.worker_id, ttl=3600):
            return
        meta = {"uuid": u, "node": node.name, "direction": "inbound"}
        try:
            node.fs.audio_fork_start(u, self.fork_url_for(u), mix="mono", rate=self.settings.fork_sample_rate,
                                     bugname="audio_fork", metadata=meta)
        except Exception as exc:
            log.warning("could not start fork: %s; hanging up", exc, extra={"call_id": u})
            node.fs_async("kill", u, "NORMAL_TEMPORARY_FAILURE")  # we claimed it: nobody else will take it
            return
        self.intake.watch_claimed(node, u)

    def originate(self, destination: str, *, node: Optional[str] = None, gateway: Optional[str] = None,
                  caller_id_number: Optional[str] = None, caller_id_name: Optional[str] = None,
                  timeout: Optional[int] = None, profile: Optional[str] = None, call_id: Optional[str] = None,
                  request: Optional[object] = None, request_id: Optional[str] = None,
                  max_seconds: Optional[float] = None, trace_parent: str = "") -> Dict[str, Any]:
        """Place an outbound call (calls.outbound.Dialer); blocks until answered or failed."""
        return self.dialer.originate(destination, node=node, gateway=gateway, caller_id_number=caller_id_number,
                                     caller_id_name=caller_id_name, timeout=timeout, profile=profile, call_id=call_id,
                                     request=request, request_id=request_id, max_seconds=max_seconds,
                                     trace_parent=trace_parent)

    def _dispatch_command(self, call_id: str, cmd) -> None:
        sess = self.sessions.get(call_id)
        if sess is None:
            log.warning("command %s for a call this worker no longer has", cmd.type, extra={"call_id": call_id})
            return
        if cmd.type == "play":
            try:
                path = resolve_media_path(cmd.file, [self.settings.playback_dir, *self.settings.media_dirs])
            except ValueError as exc:
                log.warning("inbox: dropping play command: %s", exc, extra={"call_id": call_id})
                return
            cmd = cmd.model_copy(update={"file": path})
        sess.on_command(cmd)

    def _beat(self) -> None:
        try:
            fork = self.fork_server.health() if self.fork_server is not None else {"serving": False}
            if not fork.get("serving"):
                log.warning("fork server not serving (%s): new calls cannot reach this worker",
                            fork.get("last_accept_error") or "stopped")
            links = {name: link.status() for name, link in self.nodes.items()}  # each ESL link's state, for /health
            self.store.heartbeat(self.worker_id, {"calls": self.live_calls(), "max_calls": self.settings.max_calls,
                                                  "room": max(0, self.requests.room()), "fork_url": self.fork_url_base,
                                                  "draining": int(self.draining), "greenlets": len(self.greenlets),
                                                  "fork_serving": int(bool(fork.get("serving"))),
                                                  "fork_connections": int(fork.get("connections", 0)),
                                                  "nodes": json.dumps(links)},
                                 ttl=self.settings.worker_heartbeat_ttl)
            for sess in list(self.sessions.values()):
                # whole records (Redis may have restarted), and never for a call that has ended
                if (sess.admitted and sess.confirmed.is_set() and not sess.ended.is_set()
                        and sess.state != CallState.ENDED):
                    self.store.refresh(self._record(sess))
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)
        self.recovery.reap_sessions()

    def _heartbeat_loop(self) -> None:
        while True:
            self._beat()
            gevent.sleep(self.settings.worker_heartbeat_seconds)

    def serve_forever(self) -> None:
        self.install_signal_handlers()
        self.start()
        self.stopped.wait()


def _records(client: redis.Redis, s: Settings) -> "tuple[RecordStore, RecordWriter]":
    keys = Keys(s.redis_prefix)
    store = RecordStore(client, keys, retention_seconds=s.call_retention_days * 86400,
                        stream=EventStream(client, keys, maxlen=s.call_events_maxlen))
    return store, RecordWriter(store)
