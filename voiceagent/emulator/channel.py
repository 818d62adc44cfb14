"""One emulated FreeSWITCH channel: state, the application it runs, playback, DTMF, forks.

Each channel has one greenlet that runs its dialplan actions (like FreeSWITCH's session
thread); other greenlets (ESL api calls, the caller, the fork) only queue messages, set flags
and fire the events FreeSWITCH fires synchronously (CHANNEL_HANGUP, DTMF, ...).
"""
from __future__ import annotations

import collections
import logging
import time
import uuid as uuidlib
import wave
from typing import Any, Dict, List, Optional, Tuple

import gevent
import numpy as np
from gevent.event import Event

from . import media
from .channel_apps import ChannelApps
from .channel_fork import FORK_USAGE, ForkControl, safe_call
from .channel_record import ChannelRecording
from .dialplan import expand
from .switch import Switch

__all__ = ["Channel", "FORK_USAGE"]

log = logging.getLogger(__name__)

class Channel(ChannelApps, ForkControl, ChannelRecording):
    """An emulated call leg.  Public attributes are read by tests; methods are the caller's hands."""

    def __init__(self, emu: Switch, *, direction: str, name: str, destination: str,
                 caller: str, caller_name: str = "", context: str = "public", profile: str = "sofia_inbound",
                 source: str = "mod_sofia", codec: Optional[Tuple[str, int, int]] = ("PCMA", 8000, 64000),
                 uuid: Optional[str] = None, username: str = "", network_addr: str = "",
                 dialplan: str = "XML", callee_name: str = "", callee_number: str = "",
                 extra_vars: Optional[Dict[str, str]] = None, other_uuid: str = "") -> None:
        self.emu = emu
        self.uuid = uuid or str(uuidlib.uuid4())
        self.name = name
        self.direction = direction
        self.destination = destination
        self.caller = caller
        self.caller_name = caller_name
        self.context = context
        self.source = source
        self.username = username
        self.network_addr = network_addr
        self.dialplan_name = dialplan
        self.callee_name = callee_name
        self.callee_number = callee_number
        self.orig_caller, self.orig_caller_name, self.ani = caller, caller_name, caller
        self.codec = codec
        self.state, self.state_number, self.call_state = "CS_NEW", 0, "DOWN"
        self.answer_state = "ringing"
        self.hangup_cause: Optional[str] = None
        self.created_us = int(time.time() * 1_000_000)
        self.answered_us = self.progress_us = self.progress_media_us = self.hangup_us = self.transfer_us = 0
        self.t0 = time.monotonic()
        self.variables: Dict[str, str] = {}
        self.peer: Optional["Channel"] = None
        # "loopback": the legs hang up together and the A leg is destroyed last (as captured);
        # "sip": a call to our own SIP profile, the far leg follows after a BYE.
        self.peer_mode = "sip"
        self.loopback_leg = ""
        fmt = {"uuid": self.uuid, "channel_name": name, "created": str(self.created_us), "caller": caller,
               "destination": destination, "session_id": str(emu.next_session_id()),
               "call_id": f"{uuidlib.uuid4().hex[:12]}@127.0.0.1", "origination_uuid": self.uuid,
               "other_uuid": other_uuid}
        for var, tmpl in emu.variable_profile(profile):
            try:
                self.variables[var] = tmpl.format(**fmt)
            except (KeyError, IndexError, ValueError):
                self.variables[var] = tmpl
        self.variables.update(extra_vars or {})
        # run-time state
        self._msgs: collections.deque = collections.deque()
        self._wake = Event()
        self.hangup_requested = Event()  # set by do_hangup (CHANNEL_HANGUP); hangup_event once destroyed
        self._break_evt = Event()
        self._playing: Optional[str] = None
        self._pause_evt = Event()  # uuid_fileman pause toggled: wakes the playback
        self._paused_since: Optional[float] = None  # monotonic, while the file now playing is paused
        self._pauses: List[Tuple[float, float]] = []  # (paused, resumed) of the file now playing
        self._play_deadline = 0.0
        self._parked = False
        self._transfer: Optional[Tuple[str, str]] = None
        self._app_response: Optional[str] = None
        self._greenlet: Optional[gevent.Greenlet] = None
        self.answered_event = Event()
        self.hangup_event = Event()
        self.destroyed = False
        self.segments: List[Dict[str, Any]] = []
        self._heard: List[Tuple[float, np.ndarray]] = []
        self.forks: Dict[str, Any] = {}
        self._recordings: Dict[str, Tuple[float, float]] = {}  # uuid_record: path -> (started, limit)
        self._pending_say: List[Any] = []
        self.sent_dtmf: List[str] = []
        self.timeline: List[Tuple[float, str]] = []

    # ---------------------------------------------------------------- public API (the caller's side)
    @property
    def answered(self) -> bool:
        return self.answered_us > 0

    @property
    def fork(self):
        """The default ``audio_fork`` media bug's client (or the first one), None if none."""
        return self.forks.get("audio_fork") or next(iter(self.forks.values()), None)

    @property
    def playing(self) -> Optional[str]:
        """The file being played to the caller right now, None between files."""
        return self._playing

    @property
    def paused(self) -> bool:
        """The file now playing is paused (``uuid_fileman <uuid> pause``)."""
        return self._paused_since is not None

    def call_time(self) -> float:
        """Seconds of call time since creation (real time × speed)."""
        return (time.monotonic() - self.t0) * self.emu.speed

    def say(self, audio) -> None:
        """Queue speech from the caller (wav path, (pcm, rate), or PCM bytes at the fork rate)."""
        targets = [f.audio for f in self.forks.values() if getattr(f, "audio", None) is not None]
        if not targets:
            self._pending_say.append(audio)
        for a in targets:
            a.say(audio)

    def press(self, digits: str) -> None:
        """The caller presses keys (RFC 2833: ``DTMF-Source: RTP``, duration 2240)."""
        for d in digits:
            self.dtmf(d, "RTP")

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The caller hangs up: like a real BYE, the fork's WebSocket closes a moment before CHANNEL_HANGUP."""
        if self.hangup_cause:
            return
        for f in list(self.forks.values()):
            safe_call(f.hangup)
        gevent.sleep(0.002)
        self.do_hangup(cause)

    def wait_answered(self, timeout: Optional[float] = None) -> bool:
        return self.answered_event.wait(timeout) is True or self.answered

    def wait_hangup(self, timeout: Optional[float] = None) -> bool:
        return bool(self.hangup_event.wait(timeout))

    def heard_audio(self) -> Tuple[bytes, int]:
        """What the caller heard: 16 kHz int16 PCM on the call's timeline (silence between files)."""
        rate = media.HEARD_RATE
        end = max([s["end"] for s in self.segments] + [0.0])
        out = np.zeros(int(end * rate) + 1, dtype=np.int16)
        for start, pcm in self._heard:
            i = int(start * rate)
            n = min(len(pcm), len(out) - i)
            if n > 0:
                out[i:i + n] = pcm[:n]
        return out.tobytes(), rate

    def write_heard_wav(self, path: str) -> None:
        pcm, rate = self.heard_audio()
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)

    # ---------------------------------------------------------------- event headers
    def basic_headers(self) -> List[Tuple[str, str]]:
        h = [("Channel-State", self.state), ("Channel-Call-State", self.call_state),
             ("Channel-State-Number", str(self.state_number)), ("Channel-Name", self.name),
             ("Unique-ID", self.uuid), ("Call-Direction", self.direction),
             ("Presence-Call-Direction", self.direction), ("Channel-HIT-Dialplan", "true" if self.direction == "inbound" else "false"),
             ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state)]
        if self.hangup_cause:
            h.append(("Hangup-Cause", self.hangup_cause))
        if self.codec:
            name, rate, bits = self.codec
            h += [("Channel-Read-Codec-Name", name), ("Channel-Read-Codec-Rate", str(rate)),
                  ("Channel-Read-Codec-Bit-Rate", str(bits)), ("Channel-Write-Codec-Name", name),
                  ("Channel-Write-Codec-Rate", str(rate)), ("Channel-Write-Codec-Bit-Rate", str(bits))]
        return h

    def caller_headers(self) -> List[Tuple[str, str]]:
        p = "Caller-"
        fields = [("Direction", self.direction), ("Logical-Direction", self.direction),
                  ("Username", self.username), ("Dialplan", self.dialplan_name),
                  ("Caller-ID-Name", self.caller_name), ("Caller-ID-Number", self.caller),
                  ("Orig-Caller-ID-Name", self.orig_caller_name), ("Orig-Caller-ID-Number", self.orig_caller),
                  ("Callee-ID-Name", self.callee_name), ("Callee-ID-Number", self.callee_number),
                  ("Network-Addr", self.network_addr), ("ANI", self.ani),
                  ("Destination-Number", self.destination), ("Unique-ID", self.uuid), ("Source", self.source),
                  ("Context", self.context), ("Channel-Name", self.name)]
        h = [(p + k, v) for k, v in fields if v]
        h += [(p + "Profile-Index", "1"), (p + "Profile-Created-Time", str(self.created_us)),
              (p + "Channel-Created-Time", str(self.created_us)),
              (p + "Channel-Answered-Time", str(self.answered_us)),
              (p + "Channel-Progress-Time", str(self.progress_us)),
              (p + "Channel-Progress-Media-Time", str(self.progress_media_us)),
              (p + "Channel-Hangup-Time", str(self.hangup_us)),
              (p + "Channel-Transfer-Time", str(self.transfer_us)),
              (p + "Channel-Resurrect-Time", "0"), (p + "Channel-Bridged-Time", "0"),
              (p + "Channel-Last-Hold", "0"), (p + "Channel-Hold-Accum", "0"),
              (p + "Screen-Bit", "true"), (p + "Privacy-Hide-Name", "false"), (p + "Privacy-Hide-Number", "false")]
        return h

    def variable_headers(self) -> List[Tuple[str, str]]:
        return [("variable_" + k, v) for k, v in self.variables.items()]

    def fire(self, key: str, fields: Optional[Dict[str, Optional[str]]] = None, body: bytes = b"") -> None:
        if self.destroyed:
            return
        self.timeline.append((self.call_time(), key))
        self.emu.fire(self.emu.factory.build(key, channel=self, fields=fields, body=body))

    # ---------------------------------------------------------------- variables
    def lookup(self, name: str) -> Optional[str]:
        special = {"uuid": self.uuid, "switchname": self.emu.switchname, "hostname": self.emu.hostname,
                   "caller_id_number": self.caller, "caller_id_name": self.caller_name,
                   "destination_number": self.destination, "context": self.context,
                   "channel_name": self.name, "direction": self.direction}
        if name in self.variables:
            return self.variables[name]
        if name in special:
            return special[name]
        return self.emu.global_vars.get(name)

    def expand(self, text: str) -> str:
        return expand(text, self.lookup, lambda cmd, args: self.emu.api(cmd, args))

    # ---------------------------------------------------------------- lifecycle (channel greenlet)
    def start(self, target=None) -> None:
        self._greenlet = gevent.spawn(self._main, target)

    def _main(self, target) -> None:
        try:
            if target is None:
                self.state, self.state_number, self.call_state = "CS_INIT", 2, "DOWN"
                self.fire("CHANNEL_CREATE")
                self.route()
            else:
                target()
            while self._transfer and not self.hangup_cause:
                dest, ctx = self._transfer
                self._transfer = None
                self.destination, self.context = dest, ctx
                self.transfer_us = int(time.time() * 1_000_000)
                self.route()
            if not self.hangup_cause:
                self.do_hangup("NORMAL_CLEARING")
        except Exception:  # a bug in the emulator must not leave a zombie channel
            log.exception("channel %s crashed", self.uuid)
            if not self.hangup_cause:
                self.do_hangup("NORMAL_TEMPORARY_FAILURE")
        finally:
            self._finish()

    def route(self) -> None:
        """Run the dialplan for the current destination and context (a new call, a transfer)."""
        self.state, self.state_number = "CS_EXECUTE", 4
        if not self.answered and self.call_state == "DOWN":
            self.call_state = "RINGING"
        fields = {"destination_number": self.destination, "caller_id_number": self.caller,
                  "caller_id_name": self.caller_name, "context": self.context, "uuid": self.uuid}
        actions = self.emu.dialplan.route(self.context, lambda f: fields.get(f) if f in fields else self.expand(f))
        if not actions:
            log.warning("no dialplan route for %s in context %s", self.destination, self.context)
            self.do_hangup("NO_ROUTE_DESTINATION")
            return
        self.run_actions(actions)

    def run_actions(self, actions) -> None:
        for app, data in actions:
            if self.hangup_cause or self._transfer:
                return
            self.execute(app, data)

    def execute(self, app: str, raw_data: str = "") -> None:
        data = self.expand(raw_data) if raw_data else ""
        app_uuid = str(uuidlib.uuid4())
        self._app_response = None
        self.variables["current_application"] = app
        if data:
            self.variables["current_application_data"] = data
        fields = {"Application": app, "Application-Data": data or None, "Application-UUID": app_uuid}
        self.fire(f"CHANNEL_EXECUTE:{app}", fields)
        try:
            handler = getattr(self, f"_app_{app}", None)
            if handler is None:
                log.error("channel %s: invalid application %r (ignored)", self.uuid, app)
            else:
                handler(data)
        except Exception:
            log.exception("channel %s: application %s(%r) failed", self.uuid, app, data)
        fields["Application-Response"] = self._app_response or "_none_"
        self.fire(f"CHANNEL_EXECUTE_COMPLETE:{app}", fields)

    def _finish(self) -> None:
        if self.peer is not None and self.peer_mode == "loopback" and not self.peer.hangup_cause:
            self.peer.do_hangup(self.hangup_cause or "NORMAL_CLEARING")
        self.state = "CS_HANGUP"
        self.close_recordings()
        for bug, f in list(self.forks.items()):
            safe_call(f.hangup)
            self.fire("MEDIA_BUG_STOP", {"Media-Bug-Function": bug, "Media-Bug-Target": "N/A"})
        self.forks.clear()
        self.state, self.state_number, self.call_state = "CS_REPORTING", 11, "HANGUP"
        self.fire("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": self.hangup_cause})
        if self.peer is not None and self.peer_mode == "loopback" and self.loopback_leg == "A":
            self.peer.hangup_event.wait(5)
        self.state_number = 12
        self.fire("CHANNEL_DESTROY")
        self.destroyed = True
        self.emu.channel_gone(self)
        self.hangup_event.set()
        if self.peer is not None and not self.peer.hangup_cause:
            self.peer.do_hangup(self.hangup_cause or "NORMAL_CLEARING")

    def kill(self) -> None:
        """The switch stops: the channel ends without events (``FreeSwitchEmulator.stop``)."""
        self.destroyed = True
        for f in list(self.forks.values()):
            safe_call(f.hangup)
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.hangup_event.set()

    # ---------------------------------------------------------------- things others do to the channel
    def do_hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """switch_channel_hangup: fires CHANNEL_HANGUP now; the channel greenlet unwinds the rest."""
        if self.hangup_cause or self.destroyed:
            return
        self.hangup_cause = cause
        self.answer_state = "hangup"
        self.state_number = 10
        self.hangup_us = int(time.time() * 1_000_000)
        self.variables["hangup_cause"] = cause
        self.fire("CHANNEL_HANGUP")
        self.hangup_requested.set()
        self._wake.set()
        if self._greenlet is None:  # never started (originate failure paths finish themselves)
            pass

    def swap_profile(self) -> None:
        """An answered outbound leg presents the far end as its caller (switch_ivr_originate)."""
        self.caller, self.caller_name, self.callee_number, self.callee_name = (
            self.callee_number, self.callee_name, self.caller, "")

    def answer(self) -> bool:
        if self.hangup_cause:
            return False
        if self.answered:
            return True
        if self.peer is not None and self.peer_mode == "loopback" and self.loopback_leg == "B":
            self.peer.answer()  # loopback answers the originating leg first (as captured)
        self.answered_us = int(time.time() * 1_000_000)
        self.answer_state = "answered"
        self.fire("CHANNEL_ANSWER")
        self.call_state = "ACTIVE"
        self.answered_event.set()
        return True

    def pre_answer(self) -> None:
        if self.answered or self.answer_state == "early" or self.hangup_cause:
            return
        self.progress_media_us = int(time.time() * 1_000_000)
        self.answer_state = "early"
        self.fire("CHANNEL_PROGRESS_MEDIA")
        self.call_state = "EARLY"

    def queue_app(self, app: str, arg: str) -> None:
        self._msgs.append(("execute", app, arg))
        self._wake.set()

    def break_playback(self, all_: bool = False) -> None:
        if all_:
            self._msgs = collections.deque(m for m in self._msgs if m[0] != "execute")
        if self._playing:
            self._break_evt.set()

    def transfer(self, dest: str, context: str) -> None:
        self._transfer = (dest, context)
        self._wake.set()

    def dtmf(self, digit: str, source: str = "APP") -> None:
        if self.hangup_cause or self.destroyed:
            return
        self.fire("DTMF", {"DTMF-Digit": digit, "DTMF-Duration": "2240" if source == "RTP" else "2000",
                           "DTMF-Source": source})
        if self._playing:
            terms = self.variables.get("playback_terminators", "*")
            if terms != "none" and (terms == "any" or digit in terms):
                self.variables["playback_terminator_used"] = digit
                self._break_evt.set()
