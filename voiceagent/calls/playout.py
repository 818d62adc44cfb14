"""What a call plays to the caller, in both playback modes.

* **upload** (the default while the fork is open): the WAV goes to FreeSWITCH over the fork as a
  ``playAudio`` message; mod_audio_fork stores it and reports the temp file (``play_audio``), which
  is then ``uuid_broadcast``.  Uploads are matched to those reports in order.
* **shared** (``PLAYBACK_MODE=shared``, or no open fork): the WAV is written to ``PLAYBACK_DIR``,
  which FreeSWITCH reads under the same path, and broadcast at once; the file is deleted at cleanup.

Either way a :class:`Playback` follows the file through PLAYBACK_START → PLAYBACK_STOP /
EXECUTE_COMPLETE, and the watchdog (``playback.expire``) finishes it if those events are lost.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Deque, Dict, List

from ..observability import metrics
from ..speech.audio import wav_encode
from .playback import Playback, PlaybackStatus, expire, to_playable, wav_seconds

if TYPE_CHECKING:  # pragma: no cover
    from .session import CallSession

log = logging.getLogger(__name__)
P = PlaybackStatus


class Playout:
    """The playbacks of one call."""

    def __init__(self, sess: "CallSession") -> None:
        self.sess = sess
        self.playbacks: List[Playback] = []
        self._uploads: Deque[Playback] = deque()   # sent as playAudio, waiting for ::play_audio
        self._by_file: Dict[str, Playback] = {}
        self._files: List[str] = []

    @property
    def speaking(self) -> bool:
        return any(not p.done for p in self.playbacks)

    # ------------------------------------------------------------------ out
    def play(self, pcm: bytes, rate: int, text: str = "") -> Playback:
        sess = self.sess
        pcm, rate = to_playable(pcm, rate, sess.sample_rate)
        pb = Playback(text=text, duration=len(pcm) / 2 / rate)
        self.playbacks.append(pb)
        if sess.ended.is_set():
            pb._finish(P.CANCELLED)
            return pb
        settings = sess.worker.settings
        fork = sess.fork
        metrics.AUDIO_SENT_BYTES.inc(len(pcm))
        if settings.playback_mode == "shared" or fork is None or fork.closed:
            path = os.path.join(str(settings.playback_dir), f"{sess.id}-{pb.id}.wav")
            tmp = path + ".part"
            with open(tmp, "wb") as f:
                f.write(wav_encode(pcm, rate))
            os.replace(tmp, path)  # FreeSWITCH must never see a half-written file
            self._files.append(path)
            self._broadcast(pb, path)
        else:
            self._uploads.append(pb)
            try:
                fork.send_play_audio(pcm, sample_rate=rate, content_type="wav", text=text or None)
            except Exception as exc:  # the socket died under us: the watchdog handles the fork
                log.warning("playAudio send failed: %s", exc)
                self._uploads.remove(pb)
                pb._finish(P.FAILED)
        return pb

    def play_file(self, path: str, text: str = "") -> Playback:
        pb = Playback(text=text, duration=wav_seconds(path))
        self.playbacks.append(pb)
        self._broadcast(pb, path)
        return pb

    def stop(self) -> bool:
        """Barge-in: stop what plays, drop what is queued. Returns whether anything was stopped."""
        sess = self.sess
        active = [p for p in self.playbacks if not p.done]
        if not active:
            return False
        for p in list(self._uploads):
            p._finish(P.CANCELLED)
        self._uploads.clear()
        sess.barge_ins.append(time.monotonic())
        sess.node.fs_async("break_playback", sess.id, all=True)
        fork = sess.fork
        if fork is not None and not fork.closed:
            try:
                fork.send_kill_audio()
            except Exception as exc:
                log.debug("killAudio not sent: %s", exc)
        for p in active:
            p.paused_since = None  # uuid_break ends a paused file too
            if p.status in (P.PENDING, P.HANDED):
                p._finish(P.CANCELLED)
        return True

    def pause(self) -> bool:
        """Barge-in onset: pause the file now playing (``uuid_fileman pause``, both playback modes: an
        uploaded file is broadcast too).  Blocks for FreeSWITCH's reply, so call it from its own
        greenlet; False when nothing was paused (no file playing yet, or FreeSWITCH said no)."""
        from ..telephony.esl_errors import EslError

        playing = [p for p in self.playbacks if p.status == P.PLAYING and not p.done]
        if not playing:
            return False
        try:
            self.sess.node.fs.pause_playback(self.sess.id)
        except (EslError, OSError, ValueError) as exc:  # between two files, or the line is down
            log.info("pause not done: %s", exc)
            return False
        now = time.monotonic()
        for p in playing:
            p.paused_since = now
        return True

    def resume(self) -> bool:
        """A false alarm: the second ``uuid_fileman pause`` resumes the paused file where it stopped."""
        from ..telephony.esl_errors import EslError

        paused = [p for p in self.playbacks if p.paused_since is not None]
        if not paused:
            return False
        now = time.monotonic()
        for p in paused:
            p.paused_s += now - (p.paused_since or now)
            p.paused_since = None
        if all(p.done for p in paused):
            return False  # it was broken or hung up meanwhile: nothing to resume (and a toggle would pause the next)
        try:
            self.sess.node.fs.pause_playback(self.sess.id)
        except (EslError, OSError, ValueError) as exc:
            log.info("resume not done: %s", exc)
            return False
        return True

    def _broadcast(self, pb: Playback, path: str) -> None:
        pb.file = path
        pb.status = P.HANDED
        pb.handed_at = time.monotonic()
        self._by_file[path] = pb
        self.sess.node.fs_async("broadcast", self.sess.id, path, on_error=lambda exc: pb._finish(P.FAILED))

    # ------------------------------------------------------------------ what FreeSWITCH reports
    def stored(self, path: str) -> None:
        """mod_audio_fork stored the oldest upload as ``path``: broadcast it."""
        if not self._uploads:
            log.warning("play_audio for a file we did not send: %s", path)
            return
        pb = self._uploads.popleft()
        if pb.done:  # cancelled by barge-in while uploading
            return
        self._broadcast(pb, path)

    def started(self, path: str) -> None:
        pb = self._by_file.get(path)
        if pb and not pb.done:
            pb.status = P.PLAYING
            pb.started_at = time.monotonic()
            pb.started.set()
            if pb.handed_at is not None:
                metrics.PLAYBACK_LATENCY.observe(pb.started_at - pb.handed_at)

    def stopped(self, path: str, broken: bool) -> None:
        pb = self._by_file.get(path)
        if pb:
            pb._finish(P.BREAK if broken else P.DONE)

    def executed(self, path: str, failed: bool, response: str) -> None:
        pb = self._by_file.get(path)
        if pb and not pb.done:
            pb._finish(P.FAILED if failed else P.DONE)
            if pb.status == P.FAILED:
                log.warning("playback of %s failed: %s", pb.file, response)

    # ------------------------------------------------------------------ endings
    def hung_up(self) -> None:
        for p in self.playbacks:
            p._finish(P.DONE if p.status == P.PLAYING else P.CANCELLED)

    def expire(self, now: float, margin: float) -> int:
        """Playback watchdog (see ``playback.expire``); ``margin`` s past each playback's expected end."""
        return expire(self.playbacks, self._uploads, now, margin)

    def close(self) -> None:
        for p in self.playbacks:
            p._finish(P.CANCELLED)
        for path in self._files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)

