"""The fork side of a call: which fork may attach, the caller's audio coming in, and the watchdog
that restarts a dead fork once (mod_audio_fork never reconnects by itself)."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from ..observability.metrics import AUDIO_BYTES, AUDIO_FRAMES
from ..telephony.fork_messages import Audio, Metadata, Text
from .ports import CallEvent

if TYPE_CHECKING:  # pragma: no cover
    import gevent.queue

    from .ports import ForkLink, NodePort, SessionHost

log = logging.getLogger("voiceagent.calls.session")

#: audio frames counted on the session before they are added to the metrics: two counter increments
#: per frame cost ~12 us under gevent (the counters' locks), a quarter of a core at 400 calls
AUDIO_REPORT_FRAMES = 50


class ForkSide:
    """Mixed into CallSession: its fork state lives on the session (``fork``, ``fork_lost_at``, ...)."""

    worker: "SessionHost"
    node: "NodePort"
    id: str
    fork: Optional["ForkLink"]
    fork_lost_at: Optional[float]
    fork_restarts: int
    _fork_expected_until: float
    admitted: bool
    metadata: Dict[str, Any]
    sample_rate: int
    samples_received: int
    last_audio_at: float
    events: "gevent.queue.Queue"
    _audio_sink: Optional[Callable[[bytes, int], None]]
    _frames_unreported = 0   # class defaults: the session's own counts start at the first frame
    _samples_reported = 0

    def expect_fork(self, seconds: float) -> None:
        """The worker is asking FreeSWITCH for a fork (outbound start, restart): the next one may attach."""
        self._fork_expected_until = time.monotonic() + seconds

    def expects_fork(self) -> bool:
        return time.monotonic() < self._fork_expected_until

    def may_attach_fork(self) -> bool:
        """A live fork is never replaced from outside: only the first one, one the worker asked for,
        or one after the old fork has closed may attach (auth is checked at the upgrade)."""
        old = self.fork
        return old is None or old.closed or self.expects_fork()

    def attach_fork(self, conn: ForkLink) -> bool:
        """Make ``conn`` the call's fork; False (nothing changed) when :meth:`may_attach_fork` says no."""
        if conn is self.fork:
            return True
        if not self.may_attach_fork():  # the fork intake logs the refusal (throttled)
            log.debug("second fork from %s not attached: the call's fork is live", conn.remote)
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
        self.metadata.update(conn.metadata or {})
        self.sample_rate = int(conn.sample_rate or 16000)
        if self.admitted:
            conn.mark_established()
        return True

    def report_audio(self) -> None:
        """Add the audio received since the last report to the metrics (frames, bytes of L16)."""
        if self._frames_unreported:
            AUDIO_FRAMES.inc(self._frames_unreported)
            AUDIO_BYTES.inc((self.samples_received - self._samples_reported) * 2)
            self._frames_unreported, self._samples_reported = 0, self.samples_received

    def on_fork_message(self, msg) -> None:
        if isinstance(msg, Audio):
            self.samples_received += len(msg.pcm) // 2
            self._frames_unreported += 1
            if self._frames_unreported >= AUDIO_REPORT_FRAMES:
                self.report_audio()
            self.last_audio_at = time.monotonic()
            sink = self._audio_sink
            if sink is not None:
                try:
                    sink(msg.pcm, msg.rate)
                except Exception:
                    log.exception("audio sink failed")
        elif isinstance(msg, Metadata):
            self.metadata.update(msg.data)
        elif isinstance(msg, Text):
            self.events.put(CallEvent("fork_text", msg.values))

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
