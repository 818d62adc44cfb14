"""What the agent says to the caller: one ``Playback`` per piece of audio, and its watchdog.

A Playback's state comes from FreeSWITCH's events (PLAYBACK_START/STOP, EXECUTE_COMPLETE); when
those are lost (an ESL outage) the watchdog finishes it ``PLAYBACK_MARGIN_SECONDS`` after its
audio should have ended, so neither the dialog nor a greeting call waits for an event that will
never come.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Tuple

from .flags import Flag

log = logging.getLogger(__name__)

_playback_ids = itertools.count(1)
UNKNOWN_PLAYBACK_SECONDS = 300.0  # watchdog length of a file whose duration we cannot read


@dataclass
class Playback:
    """One piece of audio handed to FreeSWITCH, and what became of it.

    ``handed_at`` is when ``uuid_broadcast`` was sent, ``started_at`` when FreeSWITCH
    reported PLAYBACK_START: the gap is FreeSWITCH's own latency (upload + temp file in
    upload mode, ~160–180 ms in the traces).
    """

    text: str = ""
    duration: float = 0.0
    id: int = field(default_factory=lambda: next(_playback_ids))
    file: str = ""
    status: str = "pending"      # pending → handed → playing → done | break | failed | cancelled
    expired: bool = False        # finished by the watchdog: FreeSWITCH never said (events lost)
    requested_at: float = field(default_factory=time.monotonic)
    handed_at: Optional[float] = None
    started_at: Optional[float] = None
    ended_at: Optional[float] = None
    started: Flag = field(default_factory=Flag, repr=False)
    finished: Flag = field(default_factory=Flag, repr=False)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def _finish(self, status: str) -> None:
        if not self.finished.is_set():
            self.status = status
            self.ended_at = time.monotonic()
            self.started.set()
            self.finished.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.finished.wait(timeout)


def to_playable(pcm: bytes, rate: int, call_rate: int) -> Tuple[bytes, int]:
    """FreeSWITCH plays raw audio only at 8/16 kHz: resample anything else to the call's rate."""
    if rate in (8000, 16000):
        return pcm, rate
    from ..speech.audio import resample_pcm16

    return resample_pcm16(pcm, rate, call_rate), call_rate


def wav_seconds(path: str) -> float:
    """Duration of a WAV we can read here (0.0 = unknown: FreeSWITCH's host may differ, or not a WAV)."""
    import wave

    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return 0.0


def expire(playbacks: List[Playback], uploads: Deque[Playback], now: float, margin: float) -> int:
    """Finish every playback FreeSWITCH should have finished playing ``margin`` s ago.

    A broadcast file counts as heard ('done'); an upload FreeSWITCH never confirmed (no
    ``::play_audio``, so never broadcast) was not played ('failed').  Returns how many.
    """
    expired = 0
    for p in list(playbacks):
        if p.done:
            continue
        since = p.handed_at if p.handed_at is not None else p.requested_at
        length = p.duration if p.duration > 0 else UNKNOWN_PLAYBACK_SECONDS
        if now < since + length + margin:
            continue
        if p in uploads:
            uploads.remove(p)
        p.expired = True
        p._finish("done" if p.handed_at is not None else "failed")
        expired += 1
        log.warning("playback %d (%.1fs, %s) not reported finished by FreeSWITCH: marked %s", p.id, p.duration,
                    p.file or "upload", p.status)
    return expired
