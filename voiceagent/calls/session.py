"""One call: its state, the audio coming in, the replies going out, and the dialog driving it.

A session is created by whichever side arrives first — the fork WebSocket or the ESL
events — and is *confirmed* when the other side agrees within a grace window; only a
confirmed session answers, talks, and shows up in Redis.  An outbound session is created
before its originate is sent (so the call's events find it) and confirmed at the answer.
The session is also the handle a dialog gets (:class:`ports.CallPort`): ``play()``,
``play_file()``, ``stop_playback()``, ``hangup()``, ``transfer()``, an audio sink, and a queue
of events (DTMF, inbox commands).  It reads FreeSWITCH only through typed events.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional

import gevent
import gevent.queue

from ..telephony import events as fs_events
from ..telephony.outcomes import hangup_outcome
from .call_state import CallState, CallStates, Direction
from .flags import Flag
from .playback import Playback, PlaybackStatus, expire, to_playable, wav_seconds  # noqa: F401 - session API
from .playout import Playout
from .ports import CallEvent, CallInfo, ForkLink, NodePort, SessionHost
from .session_fork import ForkSide
from .turns import Turn

log = logging.getLogger(__name__)

__all__ = ["CallSession", "CallState", "CallEvent", "Direction", "Playback", "PlaybackStatus"]


class CallSession(ForkSide):
    """State and I/O of one call owned by this worker."""

    def __init__(self, worker: SessionHost, node: NodePort, call_id: str, *, direction: Direction, caller: str = "",
                 callee: str = "", metadata: Optional[Dict[str, Any]] = None, profile: Optional[str] = None,
                 state: CallState = CallState.OFFERED, request: Optional[object] = None,
                 request_id: Optional[str] = None) -> None:
        self.worker = worker
        self.node = node
        self.id = call_id
        self.direction = direction
        self.caller = caller
        self.callee = callee
        self.metadata: Dict[str, Any] = dict(metadata or {})
        self.profile = profile
        self.request = request          # opaque: what the outbound call was placed for
        self.request_id = request_id
        self.trace_parent = ""          # W3C traceparent of what placed the call (observability/tracing.py)
        self.states = CallStates(state, on_change=self._state_changed)
        self._observed = False          # observers hear of the call once FreeSWITCH has it (see observe)
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.answered_at: Optional[float] = None
        self.hangup_cause: Optional[str] = None
        self.ended_at: Optional[float] = None   # monotonic time the hangup was seen
        self.ended_by: Optional[str] = None  # 'caller' | 'agent' | 'system'
        self.sample_rate = 16000
        self.samples_received = 0
        self.last_audio_at = time.monotonic()
        self.fork: Optional[ForkLink] = None
        self.fork_lost_at: Optional[float] = None
        self.fork_restarts = 0
        self._fork_expected_until = 0.0  # the worker asked FreeSWITCH for a (new) fork until then
        self.admitted = False        # counts against MAX_CALLS and is in Redis (only once FreeSWITCH confirmed it)
        self.channel_absent = False  # FreeSWITCH answered uuid_exists: no such channel
        self.refused: Optional[str] = None
        self.max_seconds = worker.settings.max_call_seconds  # a request may ask for less
        self.events: gevent.queue.Queue = gevent.queue.Queue()
        self.confirmed = Flag()   # both fork and ESL know the call
        self.ended = Flag()       # FreeSWITCH says the channel hung up
        self.closed = Flag()      # session fully cleaned up
        self._audio_sink: Optional[Callable[[bytes, int], None]] = None
        self.playout = Playout(self)
        self._greenlet: Optional[gevent.Greenlet] = None
        self._dialog_greenlet: Optional[gevent.Greenlet] = None
        self.barge_ins: List[float] = []  # monotonic times uuid_break was sent
        self._hangup_sent = False

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> CallState:
        return self.states.current

    def _to(self, state: CallState) -> bool:
        return self.states.to(state)

    @property
    def info(self) -> CallInfo:
        return CallInfo(id=self.id, direction=self.direction, caller=self.caller, callee=self.callee,
                        node=self.node.name, worker=self.worker.worker_id, profile=self.profile,
                        request_id=self.request_id, trace_parent=self.trace_parent)

    def observe(self) -> None:
        """From now on observers hear of this call (its states so far first).  Not before FreeSWITCH
        confirmed it: anyone can open a fork with a made-up uuid."""
        if self._observed:
            return
        self._observed = True
        info = self.info
        for t in self.states.history:
            self.worker.notify.call_state(info, t.state, t.at)

    def _state_changed(self, state: CallState, at: float) -> None:
        if self._observed:
            self.worker.notify.call_state(self.info, state, at)

    # ------------------------------------------------------------------ dialog API
    @property
    def playbacks(self) -> List[Playback]:
        return self.playout.playbacks

    @property
    def speaking(self) -> bool:
        """True while any reply is queued, uploading or playing."""
        return self.playout.speaking

    @property
    def audio_clock(self) -> float:
        """Seconds of caller audio received: the clock speech timing runs on."""
        return self.samples_received / float(self.sample_rate)

    def set_audio_sink(self, sink: Optional[Callable[[bytes, int], None]]) -> None:
        self._audio_sink = sink

    def play(self, pcm: bytes, rate: int, text: str = "") -> Playback:
        """Queue PCM (int16 mono, any rate) to be spoken to the caller."""
        return self.playout.play(pcm, rate, text)

    def play_file(self, path: str, text: str = "") -> Playback:
        """Broadcast a file FreeSWITCH can read (same path on the FreeSWITCH host)."""
        return self.playout.play_file(path, text)

    def stop_playback(self) -> bool:
        """Barge-in: stop what plays, drop what is queued. Returns whether anything was stopped."""
        return self.playout.stop()

    def pause_playback(self) -> bool:
        """Barge-in onset: pause what plays (blocks for FreeSWITCH's reply). Whether it paused."""
        return self.playout.pause()

    def resume_playback(self) -> bool:
        """After a false alarm: resume the paused file where it stopped."""
        return self.playout.resume()

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if self.ended.is_set() or self._hangup_sent:
            return
        self._hangup_sent = True
        if self.ended_by is None:
            self.ended_by = "agent"
        self._to(CallState.ENDING)
        self.node.fs_async("kill", self.id, cause)

    def transfer(self, destination: str, dialplan: str = "XML", context: str = "default") -> None:
        self.node.fs_async("transfer", self.id, destination, dialplan=dialplan, context=context)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """A greenlet tracked by the worker (none may outlive the call), logging with this call's id."""
        return self.worker.spawn(fn, *args, call_id=self.id)

    def report_turn(self, turn: Turn) -> None:
        if self._observed:
            self.worker.notify.call_turn(self.info, turn)

    def report_barge_in(self, at: float) -> None:
        if self._observed:
            self.worker.notify.call_barge_in(self.info, at)

    # ------------------------------------------------------------------ edge inputs
    def refuse(self, reason: str) -> None:
        """The worker does not take this call (busy, draining, stopping): close the fork, end unanswered."""
        self.refused = reason
        self.ended_by = self.ended_by or "system"
        self._to(CallState.REFUSED)
        if self.fork is not None:
            try:
                self.fork.close(1013, reason)
            except Exception:
                pass
        self._on_hangup("USER_BUSY")
        self.confirmed.set()  # wakes _run, which finds the call over

    def on_fork_closed(self, conn) -> None:
        if conn is self.fork:
            self.fork_lost_at = time.monotonic()

    def on_esl_event(self, ev: fs_events.EslEvent) -> None:
        """One typed event about this call (telephony.events)."""
        out = self.playout
        if isinstance(ev, fs_events.ForkPlayAudio):
            out.stored(ev.file)
        elif isinstance(ev, fs_events.ForkConnectFailed):
            if self.may_attach_fork():  # the fork we wait for will not come
                log.warning("fork connect failed: %s", ev.reason)
                self.fork_lost_at = self.fork_lost_at or time.monotonic()
            else:  # another bug on the channel (a refused duplicate): ours is fine
                log.info("a second fork on this call failed to connect: %s", ev.reason)
        elif isinstance(ev, fs_events.PlaybackStart):
            out.started(ev.path)
        elif isinstance(ev, fs_events.PlaybackStop):
            out.stopped(ev.path, ev.broken)
        elif isinstance(ev, fs_events.ExecuteComplete) and ev.playback_file:
            out.executed(ev.playback_file, ev.playback_failed, ev.response)
        elif isinstance(ev, fs_events.Dtmf):
            self.events.put(CallEvent("dtmf", ev.digit))
            if self._observed:
                self.worker.notify.call_dtmf(self.info, ev.digit, time.time())
        elif isinstance(ev, fs_events.ChannelProgress):
            if self.state is CallState.DIALING:
                self._to(CallState.RINGING)
        elif isinstance(ev, fs_events.ChannelAnswer):
            if self.answered_at is None:
                self.answered_at = time.monotonic()
            if self.state in (CallState.DIALING, CallState.RINGING):
                self._to(CallState.ANSWERED)
        elif isinstance(ev, fs_events.ChannelEnd):
            self._on_hangup(ev.cause or "NORMAL_CLEARING")

    def on_command(self, cmd) -> None:
        """A command from the Redis inbox (another process acting on this call)."""
        t = cmd.type
        if t == "hangup":
            self.hangup(cmd.cause)
        elif t == "transfer":
            self.transfer(cmd.destination, cmd.dialplan, cmd.context)
        elif t == "play":
            self.play_file(cmd.file)
        else:  # 'say' needs the dialog's voice
            self.events.put(CallEvent("command", cmd))

    # ------------------------------------------------------------------ internals
    def _on_hangup(self, cause: str) -> None:
        if self.ended.is_set():
            return
        self.hangup_cause = cause
        self.ended_at = time.monotonic()
        if self.ended_by is None:
            self.ended_by = "caller"
        if self.state in (CallState.REQUESTED, CallState.DIALING, CallState.RINGING):
            self._to(CallState.FAILED)  # never answered: the attempt failed
        elif not self.state.over:
            self._to(CallState.ENDING)
        self.playout.hung_up()
        self.ended.set()

    @property
    def outcome(self) -> str:
        """How the attempt to reach someone went (telephony.outcomes)."""
        return hangup_outcome(self.hangup_cause, answered=self.answered_at is not None and not self.refused)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._greenlet = self.worker.spawn(self._run, call_id=self.id)

    def _run(self) -> None:
        w = self.worker
        s = w.settings
        try:
            if not self.confirmed.wait(s.fork_grace_seconds):
                w.log_refusal("unconfirmed", "call not confirmed within %.1fs (fork=%s): refusing",
                              s.fork_grace_seconds, self.fork is not None)
                w.metrics_refused("unconfirmed")
                self._to(CallState.REFUSED)
                if not self.channel_absent:
                    # if the channel exists after all (its events were lost), do not leave it parked for an hour
                    self.node.fs_async("kill", self.id, "USER_BUSY")
                return
            if self.ended.is_set():
                return
            if self.state is CallState.CONFIRMED:
                self._to(CallState.ANSWERING)
            if self.direction == Direction.INBOUND and s.answer_inbound:
                try:
                    self.node.fs.answer(self.id)
                except Exception as exc:
                    log.warning("answer failed: %s", exc)
                    return
            self.answered_at = self.answered_at or time.monotonic()
            self._to(CallState.ACTIVE)
            w.store_update(self, state="active", answered=str(time.time()))
            log.info("call active", extra={"fields": {"direction": self.direction.value, "caller": self.caller,
                                                      "callee": self.callee, "node": self.node.name}})
            dialog = w.make_dialog(self)
            self._dialog_greenlet = w.spawn(dialog.run, self, call_id=self.id)
            self._supervise()
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("session crashed")
            self.hangup("NORMAL_TEMPORARY_FAILURE")
        finally:
            self._cleanup()

    def _supervise(self) -> None:
        s = self.worker.settings
        deadline = self.started + self.max_seconds
        while not self.ended.is_set():
            now = time.monotonic()
            if now >= deadline:
                log.info("maximum call duration reached")
                self.ended_by = "system"
                self.hangup("ALLOTTED_TIMEOUT")
                break
            if self._dialog_greenlet is not None and self._dialog_greenlet.dead:
                if not self._dialog_greenlet.successful():
                    log.error("dialog failed: %r", self._dialog_greenlet.exception)
                # the dialog is over: let anything still queued finish playing, then hang up
                self._wait_playbacks(timeout=30)
                self.hangup()
                break
            self._expire_playbacks(now, s.playback_margin_seconds)
            if self._fork_dead(now):
                if self.fork_restarts < 1:
                    self._restart_fork()
                else:
                    log.warning("fork lost again: hanging up")
                    self.ended_by = "system"
                    self.hangup("NORMAL_TEMPORARY_FAILURE")
                    break
            # wake at once when the call ends or the dialog finishes; otherwise tick for the watchdogs
            waitables = [self.ended] + ([self._dialog_greenlet] if self._dialog_greenlet is not None else [])
            gevent.wait(waitables, count=1, timeout=min(0.25, max(0.01, deadline - now)))
        # wait for FreeSWITCH to confirm the hangup; the channel may already be gone
        self.ended.wait(5)

    def _expire_playbacks(self, now: float, margin: float) -> int:
        """Playback watchdog (see ``playback.expire``); ``margin`` s past each playback's expected end."""
        return self.playout.expire(now, margin)

    def reconcile_playbacks(self) -> int:
        """After an ESL reconnect: events of the outage are lost, so finish every playback whose end has passed."""
        return self._expire_playbacks(time.monotonic(), 0.0)

    def _wait_playbacks(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for p in list(self.playbacks):
            left = end - time.monotonic()
            if left <= 0 or self.ended.is_set():
                return
            gevent.wait([p.finished, self.ended], timeout=left, count=1)

    def _cleanup(self) -> None:
        if not self.state.over:
            self._to(CallState.ENDING)
        self._to(CallState.ENDED)
        g = self._dialog_greenlet
        if g is not None and not g.dead:
            g.kill(block=True, timeout=2)
        if self.fork is not None:
            try:
                self.fork.close(1000, "")
            except Exception:
                pass
        self.playout.close()
        self.worker.session_closed(self)
        self._report_end()
        self.closed.set()

    def finish_unstarted(self, cause: str, outcome: str) -> None:
        """An outbound call that never got going (its originate failed): end it here, no greenlet ran."""
        if self.closed.is_set():  # the reaper got there first
            return
        self.hangup_cause = self.hangup_cause or cause
        self.ended_by = self.ended_by or "system"
        if not self.state.over:
            self._to(CallState.FAILED)
        self.ended.set()
        self._to(CallState.ENDED)
        self.worker.session_closed(self)
        self._report_end(outcome)
        self.closed.set()

    def _report_end(self, outcome: Optional[str] = None) -> None:
        if self._observed:
            self.worker.notify.call_ended(self.info, cause=self.hangup_cause or "", outcome=outcome or self.outcome,
                                          ended_by=self.ended_by or "", at=time.time(),
                                          refused=self.refused or "")

    def force_close(self) -> None:
        """Last resort for a session stuck after its hangup: kill its greenlet, which runs the cleanup."""
        g = self._greenlet
        if g is not None and not g.dead:
            g.kill(block=False)
        elif not self.closed.is_set():
            self.worker.spawn(self._cleanup, call_id=self.id)

    def kill(self) -> None:
        """Forget the call without touching FreeSWITCH (its node is gone)."""
        self.ended_by = self.ended_by or "system"
        self._on_hangup("LOSE_RACE")

    def summary(self) -> Dict[str, Any]:
        return {
            "id": self.id, "node": self.node.name, "direction": self.direction.value, "caller": self.caller,
            "callee": self.callee, "state": self.state.value, "started": self.started_wall,
            "hangup_cause": self.hangup_cause, "ended_by": self.ended_by,
        }
