"""Cleaning up after crashes and lost events, so nothing waits out a timeout of an hour.

A worker that is SIGKILLed leaves its channels parked (``park_timeout`` 3600 s), its call
records and inbox in Redis, and in shared playback mode its WAVs on disk.  Every live worker
therefore sweeps, every ``ORPHAN_SWEEP_SECONDS``:

- calls whose worker has no heartbeat: one worker wins a ``SET NX`` claim per call, kills the
  channel if it serves the call's node, and closes the record (``outcome=failed``,
  ``reason=worker_lost``); the dead worker's inbox is deleted;
- its own records that have no session any more (a removal lost, a restart under the same
  ``WORKER_ID``);
- WAVs of ours in ``PLAYBACK_DIR`` older than ``PLAYBACK_MAX_AGE_MINUTES`` (also at start-up);
- with RECORD_CALLS, recordings in ``RECORDINGS_DIR`` older than ``CALL_RETENTION_DAYS``.

It also hangs up a parked call whose fork failed to connect (``mod_audio_fork::connect_failed``)
when no worker owns it (one worker, by claim), and force-closes sessions that stay open long
after their hangup.
"""
from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Dict, Optional

import gevent
import redis

from ..telephony.call_ids import UUID_PATTERN
from .recording import expire_recordings

if TYPE_CHECKING:  # pragma: no cover
    from .worker import VoiceWorker

log = logging.getLogger(__name__)

# the only files we ever delete: <call uuid>-<playback id>.wav[.part], as CallSession.play writes them
PLAYBACK_FILE_RE = re.compile(rf"^{UUID_PATTERN}-\d+\.wav(\.part)?$")
ORPHAN_CAUSE = "NORMAL_TEMPORARY_FAILURE"  # SIP 503: nobody can serve this call any more


