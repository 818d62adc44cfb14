"""FreeSwitchEmulator: the switch itself: its ESL server, its channels, events, the dialplan,
fault injection.  The API commands are in api_commands.py, originate in originate.py; channels and
ESL connections see the switch through the ``Switch`` Protocol (switch.py)."""
from __future__ import annotations

import itertools
import logging
import tempfile
import time
import uuid as uuidlib
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import gevent
from gevent.event import Event
from gevent.server import StreamServer

from .api_commands import ApiCommands
from .channel import Channel
from .dialplan import Dialplan, read_preprocessor_vars
from .esl_framing import DISCONNECT_NOTICE, RUDE_REJECTION, Command
from .esl_server import Listener
from .events import EventFactory, templates
from .originate import OUTCOMES, Script

log = logging.getLogger(__name__)


def _package_conf() -> Path:
    return Path(__file__).resolve().parent / "data" / "conf"


def default_conf_dir() -> Path:
    """The repo's freeswitch/conf when running from a checkout, else the copy shipped in the package."""
    repo = Path(__file__).resolve().parents[2] / "freeswitch" / "conf"
    return repo if (repo / "dialplan").is_dir() else _package_conf()


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
        self.history: List[Channel] = []  # every channel since start-up, hung up or not (tests count dials)
        self.listeners: List[Listener] = []
        self.scripts: Dict[str, Script] = {}
        self._stalls: Dict[str, Event] = {}
        self._server: Optional[StreamServer] = None
        self._session_ids = itertools.count(1)
        self.sessions_total = 0  # channels since start-up (``status``)
        self.peak_sessions = 0
        self.started_at = time.time()
        self._empty = Event()
        self._empty.set()
        self.factory = EventFactory(str(uuidlib.uuid4()), self.hostname, switchname)
        self.commands = ApiCommands(self)

    # ------------------------------------------------------------------ server
    @property
    def port(self) -> int:
        return self._server.server_port if self._server is not None else self._port

    def start(self) -> "FreeSwitchEmulator":
        self._server = StreamServer((self.host, self._port), self._handle)
        self._server.start()
        self._port = self._server.server_port
        self.started_at = time.time()
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
            ch.kill()
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

    def listener_gone(self, lst: Listener) -> None:
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

    def next_session_id(self) -> int:
        return next(self._session_ids)

    def register(self, ch: Channel) -> None:
        """A new channel exists (before its first event)."""
        self.channels[ch.uuid] = ch
        self.history.append(ch)
        self.sessions_total += 1
        self.peak_sessions = max(self.peak_sessions, len(self.channels))
        self._empty.clear()

    def all_channels(self) -> List[Channel]:
        """Every channel created since start-up, in order (``channels`` holds only the live ones)."""
        return list(self.history)

    def live_channel(self, uuid: str) -> Optional[Channel]:
        """The channel ``uuid`` unless it is gone or being destroyed (what ``uuid_*`` commands find)."""
        ch = self.channels.get(uuid)
        return ch if ch is not None and not ch.destroyed else None

    def channel_gone(self, ch: Channel) -> None:
        self.channels.pop(ch.uuid, None)
        for lst in list(self.listeners):
            lst.channel_gone(ch.uuid)
        if not self.channels:
            self._empty.set()

    def wait_no_channels(self, timeout: Optional[float] = None) -> bool:
        return bool(self._empty.wait(timeout))

    def set_preprocessor_var(self, name: str, value: str) -> None:
        """``<X-PRE-PROCESS cmd="set" data="name=value"/>`` edited, then ``reloadxml``: what an operator does
        to point the dialplan elsewhere (the voiceagent dialplan's ``voiceagent_fork_url``)."""
        self.global_vars[name] = value
        self.dialplan.pre[name] = value
        self.dialplan.load()

    def dialplan_numbers(self) -> set:
        """Literal extensions of the ``default`` context (what a call to our own SIP profile can reach)."""
        return self.commands.originator.dialplan_numbers()

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
        self.register(ch)
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
    def sendmsg(self, rest: str, cmd: Command) -> str:
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

    def sendevent(self, rest: str, cmd: Command) -> str:
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
        fn = getattr(self.commands, f"api_{name}", None)
        if fn is None:
            return f"-ERR {cmd} Command not found!\n"
        try:
            out = fn(args)
        except Exception:
            log.exception("api %s %r failed", cmd, args[:200])
            out = ""
        return out if out else "-ERR no reply\n"
