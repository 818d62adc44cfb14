"""Typed FreeSWITCH API helpers over one :class:`EslConnection`.

ESL commands are one line split on spaces by FreeSWITCH, so every argument is validated
here (``ValueError`` with a clear message) instead of letting a stray space or newline turn
into a different command.  ``-ERR``/``-USAGE`` replies raise :class:`CommandError`, except
originate, whose failures are outcomes (:class:`OriginateResult`).
"""
from __future__ import annotations

import json
import re
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import gevent.event

from voiceagent.telephony.call_ids import call_uuid as _uuid
from voiceagent.telephony.esl import CommandError, EslConnection
from voiceagent.telephony.events import ANSWERED, FAILED, hangup_outcome

__all__ = ["FreeSwitch", "OriginateResult", "CommandError", "channel_gone"]

_CAUSE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_APP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\([^)\s]*\)$")
_LEGS = ("aleg", "bleg", "holdb", "both")
_MIXES = ("mono", "mixed", "stereo")
_RATES = {8000: "8k", 16000: "16k", 24000: "24000", 32000: "32000", 64000: "64000"}


def channel_gone(exc: BaseException) -> bool:
    """Whether a command failed only because the channel has already hung up (a race, not a fault)."""
    text = str(exc)
    return "No such channel" in text or "invalid uuid" in text


def _token(value: Any, what: str) -> str:
    """One space-free argument (FreeSWITCH splits the command line on spaces)."""
    text = str(value)
    if not text:
        raise ValueError(f"{what} must not be empty")
    if any(c.isspace() for c in text):
        raise ValueError(f"{what} must not contain spaces or newlines (ESL commands are one line): {text!r}")
    return text


def _one_line(value: Any, what: str) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} must not contain newlines (ESL commands are one line): {text[:80]!r}")
    return text


def _is_error(text: str) -> bool:
    return text.startswith("-ERR") or text.startswith("-USAGE")


@dataclass(frozen=True)
class OriginateResult:
    """``outcome`` is one of events.OUTCOMES; ``cause`` the FreeSWITCH cause ('' on success)."""

    uuid: str
    outcome: str
    cause: str
    body: str

    @property
    def ok(self) -> bool:
        return self.outcome == ANSWERED


def parse_originate_reply(call_uuid: str, body: str) -> OriginateResult:
    text = body.strip()
    if text.startswith("+OK"):
        return OriginateResult(uuid=text[3:].strip() or call_uuid, outcome=ANSWERED, cause="", body=body)
    if text.startswith("-ERR"):
        cause = text[4:].strip()
        if _CAUSE_RE.match(cause):
            outcome = hangup_outcome(cause, answered=False)
            return OriginateResult(uuid=call_uuid, outcome=outcome, cause=cause, body=body)
    return OriginateResult(uuid=call_uuid, outcome=FAILED, cause=text or "NO_REPLY", body=body)


#: Slack beyond the ring timeout for an originate's BACKGROUND_JOB, seconds (the ring timer starts
#: when FreeSWITCH runs the job, not when we send it).
ORIGINATE_MARGIN_S = 30.0


def originate_wait(bgapi_timeout: float, ring_timeout: int) -> float:
    """How long an originate waits for its result: BGAPI_TIMEOUT, but never less than the ring
    timeout plus a margin (giving up earlier could leave an answered call that nobody owns)."""
    return max(float(bgapi_timeout), ring_timeout + ORIGINATE_MARGIN_S)


