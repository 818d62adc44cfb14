"""The API commands (mod_commands: status, show channels, uuid_*, originate, ...), worded exactly
as FreeSWITCH 1.10.12 words its replies.  ``FreeSwitchEmulator.api`` runs ``api_<name>``."""
from __future__ import annotations

import json
import time
from typing import Dict

from .channel import Channel
from .channel_fork import FORK_USAGE
from .dialplan import expand
from .originate import Originator
from .switch import Switch

VERSION = "1.10.12-release  64bit"


class ApiCommands:
    """One method per API command: ``api_<name>(args) -> output``; an empty output is "-ERR no reply"."""

    def __init__(self, emu: Switch) -> None:
        self.emu = emu
        self.originator = Originator(emu)

    def api_status(self, args: str) -> str:
        up = int(time.time() - self.emu.started_at)
        days, rem = divmod(up, 86400)
        hours, rem = divmod(rem, 3600)
        mins, secs = divmod(rem, 60)
        n = len(self.emu.channels)
        return (f"UP 0 years, {days} days, {hours} hours, {mins} minutes, {secs} seconds, 0 milliseconds, 0 microseconds\n"
                f"FreeSWITCH (Version {VERSION}) is ready\n"
                f"{self.emu.sessions_total} session(s) since startup\n"
                f"{n} session(s) - peak {self.emu.peak_sessions}, last 5min {n} \n"
                f"0 session(s) per Sec out of max 50, peak 2, last 5min 0 \n"
                f"1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n")

    def api_version(self, args: str) -> str:
        return f"FreeSWITCH Version {VERSION.split()[0]}~64bit (-release 64bit)\n"

    def api_hostname(self, args: str) -> str:
        return self.emu.hostname

    def api_echo(self, args: str) -> str:
        return args

    def api_eval(self, args: str) -> str:
        if not args:
            return ""
        return expand(args, lambda n: self.emu.global_vars.get(n), lambda c, a: self.emu.api(c, a))

    def api_global_getvar(self, args: str) -> str:
        return self.emu.global_vars.get(args.strip(), "")

    def api_show(self, args: str) -> str:
        words = args.lower().split()
        if not words or words[0] not in ("channels", "calls"):
            return "-USAGE: \n"
        rows = [self.channel_row(ch) for ch in self.emu.channels.values() if not ch.destroyed]
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

    def channel_row(self, ch: Channel) -> Dict[str, str]:
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
            "secure": "", "hostname": self.emu.hostname, "presence_id": "", "presence_data": "", "accountcode": "",
            "callstate": ch.call_state, "callee_name": ch.callee_name, "callee_num": ch.callee_number,
            "callee_direction": "", "call_uuid": ch.uuid, "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": ch.caller_name, "initial_cid_num": ch.caller, "initial_ip_addr": ch.network_addr,
            "initial_dest": ch.destination, "initial_dialplan": ch.dialplan_name, "initial_context": ch.context,
        }

    def api_uuid_exists(self, args: str) -> str:
        return "true" if self.emu.live_channel(args.split()[0] if args.split() else "") else "false"

    def api_uuid_answer(self, args: str) -> str:
        ch = self.emu.live_channel(args.split()[0] if args.split() else "")
        if ch is None:
            return "-ERR no such channel\n"
        return "+OK\n" if ch.answer() else "-ERR answer failed\n"

    def api_uuid_pre_answer(self, args: str) -> str:
        ch = self.emu.live_channel(args.split()[0] if args.split() else "")
        if ch is None:
            return "-ERR no such channel\n"
        ch.pre_answer()
        return "+OK\n"

    def api_uuid_kill(self, args: str) -> str:
        parts = args.split()
        ch = self.emu.live_channel(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        ch.do_hangup(parts[1].upper() if len(parts) > 1 else "NORMAL_CLEARING")
        return "+OK\n"

    def api_uuid_break(self, args: str) -> str:
        parts = args.split()
        ch = self.emu.live_channel(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        ch.break_playback(all_=len(parts) > 1 and parts[1].lower() == "all")
        return "+OK\n"

    def api_uuid_fileman(self, args: str) -> str:
        """``uuid_fileman <uuid> <cmd>[:<val>]`` on the file now playing.  Only ``pause`` (a toggle: the
        position stops, the next pause resumes where it stopped) changes anything here; FreeSWITCH says
        +OK to any other cmd too.  Pausing and resuming fire no events."""
        parts = args.split(" ", 1)
        if len(parts) < 2 or not parts[0] or not parts[1].strip():
            return "-USAGE: <uuid> <cmd>:<val>\n"
        ch = self.emu.live_channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if ch.playing is None:
            return "-ERR No file handle!\n"
        cmd = parts[1].strip().partition(":")[0].lower()
        if cmd == "pause":
            ch.fileman_pause()
        return "+OK\n"

    def api_uuid_record(self, args: str) -> str:
        """``uuid_record <uuid> [start|stop] <path> [<limit>]`` (mod_commands session_record_function)."""
        usage = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        parts = args.split()
        if len(parts) < 3:
            return usage
        ch = self.emu.live_channel(parts[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        action, path = parts[1].lower(), parts[2]
        if action == "start":
            limit = float(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0.0
            return "+OK Success\n" if ch.record_start(path, limit) else "-ERR Cannot record session!\n"
        if action == "stop":
            return "+OK Success\n" if ch.record_stop(path) else "-ERR Cannot stop record session!\n"
        if action in ("mask", "unmask"):
            return "+OK Success\n" if ch.recording(path) else f"-ERR Cannot {action} recording session!\n"
        return usage

    def api_uuid_broadcast(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        ch = self.emu.live_channel(parts[0])
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

    def api_uuid_transfer(self, args: str) -> str:
        parts = args.split()
        ch = self.emu.live_channel(parts[0] if parts else "")
        if ch is None:
            return "-ERR No such channel!\n"
        rest = [p for p in parts[1:] if p not in ("-bleg", "-both")]
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch.transfer(rest[0], rest[2] if len(rest) > 2 else ch.context)
        return "+OK\n"

    def api_uuid_setvar(self, args: str) -> str:
        parts = args.split(" ", 2)
        if len(parts) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self.emu.live_channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(parts) > 2 and parts[2] != "":
            ch.variables[parts[1]] = parts[2]
        else:
            ch.variables.pop(parts[1], None)
        return "+OK\n"

    def api_uuid_getvar(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self.emu.live_channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        value = ch.variables.get(parts[1])
        if value is None and parts[1] in ("uuid", "channel_name", "direction"):
            value = ch.lookup(parts[1])
        return value if value else "_undef_"

    def api_uuid_send_dtmf(self, args: str) -> str:
        parts = args.split()
        ch = self.emu.live_channel(parts[0] if parts else "")
        if ch is None or len(parts) < 2:
            return "-ERR Cannot locate session!\n"
        ch.sent_dtmf.append(parts[1])
        return f"+OK {ch.uuid} sent DTMF {parts[1]}.\n"

    def api_uuid_recv_dtmf(self, args: str) -> str:
        parts = args.split()
        ch = self.emu.live_channel(parts[0] if parts else "")
        if ch is None or len(parts) < 2:
            return "-ERR Cannot locate session!\n"
        digits = parts[1]
        for d in digits:
            if d in "0123456789*#ABCDabcd":
                ch.dtmf(d.upper(), "APP")
        return f"+OK {ch.uuid} received DTMF {digits}.\n"

    def api_originate(self, args: str) -> str:
        return self.originator.originate(args)

    def api_uuid_audio_fork(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return FORK_USAGE
        ch = self.emu.live_channel(parts[0])
        if ch is None:
            return "-ERR Operation Failed\n"
        # bugname + metadata: the metadata keeps its spaces (split into at most 7 tokens)
        tokens = args.split(" ", 6) if parts[1].lower() == "start" else args.split(" ", 3)
        tokens = [t for t in tokens if t != ""]
        return ch.audio_fork(tokens[1:])
