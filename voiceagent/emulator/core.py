"""FreeSwitchEmulator: an ESL server, emulated channels, the dialplan and the API commands."""
from __future__ import annotations

import itertools
import re
import json
import logging
import shlex
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import gevent
from gevent.event import Event
from gevent.server import StreamServer

from .channel import Channel
from .dialplan import Dialplan, read_preprocessor_vars
from .esl_server import Listener, RUDE_REJECTION, DISCONNECT_NOTICE
from .events import EventFactory, templates

log = logging.getLogger(__name__)

ORIGINATE_USAGE = ("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                   "[<cid_name>] [<cid_num>] [<timeout_sec>]\n")
VERSION = "1.10.12-release  64bit"
OUTCOMES = {"answer", "busy", "no_answer", "reject", "invalid_gateway", "unreachable"}
_FAIL_CAUSE = {"busy": "USER_BUSY", "reject": "CALL_REJECTED", "no_answer": "NO_ANSWER",
               "unreachable": "NORMAL_TEMPORARY_FAILURE"}


def _package_conf() -> Path:
    return Path(__file__).resolve().parent / "data" / "conf"


def default_conf_dir() -> Path:
    """The repo's freeswitch/conf when running from a checkout, else the copy shipped in the package."""
    repo = Path(__file__).resolve().parents[2] / "freeswitch" / "conf"
    return repo if (repo / "dialplan").is_dir() else _package_conf()


@dataclass
class Script:
    outcome: str = "answer"
    audio: Any = None
    ring_seconds: float = 0.0
    ringing: bool = True  # False: no 180 at all (a SIP black hole), no CHANNEL_PROGRESS


class FreeSwitchEmulator:
    """A FreeSWITCH 1.10.12 stand-in on a real TCP port.  See the package docstring for use."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon", switchname: str = "fs1",
                 speed: float = 1.0, dialplan_dir: Optional[str] = None, variables: Optional[Dict[str, str]] = None,
                 temp_dir: Optional[str] = None, auth_timeout: float = 25.0, gateways: Optional[Iterable[str]] = None,
                 acl: Optional[Iterable[str]] = None, api_delay: float = 0.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.host = host
        self._port = port
        self.password = password
        self.switchname = switchname
        self.hostname = switchname
        self.speed = float(speed)
        self.auth_timeout = auth_timeout
        self.gateways = set(gateways) if gateways is not None else None
        self.acl = [ip_network(c, strict=False) for c in acl] if acl else None
        self.api_delay = api_delay
        self.sip_address = "127.0.0.1:5080"  # the emulated SIP profile (calls to it re-enter the dialplan)
        conf = default_conf_dir()
        self.dialplan_dir = Path(dialplan_dir) if dialplan_dir else conf / "dialplan"
        pre = read_preprocessor_vars(conf / "vars_voiceagent.xml")
        pre.update({"switchname": switchname, "hostname": switchname})
        pre.update(variables or {})
        self.global_vars: Dict[str, str] = pre
        self._own_temp = None
        if temp_dir is None:
            self._own_temp = tempfile.TemporaryDirectory(prefix="fsemu-")
            temp_dir = self._own_temp.name
        self.temp_dir = str(temp_dir)
        self.dialplan = Dialplan(self.dialplan_dir, self.global_vars)
        self.channels: Dict[str, Channel] = {}
        self.listeners: List[Listener] = []
        self.scripts: Dict[str, Script] = {}
        self._stalls: Dict[str, Event] = {}
        self._server: Optional[StreamServer] = None
        self._session_ids = itertools.count(1)
        self._sessions_total = 0
        self._peak = 0
        self._started_at = time.time()
        self._empty = Event()
        self._empty.set()
        self.factory = EventFactory(str(uuidlib.uuid4()), self.hostname, switchname)

    # ------------------------------------------------------------------ server
    @property
    def port(self) -> int:
        return self._server.server_port if self._server is not None else self._port

    def start(self) -> "FreeSwitchEmulator":
        self._server = StreamServer((self.host, self._port), self._handle)
        self._server.start()
        self._port = self._server.server_port
        self._started_at = time.time()
        log.info("FreeSWITCH emulator listening on %s:%d", self.host, self._port)
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection and every call (no events)."""
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
        for lst in list(self.listeners):
            lst.abort()
        for ch in list(self.channels.values()):
            ch.destroyed = True
            for f in list(ch.forks.values()):
                try:
                    f.hangup()
                except Exception:
                    log.exception("fork hangup during stop")
            if ch._greenlet is not None:
                ch._greenlet.kill(block=False)
            ch.hangup_event.set()
        self.channels.clear()
        self._empty.set()

    def restart(self) -> None:
        """stop + start on the same port: every call is lost, fresh Core-UUID."""
        self.stop()
        self.factory = EventFactory(str(uuidlib.uuid4()), self.hostname, self.switchname)
        self.start()

    def __enter__(self) -> "FreeSwitchEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, sock, addr) -> None:
        if self.acl is not None and not any(ip_address(addr[0]) in net for net in self.acl):
            try:
                sock.sendall(RUDE_REJECTION + DISCONNECT_NOTICE)
            finally:
                sock.close()
            return
        lst = Listener(self, sock, addr)
        self.listeners.append(lst)
        lst.run()

    def _listener_gone(self, lst: Listener) -> None:
        if lst in self.listeners:
            self.listeners.remove(lst)

    # ------------------------------------------------------------------ fault injection
    def drop_connections(self) -> None:
        for lst in list(self.listeners):
            lst.abort()

    def stall_api(self, prefix: str) -> None:
        self._stalls[prefix] = Event()

    def unstall_api(self, prefix: Optional[str] = None) -> None:
        for p in [prefix] if prefix else list(self._stalls):
            ev = self._stalls.pop(p, None)
            if ev is not None:
                ev.set()

    # ------------------------------------------------------------------ events
    def fire(self, ev) -> None:
        for lst in list(self.listeners):
            try:
                lst.deliver(ev)
            except Exception:
                log.exception("delivering %s", ev.name)

    def variable_profile(self, name: str) -> List[List[str]]:
        return templates()["variables"].get(name, [])

    def _next_session_id(self) -> int:
        return next(self._session_ids)

    def _register(self, ch: Channel) -> None:
        self.channels[ch.uuid] = ch
        self._sessions_total += 1
        self._peak = max(self._peak, len(self.channels))
        self._empty.clear()

    def _channel_gone(self, ch: Channel) -> None:
        self.channels.pop(ch.uuid, None)
        for lst in list(self.listeners):
            lst.channel_gone(ch.uuid)
        if not self.channels:
            self._empty.set()

    def wait_no_channels(self, timeout: Optional[float] = None) -> bool:
        return bool(self._empty.wait(timeout))

    # ------------------------------------------------------------------ calls
    def place_call(self, destination: str = "agent", caller: str = "+15551230001", audio=None,
                   context: str = "public", caller_name: Optional[str] = None, profile: str = "external",
                   uuid: Optional[str] = None) -> Channel:
        """An inbound SIP call entering the dialplan (like a call from a carrier)."""
        ch = Channel(self, direction="inbound", name=f"sofia/{profile}/{caller}@127.0.0.1:5070",
                     destination=destination, caller=caller,
                     caller_name=caller if caller_name is None else caller_name, context=context,
                     username=caller, network_addr="127.0.0.1", uuid=uuid,
                     extra_vars={"sofia_profile_name": profile, "recovery_profile_name": profile})
        if audio is not None:
            ch.say(audio)
        self._register(ch)
        ch.start()
        return ch

    def script_destination(self, number: str, outcome: str = "answer", audio=None, ring_seconds: float = 0.0,
                           ringing: bool = True) -> None:
        """How an outbound call to ``number`` ends: answer|busy|no_answer|reject|invalid_gateway|unreachable.

        ``audio`` is what the callee says once answered; ``ring_seconds`` delays the answer (or the
        busy/reject); ``ringing=False`` sends no 180 (no CHANNEL_PROGRESS), like a SIP black hole."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {sorted(OUTCOMES)}")
        self.scripts[number] = Script(outcome, audio, ring_seconds, ringing)

    # ------------------------------------------------------------------ ESL commands with a channel
    def sendmsg(self, rest: str, cmd) -> str:
        uuid = rest.split()[0] if rest.split() else ""
        ch = self.channels.get(uuid)
        if ch is None:
            return f"-ERR invalid session id [{uuid}]"
        what = (cmd.header("call-command") or "").lower()
        if what == "execute":
            app = cmd.header("execute-app-name") or ""
            arg = cmd.header("execute-app-arg") or ""
            if not arg and cmd.body:
                arg = cmd.body.decode("utf-8", "replace")
            try:
                loops = max(1, int(cmd.header("loops") or 1))
            except ValueError:
                loops = 1
            for _ in range(loops):
                ch.queue_app(app, arg)
        elif what == "hangup":
            ch.do_hangup(cmd.header("hangup-cause") or "NORMAL_CLEARING")
        elif what == "unicast" or what == "nomedia":
            pass
        else:
            return "-ERR invalid command"
        return "+OK"

    def sendevent(self, rest: str, cmd) -> str:
        name = (rest.split() or ["CUSTOM"])[0].upper()
        event_uuid = str(uuidlib.uuid4())
        pre: List[Tuple[str, str]] = []
        sub = cmd.header("Event-Subclass")
        if name == "CUSTOM" and sub:
            pre.append(("Event-Subclass", sub))
        pre.append(("Command", f"sendevent {rest.split()[0] if rest.split() else name}"))
        for k, v in cmd.headers:
            if k.lower() == "event-subclass" and name == "CUSTOM":
                continue
            pre.append((k, v))
        pre.append(("Event-UUID", event_uuid))
        ev = self.factory.build_plain(name, ("mod_event_socket.c", "parse_command", "2275"), pre=pre, body=cmd.body)
        # FreeSWITCH queues the event; the reply reaches the client first.
        gevent.spawn(self.fire, ev)
        return f"+OK {event_uuid}"

    def run_bgapi(self, job: str, cmd: str, args: str) -> None:
        try:
            out = self.api(cmd, args)
        except Exception:
            log.exception("bgapi %s failed", cmd)
            out = "-ERR no reply\n"
        post = [("Job-UUID", job), ("Job-Command", cmd)]
        if args:
            post.append(("Job-Command-Arg", args))
        ev = self.factory.build_plain("BACKGROUND_JOB", ("mod_event_socket.c", "api_exec", "1572"), post=post,
                                      body=out.encode("utf-8"))
        self.fire(ev)

    # ------------------------------------------------------------------ api
    def api(self, cmd: str, args: str = "", listener: Optional[Listener] = None) -> str:
        """Run an API command synchronously and return its output, exactly as FreeSWITCH words it."""
        line = f"{cmd} {args}".strip()
        for prefix, ev in list(self._stalls.items()):
            if line.startswith(prefix):
                ev.wait()
        if self.api_delay:
            gevent.sleep(self.api_delay)
        name = cmd.lower()
        fn = getattr(self, f"_api_{name}", None)
        if fn is None:
            return f"-ERR {cmd} Command not found!\n"
        try:
            out = fn(args)
        except Exception:
            log.exception("api %s %r failed", cmd, args[:200])
            out = ""
        return out if out else "-ERR no reply\n"

    def _chan(self, uuid: str) -> Optional[Channel]:
        ch = self.channels.get(uuid)
        return ch if ch is not None and not ch.destroyed else None

    def _api_status(self, args: str) -> str:
        up = int(time.time() - self._started_at)
        days, rem = divmod(up, 86400)
        hours, rem = divmod(rem, 3600)
        mins, secs = divmod(rem, 60)
        n = len(self.channels)
        return (f"UP 0 years, {days} days, {hours} hours, {mins} minutes, {secs} seconds, 0 milliseconds, 0 microseconds\n"
                f"FreeSWITCH (Version {VERSION}) is ready\n"
                f"{self._sessions_total} session(s) since startup\n"
                f"{n} session(s) - peak {self._peak}, last 5min {n} \n"
                f"0 session(s) per Sec out of max 50, peak 2, last 5min 0 \n"
                f"1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n")

    def _api_version(self, args: str) -> str:
        return f"FreeSWITCH Version {VERSION.split()[0]}~64bit (-release 64bit)\n"

    def _api_hostname(self, args: str) -> str:
        return self.hostname

    def _api_echo(self, args: str) -> str:
        return args

    def _api_eval(self, args: str) -> str:
        if not args:
            return ""
        from .dialplan import expand
        return expand(args, lambda n: self.global_vars.get(n), lambda c, a: self.api(c, a))

    def _api_global_getvar(self, args: str) -> str:
        return self.global_vars.get(args.strip(), "")

    def _api_show(self, args: str) -> str:
        words = args.lower().split()
        if not words or words[0] not in ("channels", "calls"):
            return "-USAGE: \n"
        rows = [self._channel_row(ch) for ch in self.channels.values() if not ch.destroyed]
        if "count" in words[1:]:
            return f"\n{len(rows)} total.\n"
        if words[1:3] == ["as", "json"]:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":")) + "\n"
        if not rows:
            return "\n0 total.\n"
        keys = list(rows[0])
        lines = [",".join(keys)] + [",".join(r[k] for k in keys) for r in rows]
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def _channel_row(self, ch: Channel) -> Dict[str, str]:
        codec = ch.codec or ("", 0, 0)
        app = ch.variables.get("current_application", "")
        created = ch.created_us // 1_000_000
        return {
            "uuid": ch.uuid, "direction": ch.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
            "created_epoch": str(created), "name": ch.name, "state": ch.state,
            "cid_name": ch.caller_name, "cid_num": ch.caller, "ip_addr": ch.network_addr, "dest": ch.destination,
            "application": app, "application_data": ch.variables.get("current_application_data", "") if app else "",
            "dialplan": ch.dialplan_name, "context": ch.context,
            "read_codec": codec[0], "read_rate": str(codec[1]) if codec[1] else "",
            "read_bit_rate": str(codec[2]) if codec[2] else "",
            "write_codec": codec[0], "write_rate": str(codec[1]) if codec[1] else "",
            "write_bit_rate": str(codec[2]) if codec[2] else "",
            "secure": "", "hostname": self.hostname, "presence_id": "", "presence_data": "", "accountcode": "",
            "callstate": ch.call_state, "callee_name": ch.callee_name, "callee_num": ch.callee_number,
            "callee_direction": "", "call_uuid": ch.uuid, "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": ch.caller_name, "initial_cid_num": ch.caller, "initial_ip_addr": ch.network_addr,
            "initial_dest": ch.destination, "initial_dialplan": ch.dialplan_name, "initial_context": ch.context,
        }

    def _api_uuid_exists(self, args: str) -> str:
        return "true" if self._chan(args.split()[0] if args.split() else "") else "false"

    def _api_uuid_answer(self, args: str) -> str:
        ch = self._chan(args.split()[0] if args.split() else "")
        if ch is None:
            return "-ERR no such channel\n"
        return "+OK\n" if ch.answer() else "-ERR answer failed\n"

    def _api_uuid_pre_answer(self, args: str) -> str:
        ch = self._chan(args.split()[0] if args.split() else "")
        if ch is None:
            return "-ERR no such channel\n"
        ch.pre_answer()
        return "+OK\n"

    def _api_uuid_kill(self, args: str) -> str:
        parts = args.split()
        ch = self._chan(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        ch.do_hangup(parts[1].upper() if len(parts) > 1 else "NORMAL_CLEARING")
        return "+OK\n"

    def _api_uuid_break(self, args: str) -> str:
        parts = args.split()
        ch = self._chan(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        ch.break_playback(all_=len(parts) > 1 and parts[1].lower() == "all")
        return "+OK\n"

    def _api_uuid_broadcast(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        ch = self._chan(parts[0])
        if ch is None:
            return "-ERR invalid uuid\n"
        path = parts[1]
        app, arg = "playback", path
        if "::" in path:
            app, _, arg = path.partition("::")
        hangup_after = None
        if "!" in arg and not arg.startswith("tone_stream"):
            arg, _, hangup_after = arg.partition("!")
        ch.queue_app(app, arg)
        if hangup_after is not None:
            ch.queue_app("hangup", hangup_after or "NORMAL_CLEARING")
        return "+OK Message sent\n"

    def _api_uuid_transfer(self, args: str) -> str:
        parts = args.split()
        ch = self._chan(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        rest = [p for p in parts[1:] if p not in ("-bleg", "-both")]
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch.transfer(rest[0], rest[2] if len(rest) > 2 else ch.context)
        return "+OK\n"

    def _api_uuid_setvar(self, args: str) -> str:
        parts = args.split(" ", 2)
        if len(parts) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self._chan(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(parts) > 2 and parts[2] != "":
            ch.variables[parts[1]] = parts[2]
        else:
            ch.variables.pop(parts[1], None)
        return "+OK\n"

    def _api_uuid_getvar(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self._chan(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        value = ch.variables.get(parts[1])
        if value is None and parts[1] in ("uuid", "channel_name", "direction"):
            value = ch.lookup(parts[1])
        return value if value else "_undef_"

    def _api_uuid_send_dtmf(self, args: str) -> str:
        parts = args.split()
        ch = self._chan(parts[0] if parts else "")
        if ch is None or len(parts) < 2:
            return "-ERR Cannot locate session!\n"
        ch.sent_dtmf.append(parts[1])
        return f"+OK {ch.uuid} sent DTMF {parts[1]}.\n"

    def _api_uuid_recv_dtmf(self, args: str) -> str:
        parts = args.split()
        ch = self._chan(parts[0] if parts else "")
        if ch is None or len(parts) < 2:
            return "-ERR Cannot locate session!\n"
        digits = parts[1]
        for d in digits:
            if d in "0123456789*#ABCDabcd":
                ch.dtmf(d.upper(), "APP")
        return f"+OK {ch.uuid} received DTMF {digits}.\n"

    def _api_uuid_audio_fork(self, args: str) -> str:
        from .channel import FORK_USAGE
        parts = args.split()
        if len(parts) < 2:
            return FORK_USAGE
        ch = self._chan(parts[0])
        if ch is None:
            return "-ERR Operation Failed\n"
        # bugname + metadata: the metadata keeps its spaces (split into at most 7 tokens)
        tokens = args.split(" ", 6) if parts[1].lower() == "start" else args.split(" ", 3)
        tokens = [t for t in tokens if t != ""]
        return ch.audio_fork(tokens[1:])

    # ------------------------------------------------------------------ originate
    def _api_originate(self, args: str) -> str:
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
        if uuid in self.channels:
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
        script = self.scripts.get(number, Script())
        if kind == "gateway":
            gw = dial.split("/")[2] if len(dial.split("/")) > 2 else ""
            if script.outcome == "invalid_gateway" or (self.gateways is not None and gw not in self.gateways):
                self._na_destroy(uuid)
                return "-ERR INVALID_GATEWAY\n"
        if kind == "loopback":
            return self._originate_loopback(uuid, number, name, dial, target, context, cid_name, cid_num, vars_, timeout)
        ch = Channel(self, direction="outbound", name=name, destination=number, caller=cid_num,
                     caller_name=cid_name, context=context, profile="sofia_outbound",
                     source="src/switch_ivr_originate.c", codec=None, uuid=uuid, dialplan="",
                     callee_name="Outbound Call", callee_number=number,
                     extra_vars={k: v for k, v in vars_.items()})
        self._register(ch)
        ch.state, ch.state_number = "CS_NONE", 1
        ch.fire("CHANNEL_OUTGOING")
        ch.state, ch.state_number = "CS_INIT", 2
        ch.fire("CHANNEL_CREATE")
        ch.fire("CHANNEL_ORIGINATE")
        ch.state, ch.state_number = "CS_CONSUME_MEDIA", 7
        if script.outcome == "unreachable":
            return self._originate_fail(ch, "NORMAL_TEMPORARY_FAILURE")
        if kind == "sofia" and dial.endswith("@" + self.sip_address) and number in self.dialplan_numbers():
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
            if ch._hangup_evt.wait(ring / self.speed):
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
        for ext in self.dialplan.contexts.get("default", []):
            for c in ext.conditions:
                if c.field == "destination_number":
                    m = re.fullmatch(r"\^([\w+]+)\$", c.expression)
                    if m:
                        out.add(m.group(1))
        return out

    def _originate_self(self, a: Channel, number: str, target: str, context: str, timeout: float) -> str:
        """FreeSWITCH calling its own SIP profile: the far end is an inbound call through the dialplan."""
        b = Channel(self, direction="inbound", name=f"sofia/agent/{a.caller}@127.0.0.1", destination=number,
                    caller=a.caller, caller_name=a.caller_name or a.caller, context="default", codec=("PCMU", 8000, 64000),
                    username=a.caller, network_addr="127.0.0.1")
        a.peer, b.peer = b, a
        self._register(b)
        b.start()
        gevent.wait([b.answered_event, b.hangup_event, a._hangup_evt], timeout=timeout / self.speed, count=1)
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
        ch = Channel(self, direction="outbound", name="N/A", destination="", caller="", codec=None,
                     profile="none", source="", uuid=uuid)
        ch.variables = {"direction": "outbound", "is_outbound": "true", "uuid": ch.uuid, "call_uuid": ch.uuid,
                        "session_id": str(self._next_session_id())}
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
            self._channel_gone(ch)
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
            ch._route()

    def _originate_loopback(self, uuid, number, name, dial, target, context, cid_name, cid_num, vars_, timeout) -> str:
        parts = dial.split("/")
        b_context = parts[2] if len(parts) > 2 else "default"
        b_uuid = str(uuidlib.uuid4())
        a = Channel(self, direction="outbound", name=name, destination=number, caller=cid_num, caller_name=cid_name,
                    context=context, profile="loopback_a", source="mod_loopback", codec=("L16", 8000, 128000),
                    uuid=uuid, dialplan="xml", callee_name="Outbound Call", callee_number=number,
                    extra_vars=dict(vars_), other_uuid=b_uuid)
        b = Channel(self, direction="inbound", name=f"loopback/{number}-b", destination=number, caller=cid_num,
                    caller_name=cid_name, context=b_context, profile="loopback_b", source="mod_loopback",
                    codec=("L16", 8000, 128000), uuid=b_uuid, dialplan="xml", callee_name="Outbound Call",
                    callee_number=number, other_uuid=uuid)
        b.variables["origination_uuid"] = uuid
        a.peer, b.peer = b, a
        a.peer_mode = b.peer_mode = "loopback"
        a.loopback_leg, b.loopback_leg = "A", "B"
        self._register(a)
        a.state, a.state_number = "CS_NONE", 1
        a.fire("CHANNEL_OUTGOING")
        a.state, a.state_number = "CS_INIT", 2
        a.fire("CHANNEL_CREATE")
        self._register(b)
        b.state, b.state_number = "CS_INIT", 2
        b.fire("CHANNEL_CREATE")
        b.start(b._route)
        a.fire("CHANNEL_ORIGINATE")
        a.state, a.state_number = "CS_CONSUME_MEDIA", 7
        a.call_state = "DOWN"
        gevent.wait([b.answered_event, b.hangup_event, a._hangup_evt], timeout=timeout / self.speed, count=1)
        if not b.answered:
            if not b.hangup_cause:
                b.do_hangup("NO_ANSWER")
            return self._originate_fail(a, "NO_ANSWER" if not a.hangup_cause else a.hangup_cause)
        a.call_state = "ACTIVE"
        a.start(lambda: self._run_target(a, target, context))
        return f"+OK {uuid}\n"
