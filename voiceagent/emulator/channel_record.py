"""``uuid_record`` on a channel: mod_commands' session recording (switch_ivr_record_session).

As FreeSWITCH does, the file holds both legs mixed into one (the caller's speech, and what the
caller heard of each playback: a cut-off file ends where it was cut) at the channel's codec rate,
from ``start`` until ``stop`` or hangup, and the recording is a media bug: MEDIA_BUG_START
(``session_record``) and RECORD_START at the start, RECORD_STOP and MEDIA_BUG_STOP when the file
is closed.  The caller's leg is what the emulated caller said through the fork.
"""
from __future__ import annotations

import logging
import os
import wave
from typing import Dict, Tuple

import numpy as np

from . import media

log = logging.getLogger(__name__)

BUG = "session_record"


class ChannelRecording:
    """Mixed into :class:`~.channel.Channel`: its recordings (path -> (call time started, limit s))."""

    _recordings: Dict[str, Tuple[float, float]]

    def record_start(self, path: str, limit: float = 0.0) -> bool:
        """False when the file cannot be opened (FreeSWITCH: ``-ERR Cannot record session!``)."""
        if self.hangup_cause or path in self._recordings:
            return False
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "wb"):
                pass  # FreeSWITCH opens the file when the recording starts
        except OSError as exc:
            log.info("uuid_record %s: cannot open %s: %s", self.uuid, path, exc)
            return False
        self._recordings[path] = (self.call_time(), max(0.0, limit))
        self.fire("MEDIA_BUG_START", {"Media-Bug-Function": BUG, "Media-Bug-Target": path})
        self.fire("RECORD_START", {"Record-File-Path": path})
        return True

    def recording(self, path: str) -> bool:
        """A recording into ``path`` is running."""
        return path in self._recordings

    def record_stop(self, path: str) -> bool:
        """Stop one recording (``all``: every one); False when none matches."""
        paths = list(self._recordings) if path == "all" else [p for p in (path,) if p in self._recordings]
        for p in paths:
            self._close_recording(p, "success")
        return bool(paths)

    def close_recordings(self) -> None:
        """Hangup: every recording is closed (before the channel's other media bugs go)."""
        for p in list(self._recordings):
            self._close_recording(p, "success")

    def _close_recording(self, path: str, cause: str) -> None:
        start, limit = self._recordings.pop(path)
        end = self.call_time()
        if limit:
            end = min(end, start + limit)
        try:
            self._write_recording(path, start, end)
        except OSError as exc:
            log.warning("uuid_record %s: writing %s failed: %s", self.uuid, path, exc)
        self.fire("RECORD_STOP", {"Record-File-Path": path, "Record-Completion-Cause": cause})
        self.fire("MEDIA_BUG_STOP", {"Media-Bug-Function": BUG, "Media-Bug-Target": path})

    def _write_recording(self, path: str, start: float, end: float) -> None:
        rate = media.HEARD_RATE
        mix = np.zeros(max(0, int((end - start) * rate)), dtype=np.int32)

        def add(at: float, pcm: np.ndarray) -> None:
            i = int((at - start) * rate)
            if i < 0:
                pcm, i = pcm[-i:], 0
            n = min(len(pcm), len(mix) - i)
            if n > 0:
                mix[i:i + n] += pcm[:n]

        for at, pcm16 in self._heard:
            add(at, pcm16)
        for fork in self.forks.values():
            audio = getattr(fork, "audio", None)
            for at, raw in getattr(audio, "spoken", []):
                add(at, media._to_heard_rate(np.frombuffer(bytes(raw), dtype="<i2"), audio.sample_rate))
        out = np.clip(mix, -32768, 32767).astype(np.int16)
        codec_rate = self.codec[1] if self.codec else 8000
        if codec_rate != rate and len(out):
            import soxr

            out = np.clip(soxr.resample(out.astype(np.float32) / 32768.0, rate, codec_rate) * 32768.0,
                          -32768, 32767).astype(np.int16)
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(codec_rate)
            w.writeframes(out.astype("<i2").tobytes())
