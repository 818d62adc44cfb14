"""Typed FreeSWITCH events: the only place outside telephony/ that sees FreeSWITCH's event dialect.

``parse(event)`` turns an :class:`eslwire.Event` into one of the dataclasses below.  It never
raises: an event it cannot make sense of (unknown type, bad JSON body, a missing header
that the type needs) becomes a :class:`GenericEvent` with ``problem`` set, and a log line.
Every typed event keeps the wire event in ``raw`` for anything not modelled here.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Type

from voiceagent.telephony import eslwire
from voiceagent.telephony.outcomes import (  # noqa: F401 - re-exported: the outcome table lived here
    ANSWERED,
    BUSY,
    FAILED,
    HANGUP_OUTCOMES,
    INVALID_NUMBER,
    NO_ANSWER,
    OUTCOMES,
    REJECTED,
    hangup_outcome,
)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class EslEvent:
    """Common to all: ``uuid`` (Unique-ID, '' if none), ``node`` (FreeSWITCH-Switchname),
    ``timestamp`` (Event-Date-Timestamp, µs since the epoch, 0 if missing), and the channel data
    every channel-bound event carries ('' when absent)."""

    name: str
    uuid: str
    node: str
    timestamp: int
    raw: eslwire.Event = field(repr=False, compare=False)
    caller: str = ""  # Caller-Caller-ID-Number
    destination: str = ""  # Caller-Destination-Number
    direction: str = ""  # Call-Direction: inbound|outbound


@dataclass(frozen=True, kw_only=True)
class GenericEvent(EslEvent):
    """Anything not modelled, or malformed (``problem`` says what was wrong)."""

    subclass: str = ""
    problem: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelEvent(EslEvent):
    answer_state: str = ""  # ringing|early|answered|hangup
    channel_name: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelCreate(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ChannelAnswer(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ChannelPark(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ChannelProgress(ChannelEvent):
    """CHANNEL_PROGRESS (a 180: it rings) or CHANNEL_PROGRESS_MEDIA (183: early media)."""

    media: bool = False


@dataclass(frozen=True, kw_only=True)
class ChannelEnd(ChannelEvent):
    """The channel is going or gone (hangup, hangup complete, destroy)."""

    cause: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelHangup(ChannelEnd):
    answered: bool = False  # Caller-Channel-Answered-Time was set

    @property
    def outcome(self) -> str:
        return hangup_outcome(self.cause, self.answered)


@dataclass(frozen=True, kw_only=True)
class ChannelHangupComplete(ChannelHangup):
    pass


@dataclass(frozen=True, kw_only=True)
class ChannelDestroy(ChannelEnd):
    """``cause`` is absent on the N/A channel of a failed gateway originate."""


@dataclass(frozen=True, kw_only=True)
class Execute(ChannelEvent):
    application: str = ""
    data: str = ""
    app_uuid: str = ""  # Application-UUID: the only reliable correlation for sendmsg


@dataclass(frozen=True, kw_only=True)
class ExecuteComplete(Execute):
    response: str = ""  # Application-Response; beware a stale FILE PLAYED on park

    @property
    def playback_file(self) -> str:
        """The file of a finished ``playback`` application ('' for any other application)."""
        return self.data if self.application == "playback" else ""

    @property
    def playback_failed(self) -> bool:
        return self.response in ("FILE NOT FOUND", "PLAYBACK ERROR")


@dataclass(frozen=True, kw_only=True)
class PlaybackStart(EslEvent):
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class PlaybackStop(EslEvent):
    path: str = ""
    status: str = ""  # done|break (done also on hangup during playback)

    @property
    def broken(self) -> bool:
        """Stopped by uuid_break (a barge-in), not played to its end."""
        return self.status == "break"


@dataclass(frozen=True, kw_only=True)
class Dtmf(EslEvent):
    digit: str = ""
    duration: int = 0  # samples
    source: str = ""  # RTP|INBAND_AUDIO|ENDPOINT|APP|UNKNOWN


@dataclass(frozen=True, kw_only=True)
class BackgroundJob(EslEvent):
    job_uuid: str = ""
    command: str = ""
    args: str = ""
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.body.startswith("+OK")


@dataclass(frozen=True, kw_only=True)
class MediaBugStart(EslEvent):
    function: str = ""  # the bug name, e.g. audio_fork
    target: str = ""


@dataclass(frozen=True, kw_only=True)
class MediaBugStop(MediaBugStart):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkEvent(EslEvent):
    """A ``mod_audio_fork::*`` CUSTOM event; ``json`` is its decoded body ({} if none)."""

    subclass: str = ""
    json: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ForkConnect(ForkEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkConnectFailed(ForkEvent):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ForkDisconnect(ForkEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkPlayAudio(ForkEvent):
    file: str = ""  # the temp file FreeSWITCH wrote; uuid_broadcast it


@dataclass(frozen=True, kw_only=True)
class ForkKillAudio(ForkEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkBufferOverrun(ForkEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkError(ForkEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ForkJson(ForkEvent):
    pass


_CHANNEL_TYPES: Dict[str, Type[ChannelEvent]] = {
    "CHANNEL_CREATE": ChannelCreate,
    "CHANNEL_ANSWER": ChannelAnswer,
    "CHANNEL_PARK": ChannelPark,
}
_PROGRESS = ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA")


def worker_subscription() -> Tuple[str, ...]:
    """The events a voice worker subscribes to: the ESL client's defaults plus call progress (an
    outbound call's RINGING), before ``CUSTOM`` (which takes every later token as a subclass)."""
    from voiceagent.telephony.esl import DEFAULT_EVENTS

    i = DEFAULT_EVENTS.index("CUSTOM")
    return DEFAULT_EVENTS[:i] + _PROGRESS + DEFAULT_EVENTS[i:]