class Recovery:
    """The sweeps of one worker; ``start()`` sweeps the playback directory and starts the loop."""

    def __init__(self, worker: "VoiceWorker") -> None:
        self.worker = worker
        self._greenlet: Optional[gevent.Greenlet] = None
        self._reaped: Dict[str, float] = {}

    def start(self) -> None:
        self.sweep_playback_dir()
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)

    def _loop(self) -> None:
        while True:
            gevent.sleep(self.worker.settings.orphan_sweep_seconds)
            self.sweep()

    def sweep(self) -> None:
        try:
            self.sweep_orphans()
        except redis.RedisError as exc:
            log.warning("orphan sweep: redis error: %s", exc)
        except Exception:
            log.exception("orphan sweep failed")
        try:
            self.sweep_records()
        except redis.RedisError as exc:
            log.warning("record sweep: redis error: %s", exc)
        except Exception:
            log.exception("record sweep failed")
        try:
            self.sweep_playback_dir()
        except Exception:
            log.exception("playback directory sweep failed")
        if self.worker.settings.record_calls:
            try:
                expire_recordings(str(self.worker.settings.recordings_dir), self.worker.settings.call_retention_days)
            except Exception:
                log.exception("recordings sweep failed")

    # ------------------------------------------------------------------ calls of dead workers
    def sweep_orphans(self) -> int:
        """Close the calls no live worker owns; returns how many this worker swept."""
        w = self.worker
        store = w.store
        s = w.settings
        store.flush_pending()  # our own queued removals first: they are not orphans
        alive: Dict[str, bool] = {w.worker_id: True}
        swept = 0
        for raw in store.r.smembers(store.live_key):
            call_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            rec = store.get(call_id)
            if rec is None or rec.get("state") == "ended":
                store.r.srem(store.live_key, call_id)
                continue
            owner = rec.get("worker", "")
            try:
                age = time.time() - float(rec.get("started") or 0)
            except ValueError:
                age = float("inf")
            if age < s.worker_heartbeat_ttl:
                continue  # a call registered before its worker's first heartbeat
            if owner == w.worker_id:
                if call_id not in w.sessions:
                    self._drop_own_stale(call_id, rec)
                continue
            if owner not in alive:
                alive[owner] = store.worker_alive(owner)
                if not alive[owner]:
                    store.r.delete(store.inbox_key(owner))
            if alive[owner]:
                continue
            if not store.claim("sweep", call_id, w.worker_id, ttl=max(60.0, 2 * s.orphan_sweep_seconds)):
                continue  # another worker is sweeping it
            killed = self._kill_channel(call_id, rec.get("node", ""))
            store.close(call_id, "failed", "worker_lost", swept_by=w.worker_id)
            swept += 1
            log.warning("call of lost worker %s closed (outcome failed, reason worker_lost); channel %s", owner,
                        killed, extra={"call_id": call_id})
        return swept

    def sweep_records(self) -> int:
        """End the open call records whose worker died (no heartbeat): the record says so, with the
        state the call was in, and the request is never dialed again.  Returns how many it ended."""
        from ..records.events import CallEnded
        from ..records.models import CallRecord, Outcome
        from ..records.store import RecordGone, end, ended_event

        w = self.worker
        records = w.records
        alive: Dict[str, bool] = {w.worker_id: True}
        ended = 0
        for call_id in records.open_ids():
            rec = records.get(call_id)
            if rec is None:
                records.forget_open(call_id)  # expired or unreadable: nothing left to end
                continue
            owner = rec.worker or records.taker(call_id) or ""
            if not owner or owner == w.worker_id:
                continue  # still queued, or ours (our own sessions end their records)
            if owner not in alive:
                alive[owner] = w.store.worker_alive(owner)
            if alive[owner]:
                continue
            now = time.time()

            def change(r: CallRecord, owner: str = owner, now: float = now) -> Optional[CallEnded]:
                if r.ended:
                    return None
                state = r.state
                end(r, Outcome.ANSWERED if r.answered_at else Outcome.FAILED, at=now, ended_by="system",
                    reason=f"worker {owner} stopped (no heartbeat) while the call was {state}")
                return ended_event(r, w.worker_id)
            try:
                records.update(call_id, change)
            except RecordGone:
                continue
            ended += 1
            log.warning("record of lost worker %s ended (was %s)", owner, rec.state, extra={"call_id": call_id})
        return ended

    def _drop_own_stale(self, call_id: str, rec: Dict[str, str]) -> None:
        """A record of ours without a session: its removal was lost (or we restarted under the same id)."""
        killed = self._kill_channel(call_id, rec.get("node", ""), only_if_known=True)
        self.worker.store.remove(call_id)
        log.warning("stale record of this worker removed (no session); channel %s", killed, extra={"call_id": call_id})

    def _kill_channel(self, call_id: str, node_name: str, only_if_known: bool = False) -> str:
        node = self.worker.nodes.get(node_name)
        if node is None:
            return f"left alone (node {node_name!r} is not served here)"
        if only_if_known and not node.knows(call_id):
            return "already gone"
        try:
            node.fs.kill(call_id, ORPHAN_CAUSE)
            return "hung up"
        except Exception as exc:
            gone = "No such channel" in str(exc) or "invalid uuid" in str(exc)
            return "already gone" if gone else f"kill failed: {exc}"

    # ------------------------------------------------------------------ stale playback files
    def sweep_playback_dir(self) -> int:
        """Delete our stale WAVs (name pattern, age); the live calls' files stay."""
        w = self.worker
        path = str(w.settings.playback_dir)
        cutoff = time.time() - w.settings.playback_max_age_minutes * 60
        removed = 0
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not PLAYBACK_FILE_RE.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            if entry.name[:36] in w.sessions:
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("could not remove stale playback file %s: %s", entry.path, exc)
        if removed:
            log.info("removed %d stale playback files from %s", removed, path)
        return removed

    # ------------------------------------------------------------------ stuck sessions
    def reap_sessions(self) -> int:
        """Force-close sessions still open ``SESSION_REAP_SECONDS`` after their hangup (a bug elsewhere)."""
        w = self.worker
        now = time.monotonic()
        limit = w.settings.session_reap_seconds
        reaped = 0
        for sess in list(w.sessions.values()):
            ended_at = getattr(sess, "ended_at", None)
            if ended_at is None or sess.closed.is_set() or now - ended_at < limit:
                continue
            if self._reaped.get(sess.id, 0) > now - limit:
                continue  # already asked; give it time
            self._reaped[sess.id] = now
            reaped += 1
            log.error("session still open %.0fs after its hangup: force-closing it", now - ended_at,
                      extra={"call_id": sess.id})
            sess.force_close()
        for cid in [c for c in self._reaped if c not in w.sessions]:
            del self._reaped[cid]
        return reaped
