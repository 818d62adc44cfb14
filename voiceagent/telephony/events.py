"""Typed FreeSWITCH events and the hangup-cause → call-outcome table.

``parse(event)`` turns an :class:`eslwire.Event` into one of the dataclasses below.  It never
raises: an event it cannot make sense of (unknown type, bad JSON body, a missing header
that the type needs) becomes a :class:`GenericEvent` with ``problem`` set, and a log line.
Every typed event keeps the wire event in ``raw`` for anything not modelled here.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from voiceagent.telephony import eslwire

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- outcomes
ANSWERED = "answered"
BUSY = "busy"
NO_ANSWER = "no_answer"
REJECTED = "rejected"
INVALID_NUMBER = "invalid_number"
FAILED = "failed"
OUTCOMES = (ANSWERED, BUSY, NO_ANSWER, REJECTED, INVALID_NUMBER, FAILED)

#: Hangup cause (Q.850 names as FreeSWITCH spells them) → outcome of a call that was *not*
#: answered.  An answered call is ``answered`` whatever its cause: the outcome says how the
#: attempt to reach someone went, the cause says how the conversation ended.
#:
#: The buckets follow what a dialer does next:
#:
#: * ``busy``: the callee's line is in use (SIP 486/600) — retry in a few minutes.
#: * ``no_answer``: it rang (or could have) and nobody picked up, or the callee is
#:   momentarily unreachable, or the attempt was abandoned while ringing (our
#:   originate_timeout → NO_ANSWER; a SIP 480 → NO_USER_RESPONSE; a CANCEL →
#:   ORIGINATOR_CANCEL, which is also what an inbound caller hanging up before we answer
#:   gives; an unanswered NORMAL_CLEARING / MANAGER_REQUEST / ALLOTTED_TIMEOUT is such an
#:   abandonment too) — retry later.
#: * ``rejected``: the callee (not the network) declined: SIP 603 → CALL_REJECTED, or barred
#:   incoming calls — do not retry soon.
#: * ``invalid_number``: the number cannot be reached as dialled (SIP 404/484/…) — fix the
#:   number, never retry as is.
#: * ``failed``: everything else — our side or the network failed (bad/down gateway, 408 →
#:   RECOVERY_ON_TIMER_EXPIRE, 503 → NORMAL_TEMPORARY_FAILURE, congestion, codec
#:   mismatch, no progress at all).  This is also the default for causes not listed, so an
#:   unknown cause is never mistaken for a person's decision.
HANGUP_OUTCOMES: Dict[str, str] = {
    "USER_BUSY": BUSY,
    "NO_ANSWER": NO_ANSWER,
    "NO_USER_RESPONSE": NO_ANSWER,
    "ORIGINATOR_CANCEL": NO_ANSWER,
    "SUBSCRIBER_ABSENT": NO_ANSWER,
    "USER_NOT_REGISTERED": NO_ANSWER,
    "ALLOTTED_TIMEOUT": NO_ANSWER,
    "NORMAL_CLEARING": NO_ANSWER,
    "MANAGER_REQUEST": NO_ANSWER,
    "LOSE_RACE": NO_ANSWER,
    "PICKED_OFF": NO_ANSWER,
    "CALL_REJECTED": REJECTED,
    "INCOMING_CALL_BARRED": REJECTED,
    "UNALLOCATED_NUMBER": INVALID_NUMBER,
    "INVALID_NUMBER_FORMAT": INVALID_NUMBER,
    "NO_ROUTE_DESTINATION": INVALID_NUMBER,
    "NO_ROUTE_TRANSIT_NET": INVALID_NUMBER,
    "NUMBER_CHANGED": INVALID_NUMBER,
    # Listed for documentation; unlisted causes are FAILED anyway.
    "INVALID_GATEWAY": FAILED,
    "GATEWAY_DOWN": FAILED,
    "NORMAL_TEMPORARY_FAILURE": FAILED,
    "RECOVERY_ON_TIMER_EXPIRE": FAILED,
    "DESTINATION_OUT_OF_ORDER": FAILED,
    "NETWORK_OUT_OF_ORDER": FAILED,
    "NORMAL_CIRCUIT_CONGESTION": FAILED,
    "SWITCH_CONGESTION": FAILED,
    "SERVICE_UNAVAILABLE": FAILED,
    "PROGRESS_TIMEOUT": FAILED,
    "MEDIA_TIMEOUT": FAILED,
    "INCOMPATIBLE_DESTINATION": FAILED,
    "BEARERCAPABILITY_NOTAVAIL": FAILED,
    "OUTGOING_CALL_BARRED": FAILED,
    "FACILITY_REJECTED": FAILED,
    "CHAN_NOT_IMPLEMENTED": FAILED,
    "INVALID_PROFILE": FAILED,
    "INVALID_URL": FAILED,
    "SYSTEM_SHUTDOWN": FAILED,
    "NORMAL_UNSPECIFIED": FAILED,
}


def hangup_outcome(cause: Optional[str], answered: bool = False) -> str:
    """Outcome of a call attempt: ``answered`` if it was answered, else by the cause table."""
    if answered:
        return ANSWERED
    return HANGUP_OUTCOMES.get((cause or "").strip().upper(), FAILED)


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class EslEvent:
    """Common to all: ``uuid`` (Unique-ID, '' if none), ``node`` (FreeSWITCH-Switchname),
    ``timestamp`` (Event-Date-Timestamp, µs since the epoch, 0 if missing)."""

    name: str
    uuid: str
    node: str
    timestamp: int
    raw: eslwire.Event = field(repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class GenericEvent(EslEvent):
    """Anything not modelled, or malformed (``problem`` says what was wrong)."""

    subclass: str = ""
    problem: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelEvent(EslEvent):
    caller: str = ""  # Caller-Caller-ID-Number
    destination: str = ""  # Caller-Destination-Number
    direction: str = ""  # Call-Direction: inbound|outbound
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
class ChannelHangup(ChannelEvent):
    cause: str = ""
    answered: bool = False  # Caller-Channel-Answered-Time was set

    @property
    def outcome(self) -> str:
        return hangup_outcome(self.cause, self.answered)


@dataclass(frozen=True, kw_only=True)
class ChannelHangupComplete(ChannelHangup):
    pass


@dataclass(frozen=True, kw_only=True)
class ChannelDestroy(ChannelEvent):
    cause: str = ""  # absent on the N/A channel of a failed gateway originate


@dataclass(frozen=True, kw_only=True)
class Execute(ChannelEvent):
    application: str = ""
    data: str = ""
    app_uuid: str = ""  # Application-UUID: the only reliable correlation for sendmsg


@dataclass(frozen=True, kw_only=True)
class ExecuteComplete(Execute):
    response: str = ""  # Application-Response; beware a stale FILE PLAYED on park


@dataclass(frozen=True, kw_only=True)
class PlaybackStart(EslEvent):
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class PlaybackStop(EslEvent):
    path: str = ""
    status: str = ""  # done|break (done also on hangup during playback)


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


_CHANNEL_TYPES = {
    "CHANNEL_CREATE": ChannelCreate,
    "CHANNEL_ANSWER": ChannelAnswer,
    "CHANNEL_PARK": ChannelPark,
}
_FORK_TYPES = {
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
    )


def _channel(ev: eslwire.Event) -> Dict[str, Any]:
    if not ev.get("Unique-ID"):
        raise _Malformed("channel event without Unique-ID")
    d = _common(ev)
    d.update(
        caller=ev.get("Caller-Caller-ID-Number", "") or "",
        destination=ev.get("Caller-Destination-Number", "") or "",
        direction=ev.get("Call-Direction", "") or "",
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
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        cls = ChannelHangup if name == "CHANNEL_HANGUP" else ChannelHangupComplete
        return cls(**_channel(ev), cause=ev.get("Hangup-Cause", "") or "", answered=_answered(ev))
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
        cls = MediaBugStart if name == "MEDIA_BUG_START" else MediaBugStop
        return cls(**_common(ev), function=ev.get("Media-Bug-Function", "") or "",
                   target=ev.get("Media-Bug-Target", "") or "")
    if name == "CUSTOM" and ev.subclass in _FORK_TYPES:
        _require(ev, "Unique-ID")
        cls = _FORK_TYPES[ev.subclass]
        body = _body_json(ev)
        kw = dict(_common(ev), subclass=ev.subclass, json=body)
        if cls is ForkConnectFailed:
            return cls(**kw, reason=str(body.get("reason", "")))
        if cls is ForkPlayAudio:
            if not body.get("file"):
                raise _Malformed("play_audio without a file")
            return cls(**kw, file=str(body["file"]))
        return cls(**kw)
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