_FORK_TYPES: Dict[str, Type[ForkEvent]] = {
    "mod_audio_fork::connect": ForkConnect,
    "mod_audio_fork::connect_failed": ForkConnectFailed,
    "mod_audio_fork::disconnect": ForkDisconnect,
    "mod_audio_fork::play_audio": ForkPlayAudio,
    "mod_audio_fork::kill_audio": ForkKillAudio,
    "mod_audio_fork::buffer_overrun": ForkBufferOverrun,
    "mod_audio_fork::error": ForkError,
    "mod_audio_fork::json": ForkJson,
}


class _Malformed(ValueError):
    pass


def _int(value: Optional[str]) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _common(ev: eslwire.Event) -> Dict[str, Any]:
    return dict(
        name=ev.name,
        uuid=ev.get("Unique-ID", "") or "",
        node=ev.get("FreeSWITCH-Switchname", "") or "",
        timestamp=_int(ev.get("Event-Date-Timestamp")),
        raw=ev,
        caller=ev.get("Caller-Caller-ID-Number", "") or "",
        destination=ev.get("Caller-Destination-Number", "") or "",
        direction=ev.get("Call-Direction", "") or "",
    )


def _channel(ev: eslwire.Event) -> Dict[str, Any]:
    if not ev.get("Unique-ID"):
        raise _Malformed("channel event without Unique-ID")
    d = _common(ev)
    d.update(
        answer_state=ev.get("Answer-State", "") or "",
        channel_name=ev.get("Channel-Name", "") or "",
    )
    return d


def _require(ev: eslwire.Event, *names: str) -> None:
    missing = [n for n in names if not ev.get(n)]
    if missing:
        raise _Malformed(f"missing header(s) {', '.join(missing)}")


def _answered(ev: eslwire.Event) -> bool:
    t = ev.get("Caller-Channel-Answered-Time")
    if t is not None:
        return _int(t) > 0
    return _int(ev.get("variable_answer_epoch")) > 0