class FreeSwitch:
    """Typed commands on one FreeSWITCH node."""

    def __init__(self, conn: EslConnection) -> None:
        self.conn = conn

    @property
    def node(self) -> str:
        return self.conn.node

    def api(self, cmd: str, timeout: Optional[float] = None) -> str:
        """``api`` that raises :class:`CommandError` on ``-ERR``/``-USAGE``; returns the raw body."""
        body = self.conn.api(cmd, timeout)
        if _is_error(body):
            raise CommandError(cmd, body)
        return body

    # ------------------------------------------------------------------ originate
    def _originate_command(
        self,
        destination: str,
        gateway: Optional[str],
        caller_id_number: Optional[str],
        caller_id_name: Optional[str],
        timeout: int,
        variables: Optional[Mapping[str, Any]],
        app: str,
        call_uuid: Optional[str],
    ) -> Tuple[str, str]:
        call_uuid = _uuid(call_uuid) if call_uuid else str(uuidlib.uuid4())
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 3600:
            raise ValueError(f"originate timeout must be an int of seconds in 1..3600, got {timeout!r}")
        if not _APP_RE.match(app or ""):
            raise ValueError(f"originate app must look like name(args) without spaces or ')': {app!r}")
        dest = _token(destination, "destination")
        if gateway:
            target = f"sofia/gateway/{_token(gateway, 'gateway')}/{dest}"
        else:
            target = dest  # a complete dial string, e.g. loopback/9000/default or sofia/...
        if any(c in target for c in "{}[],"):
            raise ValueError(f"destination must not contain {{}}[], characters: {target!r}")
        vars_: Dict[str, str] = {"origination_uuid": call_uuid, "originate_timeout": str(timeout)}
        if caller_id_number:
            vars_["origination_caller_id_number"] = str(caller_id_number)
        if caller_id_name:
            vars_["origination_caller_id_name"] = str(caller_id_name)
        for k, v in (variables or {}).items():
            if not _VAR_RE.match(str(k)):
                raise ValueError(f"bad channel variable name {k!r}")
            vars_[str(k)] = str(v)
        parts = []
        for k, v in vars_.items():
            v = _one_line(v, f"variable {k}")
            if any(c in v for c in ",{}[]'\\"):
                raise ValueError(f"variable {k} value must not contain , {{ }} [ ] ' or \\: {v!r}")
            if " " in v:
                v = f"'{v}'"  # switch_separate_string groups single-quoted text, then strips the quotes
            parts.append(f"{k}={v}")
        return call_uuid, "originate {" + ",".join(parts) + "}" + target + " &" + app

    def originate_async(
        self,
        destination: str,
        *,
        gateway: Optional[str] = None,
        caller_id_number: Optional[str] = None,
        caller_id_name: Optional[str] = None,
        timeout: int = 30,
        variables: Optional[Mapping[str, Any]] = None,
        app: str = "park()",
        call_uuid: Optional[str] = None,
        wait_timeout: Optional[float] = None,
    ) -> Tuple[str, gevent.event.AsyncResult]:
        """Start an originate via bgapi; returns ``(uuid, AsyncResult[OriginateResult])`` at once.

        The uuid is ours (``origination_uuid``), so the caller can register the call
        before any of its events arrive.  Transport failures (timeout, lost job) are
        exceptions on the AsyncResult; call outcomes are results.  The result is awaited for
        ``wait_timeout`` seconds, by default :func:`originate_wait` of the connection's
        ``bgapi_timeout`` (BGAPI_TIMEOUT) and the ring ``timeout``.
        """
        call_uuid, cmd = self._originate_command(
            destination, gateway, caller_id_number, caller_id_name, timeout, variables, app, call_uuid
        )
        wait = float(wait_timeout) if wait_timeout is not None else originate_wait(self.conn.bgapi_timeout, timeout)
        out = gevent.event.AsyncResult()
        job = self.conn.bgapi_async(cmd, timeout=wait)

        def _done(r: gevent.event.AsyncResult) -> None:
            if r.successful():
                out.set(parse_originate_reply(call_uuid, r.value))
            else:
                out.set_exception(r.exception)

        job.rawlink(_done)
        return call_uuid, out

    def originate(self, destination: str, **kw: Any) -> OriginateResult:
        """Place a call and wait for its answer or failure (see :meth:`originate_async`)."""
        _, result = self.originate_async(destination, **kw)
        return result.get()

    # ------------------------------------------------------------------ channel control
    def answer(self, uuid: str) -> None:
        self.api(f"uuid_answer {_uuid(uuid)}")

    def broadcast(self, uuid: str, path: str, leg: str = "aleg") -> None:
        """Queue a playback; ``+OK`` even for a missing file (watch EXECUTE_COMPLETE)."""
        if leg not in _LEGS:
            raise ValueError(f"leg must be one of {_LEGS}, got {leg!r}")
        self.api(f"uuid_broadcast {_uuid(uuid)} {_token(path, 'path')} {leg}")

    def break_playback(self, uuid: str, all: bool = True) -> None:  # noqa: A002 - FreeSWITCH's word
        self.api(f"uuid_break {_uuid(uuid)}" + (" all" if all else ""))

    def pause_playback(self, uuid: str) -> None:
        """``uuid_fileman <uuid> pause``: toggles pause of the file now playing (the same call again resumes
        it where it stopped; no events either way). CommandError ``-ERR No file handle!`` when none plays."""
        self.api(f"uuid_fileman {_uuid(uuid)} pause")

    def record_start(self, uuid: str, path: str) -> None:
        """``uuid_record <uuid> start <path>``: FreeSWITCH records both legs, mixed, until hangup (or a stop);
        ``-ERR Cannot record session!`` when it cannot open the file."""
        self.api(f"uuid_record {_uuid(uuid)} start {_token(path, 'path')}")

    def kill(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        if not _CAUSE_RE.match(cause or ""):
            raise ValueError(f"not a hangup cause: {cause!r}")
        self.api(f"uuid_kill {_uuid(uuid)} {cause}")

    def transfer(self, uuid: str, dest: str, dialplan: str = "XML", context: str = "default") -> None:
        self.api(
            f"uuid_transfer {_uuid(uuid)} {_token(dest, 'destination')} "
            f"{_token(dialplan, 'dialplan')} {_token(context, 'context')}"
        )

    def setvar(self, uuid: str, name: str, value: Any) -> None:
        """Set a channel variable; ``None`` or '' unsets it. Values may contain spaces."""
        if not _VAR_RE.match(str(name)):
            raise ValueError(f"bad channel variable name {name!r}")
        text = "" if value is None else _one_line(value, f"value of {name}")
        self.api(f"uuid_setvar {_uuid(uuid)} {name}" + (f" {text}" if text else ""))

    def getvar(self, uuid: str, name: str) -> Optional[str]:
        """The value, or None when unset (FreeSWITCH says ``_undef_``)."""
        if not _VAR_RE.match(str(name)):
            raise ValueError(f"bad channel variable name {name!r}")
        body = self.api(f"uuid_getvar {_uuid(uuid)} {name}")
        return None if body == "_undef_" else body

    def caller_ids(self, uuid: str) -> Tuple[str, str]:
        """(caller number, destination number) of a channel, from its variables."""
        return (self.getvar(uuid, "caller_id_number") or "", self.getvar(uuid, "destination_number") or "")

    def recv_dtmf(self, uuid: str, digits: str) -> None:
        """Inject digits as if the caller pressed them (DTMF events with source APP)."""
        if not re.match(r"^[0-9A-Da-d*#wW]+$", digits or ""):
            raise ValueError(f"DTMF digits must be 0-9, A-D, * or #: {digits!r}")
        self.api(f"uuid_recv_dtmf {_uuid(uuid)} {digits}")

    def uuid_exists(self, uuid: str) -> bool:
        return self.api(f"uuid_exists {_uuid(uuid)}").strip() == "true"

    def show_channels(self) -> List[Dict[str, Any]]:
        body = self.api("show channels as json").strip()
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise CommandError("show channels as json", f"unparsable reply: {body[:200]}") from None
        rows = data.get("rows") if isinstance(data, dict) else None
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    # ------------------------------------------------------------------ mod_audio_fork
    # mod_audio_fork (drachtio 88e1465) splits its arguments with switch_separate_string into
    # at most 7: only start's metadata (the 7th) may hold spaces; an argument starting with
    # '{' or '[' in the bug-name position is taken as text/metadata, so the bug name is
    # always sent explicitly and validated.  That splitter also strips single quotes and
    # eats backslashes, so texts containing either are refused rather than corrupted.

    def audio_fork_start(
        self,
        uuid: str,
        url: str,
        *,
        mix: str = "mono",
        rate: int = 16000,
        bugname: str = "audio_fork",
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        """``uuid_audio_fork <uuid> start <url> <mix> <rate> <bugname> [<compact JSON>]``."""
        u = _uuid(uuid)
        parts = urlsplit(_token(url, "fork url"))
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"fork url must be ws:// or wss:// with a host: {url!r}")
        try:
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"fork url has a bad port: {url!r}") from None
        if mix not in _MIXES:
            raise ValueError(f"mix must be one of {_MIXES}, got {mix!r}")
        if rate not in _RATES:
            raise ValueError(f"rate must be one of {sorted(_RATES)}, got {rate!r}")
        cmd = f"uuid_audio_fork {u} start {url} {mix} {_RATES[rate]} {_bugname(bugname)}"
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise ValueError("fork metadata must be a dict")
            meta = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
            _fork_text(meta, "fork metadata", spaces_ok=True)
            if len(meta.encode("utf-8")) > 8000:
                raise ValueError("fork metadata is larger than mod_audio_fork's 8 KiB buffer")
            cmd += f" {meta}"
        self.api(cmd)

    def audio_fork_stop(self, uuid: str, bugname: str = "audio_fork", final_text: Optional[str] = None) -> None:
        """Stop the fork (``-ERR Operation Failed`` → CommandError when none is attached)."""
        cmd = f"uuid_audio_fork {_uuid(uuid)} stop {_bugname(bugname)}"
        if final_text:
            cmd += " " + _fork_text(final_text, "final text")
        self.api(cmd)

    def audio_fork_send_text(self, uuid: str, text: str, bugname: str = "audio_fork") -> None:
        """One text frame to our server (``+OK`` even if the socket has closed)."""
        self.api(f"uuid_audio_fork {_uuid(uuid)} send_text {_bugname(bugname)} {_fork_text(text, 'text')}")


def _bugname(name: str) -> str:
    name = _token(name, "bugname")
    if name[0] in "{[":
        raise ValueError(f"bugname must not start with {{ or [ (mod_audio_fork would take it as JSON): {name!r}")
    return name


def _fork_text(text: str, what: str, spaces_ok: bool = False) -> str:
    if not text:
        raise ValueError(f"{what} must not be empty")
    if "\\" in text or "'" in text or any(ord(c) < 0x20 for c in text):
        raise ValueError(f"{what} must not contain quotes, backslashes or control characters "
                         f"(FreeSWITCH's argument splitter would alter them): {text[:80]!r}")
    if not spaces_ok and any(c.isspace() for c in text):
        raise ValueError(f"{what} must not contain spaces (mod_audio_fork splits it): {text[:80]!r}")
    return text
