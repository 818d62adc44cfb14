"""One call: its state, the audio coming in, the replies going out, and the dialog driving it.

A session is created by whichever side arrives first — the fork WebSocket or the ESL
events — and is *confirmed* when the other side agrees within a grace window; only a
confirmed session answers, talks, and shows up in Redis.  The session is also the handle
a dialog gets: ``play()``, ``play_file()``, ``stop_playback()``, ``hangup()``,
``transfer()``, an audio sink, and a queue of events (DTMF, inbox commands).
"""
from __future__ import annotations

import enum
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

import gevent
import gevent.queue

from ..observability import metrics
from ..telephony.eslwire import Event
from ..speech.audio import wav_encode
from .flags import Flag
from .playback import Playback, expire, to_playable, wav_seconds  # noqa: F401 - Playback is part of the session API

log = logging.getLogger(__name__)


class CallState(str, enum.Enum):
    PENDING = "pending"      # one side seen, waiting for the other
    ANSWERING = "answering"
    ACTIVE = "active"
    ENDING = "ending"
    ENDED = "ended"


class Direction(str, enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass
class CallEvent:
    """Something a dialog may react to: ``kind`` is 'dtmf', 'command', 'fork_text'."""

    kind: str
    value: Any


class CallSession:
    """State and I/O of one call owned by this worker."""

    def __init__(self, worker, node, call_id: str, *, direction: Direction, caller: str = "", callee: str = "",
                 metadata: Optional[Dict[str, Any]] = None, profile: Optional[str] = None) -> None:
        self.worker = worker
        self.node = node
        self.id = call_id
        self.direction = direction
        self.caller = caller
        self.callee = callee
        self.metadata: Dict[str, Any] = dict(metadata or {})
        self.profile = profile
        self.state = CallState.PENDING
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.answered_at: Optional[float] = None
        self.hangup_cause: Optional[str] = None
        self.ended_at: Optional[float] = None   # monotonic time the hangup was seen
        self.ended_by: Optional[str] = None  # 'caller' | 'agent' | 'system'
        self.sample_rate = 16000
        self.samples_received = 0
        self.last_audio_at = time.monotonic()
        self.fork = None
        self.fork_lost_at: Optional[float] = None
        self.fork_restarts = 0
        self._fork_expected_until = 0.0  # the worker asked FreeSWITCH for a (new) fork until then
        self.admitted = False        # counts against MAX_CALLS and is in Redis (only once FreeSWITCH confirmed it)
        self.channel_absent = False  # FreeSWITCH answered uuid_exists: no such channel
        self.refused: Optional[str] = None
        self.events: gevent.queue.Queue = gevent.queue.Queue()
        self.confirmed = Flag()   # both fork and ESL know the call
        self.ended = Flag()       # FreeSWITCH says the channel hung up
        self.closed = Flag()      # session fully cleaned up
        self._audio_sink: Optional[Callable[[bytes, int], None]] = None
        self._uploads: Deque[Playback] = deque()   # sent as playAudio, waiting for ::play_audio
        self._by_file: Dict[str, Playback] = {}
        self.playbacks: List[Playback] = []
        self._files: List[str] = []
        self._greenlet: Optional[gevent.Greenlet] = None
        self._dialog_greenlet: Optional[gevent.Greenlet] = None
        self.barge_ins: List[float] = []
        self._hangup_sent = False  # monotonic times uuid_break was sent

    # ------------------------------------------------------------------ dialog API
    @property
    def speaking(self) -> bool:
        """True while any reply is queued, uploading or playing."""
        return any(not p.done for p in self.playbacks)

    @property
    def audio_clock(self) -> float:
        """Seconds of caller audio received: the clock speech timing runs on."""
        return self.samples_received / float(self.sample_rate)

    def set_audio_sink(self, sink: Optional[Callable[[bytes, int], None]]) -> None:
        self._audio_sink = sink

    def play(self, pcm: bytes, rate: int, text: str = "") -> Playback:
        """Queue PCM (int16 mono, any rate) to be spoken to the caller."""
        pcm, rate = to_playable(pcm, rate, self.sample_rate)
        pb = Playback(text=text, duration=len(pcm) / 2 / rate)
        self.playbacks.append(pb)
        if self.ended.is_set():
            pb._finish("cancelled")
            return pb
        mode = self.worker.settings.playback_mode
        if mode == "shared" or self.fork is None or getattr(self.fork, "closed", False):
            path = os.path.join(str(self.worker.settings.playback_dir), f"{self.id}-{pb.id}.wav")
            tmp = path + ".part"
            with open(tmp, "wb") as f:
                f.write(wav_encode(pcm, rate))
            os.replace(tmp, path)  # FreeSWITCH must never see a half-written file
            self._files.append(path)
            self._broadcast(pb, path)
        else:
            self._uploads.append(pb)
            try:
                self.fork.send_play_audio(pcm, sample_rate=rate, content_type="wav", text=text or None)
            except Exception as exc:  # the socket died under us: the watchdog handles the fork
                log.warning("playAudio send failed: %s", exc)
                self._uploads.remove(pb)
                pb._finish("failed")
        return pb

    def play_file(self, path: str, text: str = "") -> Playback:
        """Broadcast a file FreeSWITCH can read (same path on the FreeSWITCH host)."""
        pb = Playback(text=text, duration=wav_seconds(path))
        self.playbacks.append(pb)
        self._broadcast(pb, path)
        return pb

    def stop_playback(self) -> bool:
        """Barge-in: stop what plays, drop what is queued. Returns whether anything was stopped."""
        active = [p for p in self.playbacks if not p.done]
        if not active:
            return False
        for p in list(self._uploads):
            p._finish("cancelled")
        self._uploads.clear()
        self.barge_ins.append(time.monotonic())
        self.node.fs_async("break_playback", self.id, all=True)
        if self.fork is not None and not getattr(self.fork, "closed", False):
            try:
                self.fork.send_kill_audio()
            except Exception as exc:
                log.debug("killAudio not sent: %s", exc)
        for p in active:
            if p.status in ("pending", "handed"):
                p._finish("cancelled")
        return True

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if self.ended.is_set() or self._hangup_sent:
            return
        self._hangup_sent = True
        if self.ended_by is None:
            self.ended_by = "agent"
        self.state = CallState.ENDING
        self.node.fs_async("kill", self.id, cause)

    def transfer(self, destination: str, dialplan: str = "XML", context: str = "default") -> None:
        self.node.fs_async("transfer", self.id, destination, dialplan=dialplan, context=context)

    # ------------------------------------------------------------------ edge inputs
    def expect_fork(self, seconds: float) -> None:
        """The worker is asking FreeSWITCH for a fork (outbound start, restart): the next one may attach."""
        self._fork_expected_until = time.monotonic() + seconds

    def expects_fork(self) -> bool:
        return time.monotonic() < self._fork_expected_until

    def may_attach_fork(self) -> bool:
        """A live fork is never replaced from outside: only the first one, one the worker asked for,
        or one after the old fork has closed may attach (auth is checked at the upgrade)."""
        old = self.fork
        return old is None or getattr(old, "closed", False) or self.expects_fork()

    def attach_fork(self, conn) -> bool:
        """Make ``conn`` the call's fork; False (nothing changed) when :meth:`may_attach_fork` says no."""
        if conn is self.fork:
            return True
        if not self.may_attach_fork():  # the fork intake logs the refusal (throttled)
            log.debug("second fork from %s not attached: the call's fork is live", getattr(conn, "remote", "?"))
            return False
        if self.fork is not None:
            try:
                self.fork.close(1000, "replaced")
            except Exception:
                pass
        self.fork = conn
        self._fork_expected_until = 0.0
        self.fork_lost_at = None
        self.last_audio_at = time.monotonic()
        meta = getattr(conn, "metadata", None) or {}
        self.metadata.update(meta)
        self.sample_rate = int(getattr(conn, "sample_rate", 16000) or 16000)
        if self.admitted and hasattr(conn, "mark_established"):
            conn.mark_established()
        return True

    def refuse(self, reason: str) -> None:
        """The worker does not take this call (busy, draining, stopping): close the fork, end unanswered."""
        self.refused = reason
        self.ended_by = self.ended_by or "system"
        if self.fork is not None:
            try:
                self.fork.close(1013, reason)
            except Exception:
                pass
        self._on_hangup("USER_BUSY")
        self.confirmed.set()  # wakes _run, which finds the call over

    def on_fork_message(self, msg) -> None:
        kind = type(msg).__name__
        if kind == "Audio":
            self.samples_received += len(msg.pcm) // 2
            self.last_audio_at = time.monotonic()
            sink = self._audio_sink
            if sink is not None:
                try:
                    sink(msg.pcm, msg.rate)
                except Exception:
                    log.exception("audio sink failed")
        elif kind == "Metadata":
            self.metadata.update(msg.data if hasattr(msg, "data") else {})
        elif kind == "Text":
            self.events.put(CallEvent("fork_text", getattr(msg, "values", msg)))

    def on_fork_closed(self, conn) -> None:
        if conn is self.fork:
            self.fork_lost_at = time.monotonic()

    def on_esl_event(self, ev: Event) -> None:
        name = ev.name
        if name == "CUSTOM":
            sub = ev.subclass
            if sub == "mod_audio_fork::play_audio":
                self._on_play_audio(ev)
            elif sub == "mod_audio_fork::connect_failed":
                if self.may_attach_fork():  # the fork we wait for will not come
                    log.warning("fork connect failed: %s", ev.text)
                    self.fork_lost_at = self.fork_lost_at or time.monotonic()
                else:  # another bug on the channel (a refused duplicate): ours is fine
                    log.info("a second fork on this call failed to connect: %s", ev.text)
            return
        if name == "PLAYBACK_START":
            pb = self._by_file.get(ev.get("Playback-File-Path", ""))
            if pb and not pb.done:
                pb.status = "playing"
                pb.started_at = time.monotonic()
                pb.started.set()
                if pb.handed_at is not None:
                    metrics.PLAYBACK_LATENCY.observe(pb.started_at - pb.handed_at)
        elif name == "PLAYBACK_STOP":
            pb = self._by_file.get(ev.get("Playback-File-Path", ""))
            if pb:
                pb._finish("break" if ev.get("Playback-Status") == "break" else "done")
        elif name == "CHANNEL_EXECUTE_COMPLETE" and ev.get("Application") == "playback":
            pb = self._by_file.get(ev.get("Application-Data", ""))
            if pb and not pb.done:
                resp = ev.get("Application-Response", "")
                pb._finish("failed" if resp in ("FILE NOT FOUND", "PLAYBACK ERROR") else "done")
                if pb.status == "failed":
                    log.warning("playback of %s failed: %s", pb.file, resp)
        elif name == "DTMF":
            digit = ev.get("DTMF-Digit", "")
            if digit:
                self.events.put(CallEvent("dtmf", digit))
        elif name == "CHANNEL_ANSWER":
            if self.answered_at is None:
                self.answered_at = time.monotonic()
        elif name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"):
            self._on_hangup(ev.get("Hangup-Cause") or "NORMAL_CLEARING")

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
    def _broadcast(self, pb: Playback, path: str) -> None:
        pb.file = path
        pb.status = "handed"
        pb.handed_at = time.monotonic()
        self._by_file[path] = pb
        self.node.fs_async("broadcast", self.id, path, on_error=lambda exc: pb._finish("failed"))

    def _on_play_audio(self, ev: Event) -> None:
        import json

        try:
            data = json.loads(ev.body or b"{}")
            path = str(data["file"])
        except (ValueError, KeyError, TypeError):
            log.warning("play_audio event without a usable file: %r", ev.body[:200])
            return
        if not self._uploads:
            log.warning("play_audio for a file we did not send: %s", path)
            return
        pb = self._uploads.popleft()
        if pb.done:  # cancelled by barge-in while uploading
            return
        self._broadcast(pb, path)

    def _on_hangup(self, cause: str) -> None:
        if self.ended.is_set():
            return
        self.hangup_cause = cause
        self.ended_at = time.monotonic()
        if self.ended_by is None:
            self.ended_by = "caller"
        self.state = CallState.ENDING
        for p in self.playbacks:
            p._finish("done" if p.status == "playing" else "cancelled")
        self.ended.set()

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
                if not self.channel_absent:
                    # if the channel exists after all (its events were lost), do not leave it parked for an hour
                    self.node.fs_async("kill", self.id, "USER_BUSY")
                return
            if self.ended.is_set():
                return
            self.state = CallState.ANSWERING
            if self.direction == Direction.INBOUND and s.answer_inbound:
                try:
                    self.node.fs.answer(self.id)
                except Exception as exc:
                    log.warning("answer failed: %s", exc)
                    return
            self.answered_at = self.answered_at or time.monotonic()
            self.state = CallState.ACTIVE
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
        deadline = self.started + s.max_call_seconds
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

    def _fork_dead(self, now: float) -> bool:
        s = self.worker.settings
        if self.fork_lost_at is not None and now - self.fork_lost_at > s.fork_grace_seconds:
            return True
        return now - self.last_audio_at > s.audio_idle_seconds

    def _restart_fork(self) -> None:
        """mod_audio_fork never reconnects by itself: stop the dead bug and start a new one, once."""
        self.fork_restarts += 1
        log.warning("fork silent or closed: restarting it (stop + start)")
        self.last_audio_at = time.monotonic()
        self.fork_lost_at = None
        self.expect_fork(self.worker.settings.fork_arrival_timeout)  # only this new fork may replace the old
        try:
            self.node.fs.audio_fork_stop(self.id, "audio_fork")
        except Exception as exc:
            log.info("fork stop before restart: %s", exc)
        try:
            self.node.fs.audio_fork_start(self.id, self.worker.fork_url_for(self.id), mix="mono",
                                          rate=self.sample_rate, bugname="audio_fork",
                                          metadata=self.worker.fork_metadata(self))
        except Exception as exc:
            log.warning("fork restart failed: %s", exc)
            self.fork_lost_at = time.monotonic()

    def _expire_playbacks(self, now: float, margin: float) -> int:
        """Playback watchdog (see ``playback.expire``); ``margin`` s past each playback's expected end."""
        return expire(self.playbacks, self._uploads, now, margin)

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
        self.state = CallState.ENDED
        g = self._dialog_greenlet
        if g is not None and not g.dead:
            g.kill(block=True, timeout=2)
        for p in self.playbacks:
            p._finish("cancelled")
        if self.fork is not None:
            try:
                self.fork.close(1000, "")
            except Exception:
                pass
        for path in self._files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)
        self.worker.session_closed(self)
        self.closed.set()

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