def _body_json(ev: eslwire.Event) -> Dict[str, Any]:
    if not ev.body.strip():
        return {}
    try:
        value = json.loads(ev.body)
    except ValueError as exc:
        raise _Malformed(f"body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _Malformed("body JSON is not an object")
    return value


def _parse(ev: eslwire.Event) -> EslEvent:
    name = ev.name
    if name in _CHANNEL_TYPES:
        return _CHANNEL_TYPES[name](**_channel(ev))
    if name in _PROGRESS:
        return ChannelProgress(**_channel(ev), media=name == "CHANNEL_PROGRESS_MEDIA")
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        hangup: Type[ChannelHangup] = ChannelHangup if name == "CHANNEL_HANGUP" else ChannelHangupComplete
        return hangup(**_channel(ev), cause=ev.get("Hangup-Cause", "") or "", answered=_answered(ev))
    if name == "CHANNEL_DESTROY":
        return ChannelDestroy(**_channel(ev), cause=ev.get("Hangup-Cause", "") or "")
    if name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        _require(ev, "Application")
        kw = dict(_channel(ev), application=ev["Application"], data=ev.get("Application-Data", "") or "",
                  app_uuid=ev.get("Application-UUID", "") or "")
        if name == "CHANNEL_EXECUTE":
            return Execute(**kw)
        return ExecuteComplete(**kw, response=ev.get("Application-Response", "") or "")
    if name in ("PLAYBACK_START", "PLAYBACK_STOP"):
        _require(ev, "Unique-ID")
        path = ev.get("Playback-File-Path", "") or ""
        if name == "PLAYBACK_START":
            return PlaybackStart(**_common(ev), path=path)
        return PlaybackStop(**_common(ev), path=path, status=ev.get("Playback-Status", "") or "")
    if name == "DTMF":
        _require(ev, "Unique-ID", "DTMF-Digit")
        return Dtmf(**_common(ev), digit=ev["DTMF-Digit"], duration=_int(ev.get("DTMF-Duration")),
                    source=ev.get("DTMF-Source", "") or "")
    if name == "BACKGROUND_JOB":
        _require(ev, "Job-UUID")
        return BackgroundJob(**_common(ev), job_uuid=ev["Job-UUID"], command=ev.get("Job-Command", "") or "",
                             args=ev.get("Job-Command-Arg", "") or "", body=ev.text)
    if name in ("MEDIA_BUG_START", "MEDIA_BUG_STOP"):
        _require(ev, "Unique-ID")
        bug: Type[MediaBugStart] = MediaBugStart if name == "MEDIA_BUG_START" else MediaBugStop
        return bug(**_common(ev), function=ev.get("Media-Bug-Function", "") or "",
                   target=ev.get("Media-Bug-Target", "") or "")
    if name == "CUSTOM" and ev.subclass in _FORK_TYPES:
        _require(ev, "Unique-ID")
        fork = _FORK_TYPES[ev.subclass]
        body = _body_json(ev)
        kw = dict(_common(ev), subclass=ev.subclass, json=body)
        if fork is ForkConnectFailed:
            return ForkConnectFailed(**kw, reason=str(body.get("reason", "")))
        if fork is ForkPlayAudio:
            if not body.get("file"):
                raise _Malformed("play_audio without a file")
            return ForkPlayAudio(**kw, file=str(body["file"]))
        return fork(**kw)
    return GenericEvent(**_common(ev), subclass=ev.subclass)


def parse(event: eslwire.Event) -> EslEvent:
    """Typed view of ``event``; malformed input gives a :class:`GenericEvent` and a log line."""
    try:
        return _parse(event)
    except _Malformed as exc:
        problem = str(exc)
    except Exception as exc:  # a parser bug must not reach the dispatch loop
        problem = f"parser error: {exc!r}"
    try:
        common = _common(event)
    except Exception:
        common = dict(name="", uuid="", node="", timestamp=0, raw=event)
    log.warning("malformed %s event for call %s: %s", event.key or "?", common["uuid"] or "-", problem)
    return GenericEvent(**common, subclass=getattr(event, "subclass", ""), problem=problem)
