"""``originate``: an outbound call as FreeSWITCH places it, with the far end scripted per number.

``FreeSwitchEmulator.script_destination(number, outcome, ...)`` says how a call to ``number`` ends
(answer, busy, no answer, reject, bad gateway, unreachable); ``loopback/`` and calls to the switch's
own SIP profile re-enter the dialplan as a second leg.  Event order and causes are the captures'.
"""
from __future__ import annotations

import re
import shlex
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import gevent

from .channel import Channel
from .switch import Switch

ORIGINATE_USAGE = ("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                   "[<cid_name>] [<cid_num>] [<timeout_sec>]\n")
OUTCOMES = {"answer", "busy", "no_answer", "reject", "invalid_gateway", "unreachable"}
_FAIL_CAUSE = {"busy": "USER_BUSY", "reject": "CALL_REJECTED", "no_answer": "NO_ANSWER",
               "unreachable": "NORMAL_TEMPORARY_FAILURE"}


@dataclass
class Script:
    outcome: str = "answer"
    audio: Any = None
    ring_seconds: float = 0.0
    ringing: bool = True  # False: no 180 at all (a SIP black hole), no CHANNEL_PROGRESS


class Originator:
    """Runs ``originate <dial string> <target> ...`` against the switch's channels and scripts."""

    def __init__(self, emu: Switch) -> None:
        self.emu = emu

    def originate(self, args: str) -> str:
        try:
            tokens = shlex.split(args.replace("\\", "\\\\"), posix=True) if args else []
        except ValueError:
            tokens = args.split()
        if len(tokens) < 2 or len(tokens) > 7:
            return ORIGINATE_USAGE
        dial, target = tokens[0], tokens[1]
        context = tokens[3] if len(tokens) > 3 else "default"
        cid_name = tokens[4] if len(tokens) > 4 else ""
        cid_num = tokens[5] if len(tokens) > 5 else "0000000000"
        vars_: Dict[str, str] = {}
        while dial[:1] in "{[<" and dial:
            close = {"{": "}", "[": "]", "<": ">"}[dial[0]]
            end = dial.find(close)
            if end < 0:
                break
            for kv in dial[1:end].split(","):
                k, _, v = kv.partition("=")
                if k.strip():
                    vars_[k.strip()] = v
            dial = dial[end + 1:]
        uuid = vars_.get("origination_uuid") or str(uuidlib.uuid4())
        if uuid in self.emu.channels:
            return "-ERR NORMAL_TEMPORARY_FAILURE\n"
        try:
            timeout = float(vars_.get("originate_timeout") or (tokens[6] if len(tokens) > 6 else 60))
        except ValueError:
            timeout = 60.0
        cid_num = vars_.get("origination_caller_id_number", cid_num)
        cid_name = vars_.get("origination_caller_id_name", cid_name)
        if dial.startswith("error/"):
            return f"-ERR {dial[len('error/'):].upper()}\n"
        kind, number, name = self._endpoint(dial)
        if kind is None:
            return "-ERR CHAN_NOT_IMPLEMENTED\n"
        script = self.emu.scripts.get(number, Script())
        if kind == "gateway":
            gw = dial.split("/")[2] if len(dial.split("/")) > 2 else ""
            if script.outcome == "invalid_gateway" or (self.emu.gateways is not None and gw not in self.emu.gateways):
                self._na_destroy(uuid)
                return "-ERR INVALID_GATEWAY\n"
        if kind == "loopback":
            return self._originate_loopback(uuid, number, name, dial, target, context, cid_name, cid_num, vars_, timeout)
        ch = Channel(self.emu, direction="outbound", name=name, destination=number, caller=cid_num,
                     caller_name=cid_name, context=context, profile="sofia_outbound",
                     source="src/switch_ivr_originate.c", codec=None, uuid=uuid, dialplan="",
                     callee_name="Outbound Call", callee_number=number,
                     extra_vars={k: v for k, v in vars_.items()})
        self.emu.register(ch)
        ch.state, ch.state_number = "CS_NONE", 1
        ch.fire("CHANNEL_OUTGOING")
        ch.state, ch.state_number = "CS_INIT", 2
        ch.fire("CHANNEL_CREATE")
        ch.fire("CHANNEL_ORIGINATE")
        ch.state, ch.state_number = "CS_CONSUME_MEDIA", 7
        if script.outcome == "unreachable":
            return self._originate_fail(ch, "NORMAL_TEMPORARY_FAILURE")
        if kind == "sofia" and dial.endswith("@" + self.emu.sip_address) and number in self.dialplan_numbers():
            return self._originate_self(ch, number, target, context, timeout)
        if script.outcome == "answer" and script.ring_seconds <= 0:
            pass
        else:
            if script.ringing:
                ch.progress_us = int(time.time() * 1_000_000)
                ch.network_addr = "127.0.0.1"  # learnt from the 180
                ch.fire("CHANNEL_PROGRESS")
            ring = timeout if script.outcome == "no_answer" else min(script.ring_seconds, timeout)
            if script.outcome in ("busy", "reject"):
                ring = min(script.ring_seconds, timeout)
            if ch.hangup_requested.wait(ring / self.emu.speed):
                return self._originate_fail(ch, ch.hangup_cause or "ORIGINATOR_CANCEL")
            if script.outcome != "answer" or script.ring_seconds > timeout:
                return self._originate_fail(ch, _FAIL_CAUSE.get(script.outcome, "NO_ANSWER"))
        ch.codec = ("PCMU", 8000, 64000)
        ch.callee_name, ch.network_addr = number, "127.0.0.1"  # the 200 OK's identity
        ch.answer()
        ch.call_state = "DOWN"  # as captured: the A leg's ANSWER shows CS_CONSUME_MEDIA/DOWN
        if script.audio is not None:
            ch.say(script.audio)
        ch.call_state = "ACTIVE"
        ch.start(lambda: self._run_target(ch, target, context))
        return f"+OK {uuid}\n"

    def dialplan_numbers(self) -> set:
        """Literal extensions of the ``default`` context (what a call to our own SIP profile can reach)."""
        out = set()
        for ext in self.emu.dialplan.contexts.get("default", []):
            for c in ext.conditions:
                if c.field == "destination_number":
                    m = re.fullmatch(r"\^([\w+]+)\$", c.expression)
                    if m:
                        out.add(m.group(1))
        return out

    def _originate_self(self, a: Channel, number: str, target: str, context: str, timeout: float) -> str:
        """FreeSWITCH calling its own SIP profile: the far end is an inbound call through the dialplan."""
        b = Channel(self.emu, direction="inbound", name=f"sofia/agent/{a.caller}@127.0.0.1", destination=number,
                    caller=a.caller, caller_name=a.caller_name or a.caller, context="default", codec=("PCMU", 8000, 64000),
                    username=a.caller, network_addr="127.0.0.1")
        a.peer, b.peer = b, a
        self.emu.register(b)
        b.start()
        gevent.wait([b.answered_event, b.hangup_event, a.hangup_requested], timeout=timeout / self.emu.speed, count=1)
        if not b.answered:
            if not b.hangup_cause:
                b.do_hangup("ORIGINATOR_CANCEL")
            return self._originate_fail(a, a.hangup_cause or "NO_ANSWER")
        a.codec = ("PCMU", 8000, 64000)
        a.callee_name, a.network_addr = number, "127.0.0.1"
        a.answer()
        a.call_state = "ACTIVE"
        a.start(lambda: self._run_target(a, target, context))
        return f"+OK {a.uuid}\n"

    def _endpoint(self, dial: str) -> Tuple[Optional[str], str, str]:
        parts = dial.split("/")
        if parts[0] == "loopback" and len(parts) >= 2:
            return "loopback", parts[1], f"loopback/{parts[1]}-a"
        if parts[0] == "sofia" and len(parts) >= 4 and parts[1] == "gateway":
            return "gateway", parts[3], dial
        if parts[0] == "sofia" and len(parts) >= 3:
            return "sofia", parts[2].split("@")[0], dial
        if parts[0] in ("user", "verto.rtc"):
            return "sofia", parts[-1].split("@")[0], dial
        return None, "", dial

    def _na_destroy(self, uuid: str) -> None:
        """What a bad gateway leaves behind: one CHANNEL_DESTROY of a never-created N/A channel."""
        ch = Channel(self.emu, direction="outbound", name="N/A", destination="", caller="", codec=None,
                     profile="none", source="", uuid=uuid)
        ch.variables = {"direction": "outbound", "is_outbound": "true", "uuid": ch.uuid, "call_uuid": ch.uuid,
                        "session_id": str(self.emu.next_session_id())}
        ch.state, ch.state_number = "CS_NONE", 0
        ch.caller_headers = lambda: []  # type: ignore[method-assign]  # as captured: no Caller-* at all
        ch.fire("CHANNEL_DESTROY")

    def _originate_fail(self, ch: Channel, cause: str) -> str:
        ch.do_hangup(cause)

        def finish():
            ch.state, ch.state_number, ch.call_state = "CS_REPORTING", 11, "HANGUP"
            ch.fire("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": cause})
            ch.state_number = 12
            ch.fire("CHANNEL_DESTROY")
            ch.destroyed = True
            self.emu.channel_gone(ch)
            ch.hangup_event.set()

        gevent.spawn(finish)
        return f"-ERR {cause}\n"

    def _run_target(self, ch: Channel, target: str, context: str) -> None:
        ch.state, ch.state_number = "CS_EXECUTE", 4
        ch.swap_profile()
        if target.startswith("&"):
            app, _, arg = target[1:].partition("(")
            ch.execute(app, arg[:-1] if arg.endswith(")") else arg)
        else:
            ch.destination, ch.context = target, context
            ch.route()

    def _originate_loopback(self, uuid, number, name, dial, target, context, cid_name, cid_num, vars_, timeout) -> str:
        parts = dial.split("/")
        b_context = parts[2] if len(parts) > 2 else "default"
        b_uuid = str(uuidlib.uuid4())
        a = Channel(self.emu, direction="outbound", name=name, destination=number, caller=cid_num, caller_name=cid_name,
                    context=context, profile="loopback_a", source="mod_loopback", codec=("L16", 8000, 128000),
                    uuid=uuid, dialplan="xml", callee_name="Outbound Call", callee_number=number,
                    extra_vars=dict(vars_), other_uuid=b_uuid)
        b = Channel(self.emu, direction="inbound", name=f"loopback/{number}-b", destination=number, caller=cid_num,
                    caller_name=cid_name, context=b_context, profile="loopback_b", source="mod_loopback",
                    codec=("L16", 8000, 128000), uuid=b_uuid, dialplan="xml", callee_name="Outbound Call",
                    callee_number=number, other_uuid=uuid)
        b.variables["origination_uuid"] = uuid
        a.peer, b.peer = b, a
        a.peer_mode = b.peer_mode = "loopback"
        a.loopback_leg, b.loopback_leg = "A", "B"
        self.emu.register(a)
        a.state, a.state_number = "CS_NONE", 1
        a.fire("CHANNEL_OUTGOING")
        a.state, a.state_number = "CS_INIT", 2
        a.fire("CHANNEL_CREATE")
        self.emu.register(b)
        b.state, b.state_number = "CS_INIT", 2
        b.fire("CHANNEL_CREATE")
        b.start(b.route)
        a.fire("CHANNEL_ORIGINATE")
        a.state, a.state_number = "CS_CONSUME_MEDIA", 7
        a.call_state = "DOWN"
        gevent.wait([b.answered_event, b.hangup_event, a.hangup_requested], timeout=timeout / self.emu.speed, count=1)
        if not b.answered:
            if not b.hangup_cause:
                b.do_hangup("NO_ANSWER")
            return self._originate_fail(a, "NO_ANSWER" if not a.hangup_cause else a.hangup_cause)
        a.call_state = "ACTIVE"
        a.start(lambda: self._run_target(a, target, context))
        return f"+OK {uuid}\n"
