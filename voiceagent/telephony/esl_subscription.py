"""What the shared control connection subscribes to, and the commands it must never send."""
from __future__ import annotations

from typing import Iterable, List, Tuple

#: mod_audio_fork's CUSTOM subclasses (drachtio build, protocols.md B6).
FORK_SUBCLASSES: Tuple[str, ...] = (
    "mod_audio_fork::connect",
    "mod_audio_fork::connect_failed",
    "mod_audio_fork::disconnect",
    "mod_audio_fork::play_audio",
    "mod_audio_fork::kill_audio",
    "mod_audio_fork::buffer_overrun",
    "mod_audio_fork::error",
    "mod_audio_fork::json",
)

#: What the agent listens to. ``CUSTOM`` swallows every later token as a subclass, so plain
#: names come first (see :func:`subscription_command`).
DEFAULT_EVENTS: Tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_PARK",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "DTMF",
    "BACKGROUND_JOB",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CUSTOM",
) + FORK_SUBCLASSES

# Connection-level commands that would break this shared connection: ``myevents`` ties the
# socket to one channel (FS closes it at hangup), ``nixevent`` after ALL silently drops
# unreserved CUSTOM subclasses (traces discrepancy 13), ``noevents``/non-plain formats
# would starve the owners or break parsing, ``exit`` is stop()'s job.
FORBIDDEN = ("myevents", "nixevent", "noevents", "event json", "event xml", "exit", "linger", "nolinger",
             "divert_events")


def subscription_command(events: Iterable[str]) -> str:
    """``event plain <names> CUSTOM <subclasses>``: every subclass after the one CUSTOM token."""
    names: List[str] = []
    subs: List[str] = []
    custom = False
    for ev in events:
        ev = ev.strip()
        if not ev:
            continue
        if any(c.isspace() for c in ev):
            raise ValueError(f"event name with whitespace: {ev!r}")
        if ev == "CUSTOM":
            custom = True
        elif "::" in ev:
            custom = True
            if ev not in subs:
                subs.append(ev)
        elif ev not in names:
            names.append(ev)
    if "BACKGROUND_JOB" not in names and "ALL" not in names:
        names.append("BACKGROUND_JOB")  # bgapi results depend on it
    parts = ["event plain"] + names
    if custom:
        parts += ["CUSTOM"] + subs
    return " ".join(parts)


def check_one_line(text: str, what: str = "command") -> None:
    if "\n" in text or "\r" in text:
        raise ValueError(f"ESL {what} must be one line (no CR/LF): {text[:80]!r}")
    if not text.strip():
        raise ValueError(f"empty ESL {what}")
