"""What the agent says to the caller: one ``Playback`` per piece of audio, and its watchdog.

A Playback's state comes from FreeSWITCH's events (PLAYBACK_START/STOP, EXECUTE_COMPLETE); when
those are lost (an ESL outage) the watchdog finishes it ``PLAYBACK_MARGIN_SECONDS`` after its
audio should have ended, so neither the dialog nor a greeting call waits for an event that will
never come.
"""
from __future__ import annotations

import enum
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Deque, Iterator, List, Optional, Tuple

from .flags import Flag

log = logging.getLogger(__name__)

_playback_ids = itertools.count(1)
UNKNOWN_PLAYBACK_SECONDS = 300.0  # watchdog length of a file whose duration we cannot read


class PlaybackStatus(str, enum.Enum):
    """pending → handed → playing → done | break | failed | cancelled (a str: compares equal to its value)."""

    PENDING = "pending"      # queued (upload mode: sent as playAudio, FreeSWITCH has not stored it yet)
    HANDED = "handed"        # uuid_broadcast sent
    PLAYING = "playing"      # PLAYBACK_START seen
    BREAK = "break"          # stopped by uuid_break (barge-in)
    DONE = "done"            # played to its end (or its end passed with the events lost)
    CANCELLED = "cancelled"  # never played: dropped by barge-in or the hangup
    FAILED = "failed"        # FreeSWITCH could not play it


P = PlaybackStatus


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
    status: PlaybackStatus = PlaybackStatus.PENDING
    expired: bool = False        # finished by the watchdog: FreeSWITCH never said (events lost)
    requested_at: float = field(default_factory=time.monotonic)
    handed_at: Optional[float] = None
    started_at: Optional[float] = None
    ended_at: Optional[float] = None
    paused_s: float = 0.0        # time spent paused (uuid_fileman pause): its end moves that much later
    paused_since: Optional[float] = None
    started: Flag = field(default_factory=Flag, repr=False)
    finished: Flag = field(default_factory=Flag, repr=False)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def _finish(self, status: PlaybackStatus) -> None:
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
        if p.paused_since is not None or now < since + length + p.paused_s + margin:
            continue
        if p in uploads:
            uploads.remove(p)
        p.expired = True
        p._finish(P.DONE if p.handed_at is not None else P.FAILED)
        expired += 1
        log.warning("playback %d (%.1fs, %s) not reported finished by FreeSWITCH: marked %s", p.id, p.duration,
                    p.file or "upload", p.status)
    return expired


class ReplyStatus(str, enum.Enum):
    QUEUED = "queued"            # nothing has started playing yet
    PLAYING = "playing"
    DONE = "done"                # every sentence was heard
    INTERRUPTED = "interrupted"  # the caller barged in (or a new turn took over)
    FAILED = "failed"            # FreeSWITCH played none of it


class Reply:
    """One agent reply: the playbacks of its sentences, as one handle (what the caller heard of it)."""

    def __init__(self) -> None:
        self.parts: List[Tuple[str, Playback]] = []
        self.interrupted = False
        # for the turn's timings: the first playback the caller hears (an acknowledgement or the answer's
        # first sentence) and, after an acknowledgement, the answer's own first one
        self.first: Optional[Playback] = None
        self.answer: Optional[Playback] = None

    def add(self, text: str, pb: Playback) -> None:
        self.parts.append((text, pb))

    def __bool__(self) -> bool:  # "has anything been said yet"
        return bool(self.parts)

    def __iter__(self) -> Iterator[Tuple[str, Playback]]:
        return iter(self.parts)

    @property
    def playbacks(self) -> List[Playback]:
        return [pb for _, pb in self.parts]

    @property
    def status(self) -> ReplyStatus:
        pbs = self.playbacks
        if self.interrupted:
            return ReplyStatus.INTERRUPTED
        if any(p.status == P.PLAYING for p in pbs):
            return ReplyStatus.PLAYING
        if pbs and all(p.done for p in pbs):
            if all(p.status in (P.FAILED, P.CANCELLED) for p in pbs):
                return ReplyStatus.FAILED
            return ReplyStatus.DONE
        if any(p.started_at for p in pbs):
            return ReplyStatus.PLAYING
        return ReplyStatus.QUEUED

    def heard(self) -> Tuple[List[str], Optional[str]]:
        """(sentences heard whole, the sentence cut off or None): the history keeps only what was heard."""
        heard: List[str] = []
        for text, pb in self.parts:
            if pb.status == P.DONE:
                heard.append(text)
            elif pb.status in (P.BREAK, P.PLAYING) or pb.started_at:
                return heard, text
            else:
                break
        return heard, None
