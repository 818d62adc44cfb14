"""The emulated Event Socket: one `Listener` per inbound TCP connection (mod_event_socket)."""
from __future__ import annotations

import logging
import re
import socket
import uuid as uuidlib
from typing import List, Optional, Set, Tuple

import gevent
from gevent.queue import Queue

from ..telephony.eslwire import encode_frame
from .esl_framing import DISCONNECT_NOTICE, Command, CommandReader, api_response, reply
from .events import EVENT_NAMES, EmEvent
from .switch import Switch

log = logging.getLogger(__name__)

# mod_audio_fork reserves these subclasses at load; they survive `nixevent` after `ALL` (traces obs. 13).
RESERVED_SUBCLASSES = {f"mod_audio_fork::{s}" for s in
                       ("transcription", "transfer", "play_audio", "kill_audio", "error", "disconnect")}
_EVENT_SET = set(EVENT_NAMES)


class Listener:
    """One ESL connection: its subscriptions, filters and FIFO output queue."""

    def __init__(self, emu: Switch, sock: socket.socket, addr) -> None:
        self.emu = emu
        self.sock = sock
        self.addr = addr
        self.authed = False
        self.closed = False
        self.fmt: Optional[str] = None  # plain | json | xml once subscribed
        self.all_events = False
        self.types: Set[str] = set()
        self.custom_all = False
        self.subclasses: Set[str] = set()
        self.filters: List[Tuple[str, str]] = []
        self.myevents_uuid: Optional[str] = None
        self._out: Queue = Queue()
        self._api_running = 0
        self._held: List[bytes] = []
        self._writer: Optional[gevent.Greenlet] = None

    # ------------------------------------------------------------------ output
    def send(self, data: bytes) -> None:
        if not self.closed:
            self._out.put(data)

    def _write_loop(self) -> None:
        while True:
            data = self._out.get()
            if data is None:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.abort()
                return

    def close_gracefully(self) -> None:
        """Disconnect notice (the last thing sent), then close once it is written."""
        if self.closed:
            return
        self._out.put(DISCONNECT_NOTICE)
        self.closed = True
        self._out.put(None)
        if self._writer is not None:
            self._writer.join(timeout=5)
        self._shutdown()

    def abort(self) -> None:
        """Close abruptly, without a notice (fault injection, peer gone)."""
        if not self.closed:
            self.closed = True
            self._out.put(None)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.emu.listener_gone(self)

    # ------------------------------------------------------------------ events
    def wants(self, ev: EmEvent) -> bool:
        if not self.authed or self.fmt is None or self.closed:
            return False
        if ev.name == "CUSTOM":
            ok = self.custom_all or ev.subclass in self.subclasses
        else:
            ok = self.all_events or ev.name in self.types
        if not ok:
            return False
        if self.myevents_uuid and ev.get("Unique-ID") not in (None, self.myevents_uuid):
            return False
        if self.filters:
            return self._filter_pass(ev)
        return True

    def _filter_pass(self, ev: EmEvent) -> bool:
        """mod_event_socket: pass if some filter header is present and matches; ``-`` excludes."""
        passed = False
        for name, value in self.filters:
            have = ev.get_ci(name)
            if have is None:
                continue
            if value.startswith("-"):
                if _match(value[1:], have):
                    return False
                continue
            if _match(value, have):
                passed = True
        return passed

    def deliver(self, ev: EmEvent) -> None:
        if not self.wants(ev):
            return
        if self.fmt == "json":
            body, ctype = ev.json(), "text/event-json"
        elif self.fmt == "xml":
            body, ctype = ev.xml(), "text/event-xml"
        else:
            body, ctype = ev.plain(), "text/event-plain"
        frame = encode_frame([("Content-Length", str(len(body))), ("Content-Type", ctype)], body)
        if self._api_running:
            self._held.append(frame)
        else:
            self.send(frame)

    # ------------------------------------------------------------------ input
    def run(self) -> None:
        self._writer = gevent.spawn(self._write_loop)
        reader = CommandReader()
        self.send(encode_frame([("Content-Type", "auth/request")]))
        deadline_timer = gevent.Timeout(self.emu.auth_timeout)
        deadline_timer.start()
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except gevent.Timeout:
                    raise
                except OSError:
                    break
                if not data:
                    break
                try:
                    commands = reader.feed(data)
                except ValueError as exc:
                    log.warning("ESL %s: bad command framing: %s", self.addr, exc)
                    self.close_gracefully()
                    break
                for cmd in commands:
                    if self.closed:
                        break
                    if not self.authed:
                        self._pre_auth(cmd)
                        if self.authed:
                            deadline_timer.close()
                    else:
                        self._command(cmd)
        except gevent.Timeout as t:
            if t is not deadline_timer:
                raise
            log.info("ESL %s: no auth within %ss", self.addr, self.emu.auth_timeout)
            self.close_gracefully()
        finally:
            deadline_timer.close()
            if not self.closed:
                self.abort()

    def _pre_auth(self, cmd: Command) -> None:
        word, _, rest = cmd.line.partition(" ")
        w = word.lower()
        if w == "auth":
            if rest == self.emu.password:
                self.authed = True
                self.send(reply("+OK accepted"))
            else:
                self.send(reply("-ERR invalid"))
                self.close_gracefully()
        elif w == "exit":
            self.send(reply("+OK bye"))
            self.close_gracefully()
        else:
            self.send(reply("-ERR command not found"))

    def _command(self, cmd: Command) -> None:
        line = cmd.line
        word, _, rest = line.partition(" ")
        w = word.lower()
        rest = rest.strip()
        try:
            if w == "event":
                self._event(rest)
            elif w == "nixevent":
                self._nixevent(rest)
            elif w == "noevents":
                if self.fmt is None:
                    self.send(reply("-ERR not listening for events"))
                else:
                    self.fmt, self.all_events, self.custom_all = None, False, False
                    self.types.clear()
                    self.subclasses.clear()
                    self.send(reply("+OK no longer listening for events"))
            elif w == "filter":
                self._filter(rest)
            elif w == "exit":
                self.send(reply("+OK bye"))
                self.close_gracefully()
            elif w in ("linger", "nolinger"):
                self.send(reply("-ERR not controlling a session"))
            elif w == "myevents":
                self._myevents(rest)
            elif w == "sendmsg":
                self.send(reply(self.emu.sendmsg(rest, cmd)))
            elif w == "sendevent":
                self.send(reply(self.emu.sendevent(rest, cmd)))
            elif w == "api":
                self._api(rest)
            elif w == "bgapi":
                self._bgapi(rest, cmd.header("Job-UUID"))
            elif w == "log":
                self.send(reply("+OK log level 7 [7]"))
            elif w == "nolog":
                self.send(reply("+OK no longer logging"))
            else:
                self.send(reply("-ERR command not found"))
        except Exception:  # bad input must never take the server down
            log.exception("ESL %s: command %r failed", self.addr, line[:200])
            self.send(reply("-ERR command failed"))

    def _event(self, rest: str) -> None:
        tokens = rest.split()
        fmt = "plain"
        if tokens and tokens[0].lower() in ("plain", "json", "xml"):
            fmt = tokens.pop(0).lower()
        ok = False
        custom = False
        for tok in tokens:
            if custom:
                self.subclasses.add(tok)
                ok = True
                continue
            up = tok.upper()
            if up == "CUSTOM":
                custom = True
                ok = True
            elif up == "ALL":
                self.all_events = True
                self.custom_all = True
                ok = True
            elif up in _EVENT_SET:
                self.types.add(up)
                ok = True
        if not ok:
            self.send(reply("-ERR no keywords supplied"))
            return
        self.fmt = fmt
        self.send(reply(f"+OK event listener enabled {fmt}"))

    def _nixevent(self, rest: str) -> None:
        tokens = rest.split()
        if not tokens:
            self.send(reply("-ERR no keywords supplied"))
            return
        custom = False
        for tok in tokens:
            if custom:
                self.subclasses.discard(tok)
                continue
            up = tok.upper()
            if up == "CUSTOM":
                custom = True
                continue
            if up == "ALL":
                self.all_events = self.custom_all = False
                self.types.clear()
                self.subclasses.clear()
                continue
            if self.all_events:
                # ALL becomes an explicit list: unreserved CUSTOM subclasses are lost (traces obs. 13).
                self.all_events = False
                self.types = set(_EVENT_SET) - {"ALL", "CUSTOM"}
                if self.custom_all:
                    self.custom_all = False
                    self.subclasses |= RESERVED_SUBCLASSES
            self.types.discard(up)
        self.send(reply("+OK events nixed"))

    def _filter(self, rest: str) -> None:
        parts = rest.split(" ", 1)
        if parts[0].lower() == "delete":
            target = parts[1].strip() if len(parts) > 1 else ""
            if target.lower() == "all" or not target:
                self.filters.clear()
                self.send(reply("+OK filter deleted. [all][]"))
                return
            name, _, value = target.partition(" ")
            self.filters = [(n, v) for n, v in self.filters
                            if not (n.lower() == name.lower() and (not value or v == value))]
            self.send(reply(f"+OK filter deleted. [{name}][{value}]"))
            return
        if len(parts) < 2 or not parts[1].strip():
            self.send(reply("-ERR invalid syntax"))
            return
        name, value = parts[0], parts[1].strip()
        self.filters.append((name, value))
        self.send(reply(f"+OK filter added. [{name}]=[{value}]"))

    def _myevents(self, rest: str) -> None:
        tokens = rest.split()
        if tokens:
            self.myevents_uuid = tokens[0]
            fmt = tokens[1].lower() if len(tokens) > 1 and tokens[1].lower() in ("plain", "json", "xml") else "plain"
            self.fmt = fmt
            self.all_events = self.custom_all = True
        self.send(reply("+OK Events Enabled"))

    def channel_gone(self, uuid: str) -> None:
        """myevents binds the socket to a channel: FreeSWITCH closes it when that channel ends."""
        if self.myevents_uuid == uuid and not self.closed:
            self.close_gracefully()

    def _api(self, rest: str) -> None:
        cmd, _, args = rest.partition(" ")
        self._api_running += 1
        try:
            out = self.emu.api(cmd, args.strip(), listener=self)
        finally:
            self._api_running -= 1
        self.send(api_response(out))
        if not self._api_running and self._held:
            held, self._held = self._held, []
            for frame in held:
                self.send(frame)

    def _bgapi(self, rest: str, job_uuid: Optional[str]) -> None:
        job = job_uuid or str(uuidlib.uuid4())
        cmd, _, args = rest.partition(" ")
        args = args.strip()
        self.send(reply(f"+OK Job-UUID: {job}", (("Job-UUID", job),)))
        gevent.spawn(self.emu.run_bgapi, job, cmd, args)


def _match(pattern: str, value: str) -> bool:
    if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1:
        try:
            return re.search(pattern[1:-1], value) is not None
        except re.error:
            return False
    return pattern.lower() == value.lower()
