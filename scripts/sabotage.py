#!/usr/bin/env python3
"""Sabotage pass for the telephony edge: break the code on purpose, check the tests notice.

Every breakage is one or more exact text patches (file, original snippet, replacement).  For
each breakage the script takes a *fresh* copy of the repository (``git archive <ref>`` of the
source repo, or a plain copy of ``--source-dir``), verifies that every original snippet occurs
exactly the expected number of times (so the script fails loudly when the code moves on),
applies the patches, runs the breakage's test files against that copy and records which tests
failed.  A clean baseline run of the same test files comes first: a breakage only counts as
caught by tests that pass without it.

    python scripts/sabotage.py                  # every breakage, table on stdout
    python scripts/sabotage.py --only 2a 5a     # some of them
    python scripts/sabotage.py --list           # what would be broken, no test runs
    python scripts/sabotage.py --check          # only verify that every snippet still matches
    python scripts/sabotage.py --markdown docs/sabotage.md

Exit status: 0 if every breakage was caught, 1 if any was not, 2 if a snippet is missing or
the baseline fails.  The copies live under a temporary directory (``--keep`` keeps them); each is
self-contained (the FreeSWITCH captures are in ``tests/data/freeswitch``).
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Patch:
    file: str
    old: str
    new: str
    count: int = 1  # how many times ``old`` must occur; all occurrences are replaced


@dataclass(frozen=True)
class Breakage:
    id: str
    what: str
    patches: Tuple[Patch, ...]
    tests: Tuple[str, ...]


def B(id: str, what: str, tests: Sequence[str], *patches: Patch) -> Breakage:
    return Breakage(id, what, tuple(patches), tuple(tests))


# --------------------------------------------------------------------------- test groups
ESL_CLIENT = "tests/telephony/test_esl_client.py"
ESL_EMU = "tests/telephony/test_esl_emulator.py"
COMMANDS = "tests/telephony/test_commands.py"
EVENTS = "tests/telephony/test_events.py"
FORK_SERVER = "tests/telephony/test_fork_server.py"
FORK_WIRE = "tests/telephony/test_fork_wire.py"
CONFORMANCE = "tests/emulator/test_conformance.py"
EMU_API = "tests/emulator/test_emulator_api.py"
FORK_CLIENT = "tests/emulator/test_fork_client.py"
TRACE_PARSE = "tests/emulator/test_trace_parse.py"
FRAME_LAYOUT = "tests/emulator/test_frame_layout.py"
LIFECYCLE = "tests/calls/test_lifecycle.py"
DRAIN = "tests/calls/test_drain.py"
CALLS_EDGE = "tests/calls/test_edge.py"
OUTBOUND = "tests/calls/test_outbound.py"
ESLWIRE_T = "tests/telephony/test_eslwire.py"

WIRE = (ESLWIRE_T, ESL_CLIENT, ESL_EMU, EVENTS, COMMANDS, CONFORMANCE, TRACE_PARSE, EMU_API)
ESL = (ESL_CLIENT, ESL_EMU, COMMANDS)
FORK = (FORK_SERVER, FORK_WIRE, FORK_CLIENT)
EMU = (FRAME_LAYOUT, CONFORMANCE, EMU_API, FORK_CLIENT, TRACE_PARSE, ESL_EMU, COMMANDS, EVENTS)
CALLS = (LIFECYCLE, OUTBOUND, CALLS_EDGE)

ESLWIRE = "voiceagent/telephony/eslwire.py"
ESLPY = "voiceagent/telephony/esl.py"
ESL_PROTO = "voiceagent/telephony/esl_protocol.py"
ESL_JOBS = "voiceagent/telephony/esl_jobs.py"
ESL_DISPATCH = "voiceagent/telephony/esl_dispatch.py"
ESL_ERRORS = "voiceagent/telephony/esl_errors.py"
FORKSRV = "voiceagent/telephony/fork_server.py"
FORKWIRE = "voiceagent/telephony/forkwire.py"
SESSION = "voiceagent/calls/session.py"
SESSION_FORK = "voiceagent/calls/session_fork.py"
PLAYOUT = "voiceagent/calls/playout.py"
WORKER = "voiceagent/calls/worker.py"
NODE_LINK = "voiceagent/calls/node_link.py"
INBOX = "voiceagent/calls/inbox.py"
EMU_API_CMDS = "voiceagent/emulator/api_commands.py"
EMU_EVENTS = "voiceagent/emulator/events.py"
EMU_ESL = "voiceagent/emulator/esl_server.py"

# --------------------------------------------------------------------------- the breakages
BREAKAGES: List[Breakage] = [
    # 1. URL encoding -----------------------------------------------------------------
    B("1a", "eslwire.url_encode stops escaping ':'", WIRE,
      Patch(ESLWIRE, """_ESCAPED = set(b' #%&+:;<=>?@[\\\\]^`{|}"\\r\\n')""",
            """_ESCAPED = set(b' #%&+;<=>?@[\\\\]^`{|}"\\r\\n')""")),
    B("1b", "eslwire.url_encode writes lower-case hex (%3a)", WIRE,
      Patch(ESLWIRE, 'out += b"%%%02X" % b', 'out += b"%%%02x" % b')),
    B("1c", "eslwire.url_encode re-escapes an existing %XX (not idempotent)", WIRE,
      Patch(ESLWIRE, "if b == 0x25 and i + 2 < len(raw)", "if False and b == 0x25 and i + 2 < len(raw)")),
    B("1d", "eslwire.parse_event_plain does not URL-decode header values", WIRE,
      Patch(ESLWIRE, "headers = [(k, url_decode(v)) for k, v in parse_header_block(block)]",
            "headers = [(k, v) for k, v in parse_header_block(block)]")),
    # 2. reconnect ----------------------------------------------------------------------
    B("2a", "esl supervisor gives up after a dropped connection (no reconnect)", ESL + (LIFECYCLE,),
      Patch(ESLPY, "            delay = 0.0  # first retry immediately, then back off", "            break")),
    B("2b", "esl supervisor gives up when the first connect fails (no retry)", ESL,
      Patch(ESLPY, """            except EslError as exc:
                delay = self._backoff(delay)""", """            except EslError as exc:
                break""")),
    B("2c", "esl never probes an idle connection (dead socket never replaced)", ESL,
      Patch(ESLPY, "            if time.monotonic() - proto.last_rx >= self.keepalive_interval:",
            "            if False:")),
    # 3. resubscribe -------------------------------------------------------------------
    B("3a", "esl does not re-send 'event plain ...' after a reconnect", ESL + (LIFECYCLE,),
      Patch(ESLPY, """            self._expect_ok(proto.send(self._subscription), "event subscription")""",
            """            if self.connect_count == 0:
                self._expect_ok(proto.send(self._subscription), "event subscription")""")),
    B("3b", "esl does not restore filters after a reconnect", ESL,
      Patch(ESLPY, "            for h, v in self._filters:\n",
            "            for h, v in (self._filters if self.connect_count == 0 else []):\n")),
    B("3c", "esl does not tell on_connected handlers about a reconnect (no re-sync)", ESL + CALLS,
      Patch(ESLPY, """            self._queue.put(("connected", None))""",
            """            if self.connect_count == 1:
                self._queue.put(("connected", None))""")),
    # 4. bgapi correlation -------------------------------------------------------------
    B("4a", "bgapi results delivered FIFO instead of by Job-UUID", ESL,
      Patch(ESL_JOBS, """entry = self._jobs.pop(event.get("Job-UUID", "") or "", None)""",
            """entry = self._jobs.pop(next(iter(self._jobs)), None) if self._jobs else None""")),
    B("4b", "bgapi sent without our Job-UUID header", ESL,
      Patch(ESLPY, """reply = self.send(f"bgapi {cmd}\\nJob-UUID: {job}")""",
            """reply = self.send(f"bgapi {cmd}")""")),
    B("4c", "command replies matched LIFO instead of FIFO", ESL + CALLS,
      Patch(ESL_PROTO, "self._pending.popleft().set(reply)", "self._pending.pop().set(reply)")),
    # 5. timeouts ----------------------------------------------------------------------
    B("5a", "esl command waits forever (no timeout on the reply)", ESL,
      Patch(ESL_PROTO, "        timer = gevent.Timeout(timeout)\n", "        timer = gevent.Timeout(None)\n")),
    B("5b", "esl command timeout keeps the connection (late reply taken by the next command)", ESL,
      Patch(ESL_PROTO, """            self.mark_lost(f"no reply to {what!r} within {timeout:.1f}s")\n""", "")),
    B("5c", "bgapi jobs never expire", ESL,
      Patch(ESL_JOBS, "expiry = gevent.spawn_later(wait, self._expire_job, job, wait)",
            "expiry = gevent.spawn_later(10**6, self._expire_job, job, wait)")),
    B("5d", "pending commands not failed when the socket drops (wait for the timeout)", ESL,
      Patch(ESL_PROTO, """                slot.set_exception(EslDisconnected(f"ESL {self._owner.node}: connection lost ({reason})"))""",
            """                pass""")),
    # 6. greenswitch body defect -------------------------------------------------------
    B("6a", "greenswitch's event parser back (body glued to headers, URL-decoded)", WIRE + (FORK_SERVER,),
      Patch(ESL_PROTO, "                event = eslwire.parse_event_plain(frame.body)",
            """                gs = __import__("greenswitch.esl", fromlist=["ESLEvent"])
                event = eslwire.Event(list(gs.ESLEvent(frame.body.decode("utf-8", "replace")).headers.items()))""")),
    B("6b", "event body URL-decoded instead of kept raw", WIRE + (FORK_SERVER,),
      Patch(ESLWIRE, "        body = rest[:n]",
            """        body = url_decode(rest[:n].decode("utf-8", "replace")).encode("utf-8")""")),
    B("6c", "frame reader ignores Content-Length (splits on the first blank line)", WIRE,
      Patch(ESLWIRE, "            self._pending, self._need = headers, length",
            "            self._pending, self._need = headers, 0")),
    # 7. leaked session ---------------------------------------------------------------
    B("7a", "session cleanup does not remove the session from the worker", CALLS + (DRAIN,),
      Patch(SESSION, "        self.playout.close()\n        self.worker.session_closed(self)\n", "        self.playout.close()\n")),
    B("7b", "session cleanup does not close the fork WebSocket", CALLS,
      Patch(SESSION, """                self.fork.close(1000, "")""", """                pass""")),
    B("7c", "session cleanup does not delete shared-mode WAV files", CALLS,
      Patch(PLAYOUT, "                os.unlink(path)\n", "                pass\n")),
    B("7d", "dialog greenlet not killed at cleanup", CALLS,
      Patch(SESSION, "            g.kill(block=True, timeout=2)", "            pass")),
    # 8. busy limit ---------------------------------------------------------------------
    B("8a", "busy limit off by one (max_calls + 1 accepted)", CALLS,
      Patch(WORKER, '        if self._capacity_left() <= 0:\n            return "busy"',
            '        if self._capacity_left() < 0:\n            return "busy"')),
    B("8b", "refused call killed with NORMAL_CLEARING instead of USER_BUSY", CALLS + (DRAIN,),
      Patch(WORKER, """node.fs_async("kill", call_id, "USER_BUSY")""", """node.fs_async("kill", call_id, "NORMAL_CLEARING")""")),
    B("8c", "refused call never killed (only the fork is closed)", CALLS + (DRAIN,),
      Patch(WORKER, """            node.fs_async("kill", call_id, "USER_BUSY")""", """            pass""")),
    # 9. answer ------------------------------------------------------------------------
    B("9a", "inbound call answered before it is confirmed (answer first, then wait)", CALLS,
      Patch(SESSION, """            if self.direction == Direction.INBOUND and s.answer_inbound:
                try:
                    self.node.fs.answer(self.id)
                except Exception as exc:
                    log.warning("answer failed: %s", exc)
                    return
            self.answered_at = self.answered_at or time.monotonic()""",
            """            self.answered_at = self.answered_at or time.monotonic()"""),
      Patch(SESSION, """        try:
            if not self.confirmed.wait(s.fork_grace_seconds):""", """        try:
            if self.direction == Direction.INBOUND and s.answer_inbound:
                try:
                    self.node.fs.answer(self.id)
                except Exception as exc:
                    log.warning("answer failed: %s", exc)
                    return
            if not self.confirmed.wait(s.fork_grace_seconds):""")),
    B("9b", "inbound call answered even when never confirmed", CALLS,
      Patch(SESSION, """                self.node.fs_async("kill", self.id, "USER_BUSY")
                return""", """                pass""")),
    B("9c", "inbound call never answered", CALLS,
      Patch(SESSION, "                    self.node.fs.answer(self.id)", "                    pass")),
    # 10. fork server upgrade --------------------------------------------------------
    B("10a", "fork server accepts a missing/wrong subprotocol (own check gone, websockets negotiation off)", FORK + CALLS,
      Patch(FORKSRV, "        if forkwire.SUBPROTOCOL not in offered:", "        if False:"),
      Patch(FORKSRV, "            subprotocols=[Subprotocol(forkwire.SUBPROTOCOL)],", "            subprotocols=None,")),
    B("10b", "fork server skips Basic auth", FORK + CALLS,
      Patch(FORKSRV, "        if self._auth is not None and not self._authorized(request.headers):",
            "        if False:")),
    B("10c", "fork server Basic auth ignores the password", FORK + CALLS,
      Patch(FORKSRV, "        return bool(sep) and ok_user and ok_pw", "        return bool(sep) and ok_user")),
    B("10d", "fork server accepts any path (no uuid routing check)", FORK + CALLS,
      Patch(FORKSRV, "        return rest if is_call_uuid(rest) else None", "        return rest")),
    # 11. metadata ---------------------------------------------------------------------
    B("11a", "metadata parser fails on concatenated JSON (json.loads)", FORK + CALLS,
      Patch(FORKWIRE, """        values = parse_json_values(text)
    except ValueError as exc:
        return ParsedMetadata(""", """        values = [json.loads(text)]
    except ValueError as exc:
        return ParsedMetadata(""")),
    B("11b", "metadata parser drops the values after the first", FORK + CALLS,
      Patch(FORKWIRE, "    first, rest = values[0], values[1:]", "    first, rest = values[0], []")),
    # 12. emulator fidelity ----------------------------------------------------------
    B("12a", "emulator: '-ERR No such channel!' becomes '-ERR no such channel' (uuid_kill)", EMU,
      Patch(EMU_API_CMDS, """            return "-ERR No such channel!\\n"
        ch.do_hangup(""", """            return "-ERR no such channel\\n"
        ch.do_hangup(""")),
    B("12c", "emulator: Core-UUID before Event-Name in every event", EMU,
      Patch(EMU_EVENTS, """            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),""", """            ("Core-UUID", self.core_uuid),
            ("Event-Name", name),""")),
    B("12d", "emulator: event frames say Content-Type before Content-Length", EMU,
      Patch(EMU_ESL, """frame = encode_frame([("Content-Length", str(len(body))), ("Content-Type", ctype)], body)""",
            """frame = encode_frame([("Content-Type", ctype), ("Content-Length", str(len(body)))], body)""")),
    B("12e", "emulator: uuid_broadcast replies '+OK' instead of '+OK Message sent'", EMU,
      Patch(EMU_API_CMDS, 'return "+OK Message sent\\n"', 'return "+OK\\n"')),
    B("12f", "emulator: event-plain body without its inner Content-Length", EMU,
      Patch(EMU_EVENTS, """            return head + b"Content-Length: %d\\n\\n" % len(self.body) + self.body
        return head + b"\\n"

    def json""", """            return head + b"\\n" + self.body
        return head + b"\\n"

    def json""")),
    # 13. redis ------------------------------------------------------------------------
    B("13a", "redis inbox drops every command", CALLS,
      Patch(INBOX, "            self._handle(item[1])", "            pass")),
    B("13b", "call record not removed from redis at hangup", CALLS,
      Patch(WORKER, "            self.store.remove(sess.id)", "            pass")),
    B("13c", "inbox listener dies on the first redis error", CALLS,
      Patch(INBOX, """                log.warning("inbox: redis error: %s", exc)""",
            """                log.warning("inbox: redis error: %s", exc)
                return""")),
    B("13d", "worker does not register the call in redis", CALLS,
      Patch(WORKER, """            self.store.register({""", """            0 and self.store.register({""")),
    # 14. drain -------------------------------------------------------------------------
    B("14a", "SIGTERM stops at once without draining", (DRAIN,),
      Patch(WORKER, "gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.drain))",
            "gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.stop))")),
    B("14b", "SIGTERM drain with a zero timeout (live calls cut)", (DRAIN,),
      Patch(WORKER, "gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.drain))",
            "gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.drain, 0))")),
    B("14c", "draining worker still accepts new calls", (DRAIN,) + CALLS,
      Patch(WORKER, """        if self.draining:
            return "draining"
""", "")),
    # 15. fork restart ----------------------------------------------------------------
    B("15a", "lost fork never restarted (call hung up at once)", CALLS,
      Patch(SESSION, "                if self.fork_restarts < 1:", "                if False:")),
    B("15b", "lost fork restarted forever", CALLS,
      Patch(SESSION, "                if self.fork_restarts < 1:", "                if True:")),
    B("15c", "lost fork never detected (closed fork ignored)", CALLS,
      Patch(SESSION_FORK, "        if self.fork_lost_at is not None and now - self.fork_lost_at > s.fork_grace_seconds:",
            "        if False:")),
    # extras ---------------------------------------------------------------------------
    B("16a", "one failing event handler stops dispatch for everybody", ESL,
      Patch(ESL_DISPATCH, """                    except Exception:
                        log.exception(
                            "ESL %s: event handler %s failed on %s for call %s",""", """                    except ZeroDivisionError:
                        log.exception(
                            "ESL %s: event handler %s failed on %s for call %s",""")),
    B("16b", "worker acts on a session's events coming from another node", CALLS,
      Patch(WORKER, "        if sess is not None and sess.node is node:", "        if sess is not None:")),
    B("16c", "max call duration not enforced", CALLS,
      Patch(SESSION, "            if now >= deadline:", "            if False:")),
    B("16d", "barge-in does not send uuid_break", CALLS + (COMMANDS,),
      Patch(PLAYOUT, """        sess.node.fs_async("break_playback", sess.id, all=True)\n""", "")),
    B("16e", "hangup at the end of the dialog skipped (agent never hangs up)", CALLS,
      Patch(SESSION, """                self._wait_playbacks(timeout=30)
                self.hangup()""", """                self._wait_playbacks(timeout=30)
                self.ended.wait()""")),
    B("16f", "forbidden connection-level commands (myevents, nixevent...) allowed", ESL,
      Patch(ESLPY, "        if any(first == f or first.startswith(f + \" \") for f in FORBIDDEN):",
            "        if False:")),
    B("16g", "fork server keeps odd-length audio frames", FORK,
      Patch(FORKSRV, "        if len(data) % 2:", "        if False:")),
    B("16h", "re-sync after reconnect does not clean up calls that vanished", CALLS,
      Patch(NODE_LINK, "                sess.kill()", "                pass")),
]

# --------------------------------------------------------------------------- first contact (issue 6)
PACKAGING = "tests/packaging/test_wheel.py"
DIALOG_LLM = "tests/dialog/test_dialog_llm.py"
PROFILES_T = "tests/dialog/test_dialog_profiles.py"
SENTENCES_T = "tests/dialog/test_dialog_sentences.py"
STT_TTS_T = "tests/speech/test_stt_tts.py"
E2E_CONV = "tests/e2e/test_conversation.py"
E2E_DEMO = "tests/e2e/test_demo.py"
EMU_API_T = "tests/emulator/test_emulator_api.py"
BREAKAGES += [
    B("20a", "the default greeting is left out of the wheel", (PACKAGING,),
      Patch("setup.cfg", "api/templates/*.css, calls/data/*.wav, emulator/data/*.json",
            "api/templates/*.css, emulator/data/*.json")),
    B("20b", "a JSON call of a tool that does not exist is spoken to the caller", (DIALOG_LLM,),
      Patch("voiceagent/dialog/text_tool_calls.py", "        if name not in names and not (_TOOL_NAME.fullmatch(name) and",
            "        if name not in names or not (_TOOL_NAME.fullmatch(name) and")),
    B("20c", "the prompt does not say what the tools can do", (PROFILES_T,),
      Patch("voiceagent/dialog/profiles.py", '            "capabilities": capabilities or "only talk: you have no tools",',
            '            "capabilities": "help the caller",')),
    B("20d", "a transfer is offered on a line without transfer targets", (PROFILES_T,),
      Patch("voiceagent/dialog/conversation.py",
            "        self.tool_names = [n for n in known if (tool := tools.get(n)) is not None and tool.available(profile)]",
            "        self.tool_names = list(known)")),
    B("20e", "the first clause waits for the end of the whole sentence", (SENTENCES_T,),
      Patch("voiceagent/dialog/sentences.py", "        soft = self.first_soft_limit if self.first_soft_limit and not self._emitted else self.soft_limit",
            "        soft = self.soft_limit")),
    B("20f", "calls do not warm their own prompt prefix", (E2E_CONV,),
      Patch("voiceagent/calls/voice_dialog.py", "                self.spawn(self.svc.warm_llm_prefix, self.conv)", "                pass")),
    B("20g", "the demo caller waits 20 s after its last line was answered", (E2E_DEMO,),
      Patch("voiceagent/demo.py", "        if not ch.wait_hangup(2.0):", "        if not ch.wait_hangup(20.0):")),
    B("20h", "times are read 'seven forty-seven A M' again", (SENTENCES_T,),
      Patch("voiceagent/dialog/sentences.py", '("a.m." if ampm.lower().startswith("a") else "p.m.")', '("A M" if ampm.lower().startswith("a") else "P M")')),
    B("20i", "Piper's noise settings are ignored (speech in tests not deterministic)", (STT_TTS_T,),
      Patch("voiceagent/speech/tts.py", "noise_scale=noise_scale, noise_w_scale=noise_w)", "noise_scale=None, noise_w_scale=None)")),
    B("20j", "the warm start skips the VAD/endpointer", (E2E_CONV,),
      Patch("voiceagent/calls/warmup.py", "        for i in range(0, len(stream), frame):", "        for i in range(0):")),
    B("20k", "emulator and worker default to different ESL passwords", (EMU_API_T,),
      Patch("voiceagent/emulator/cli.py", 'os.environ.get("ESL_PASSWORD") or _WORKER_DEFAULT_PASSWORD,', 'os.environ.get("ESL_PASSWORD") or "ClueCon",')),
    B("20m", "litellm's service hook runs asyncio.run on the greenlet again (segfaults under gevent)", (DIALOG_LLM,),
      Patch("voiceagent/dialog/llm.py", "                _quiet_service_hooks(litellm)\n", "")),
    B("20l", "a late answer leaves the caller in silence (no acknowledgement)", (E2E_CONV,),
      Patch("voiceagent/calls/voice_dialog.py", "            if g.cancelled or played or self.call.ended.is_set():",
            "            if True:")),
]


# --------------------------------------------------------------------------- typed seams (issue 8): the edge
RUNTIME_IMPORTS = "tests/packaging/test_runtime_imports.py"
STACK_T = "tests/emulator/test_stack.py"
DIALOG_CONV = "tests/dialog/test_dialog_conversation.py"
BREAKAGES += [
    B("21a", "the rule-based responder answers a time question without asking get_datetime", (DIALOG_CONV, E2E_DEMO),
      Patch("voiceagent/dialog/rule_based.py", '        return Answer(tool_calls=(("get_datetime", {}),))',
            "        return Answer(FALLBACK)")),
    B("21b", "the one-process stack leaves the dialplan forking to the default URL, not its worker", (STACK_T,),
      Patch("voiceagent/emulator/stack.py", "            emu.set_preprocessor_var(FORK_URL_VAR, worker.fork_url_base)\n", "")),
    B("21c", "a kit without an LLM reaches into voiceagent.testing again", (RUNTIME_IMPORTS,),
      Patch("voiceagent/dialog/kit.py", "            demo = llm = RuleBasedLlm()",
            "            from ..testing import llm_server  # noqa: F401\n            demo = llm = RuleBasedLlm()")),
    B("21d", "a channel imports the emulator that creates it (import cycle)", (RUNTIME_IMPORTS,),
      Patch("voiceagent/emulator/channel.py", "from .switch import Switch\n",
            "from .switch import Switch\nfrom .core import FreeSwitchEmulator  # noqa: F401\n")),
    B("21e", "the rule-based responder sends its whole reply as one piece (no word-by-word streaming)", (DIALOG_CONV,),
      Patch("voiceagent/dialog/rule_based.py", '    return re.findall(r"\\S+\\s*|\\s+", text) if text else []',
            "    return [text] if text else []")),
]


# --------------------------------------------------------------------------- hardening (issue 7)
# Three groups, kept apart so that work on each merges cleanly.

# 17. the fork edge: accept loop, connection caps, unconfirmed forks, fork takeover, auth defaults
FORK_HARD = "tests/telephony/test_fork_hardening.py"
FORK_SETTINGS = "tests/telephony/test_fork_settings.py"
FORK_EDGE = "tests/calls/test_fork_edge.py"
FORK_LOAD = "tests/calls/test_fork_load.py"
FORKLISTEN = "voiceagent/telephony/fork_listener.py"
FORKGUARD = "voiceagent/telephony/fork_guard.py"
INTAKE = "voiceagent/calls/fork_intake.py"
THROTTLE = "voiceagent/observability/log_throttle.py"
CONFIG = "voiceagent/config/telephony.py"  # the ESL, fork and playback sections
FS_DIALPLAN = "freeswitch/conf/dialplan/public/50_voiceagent.xml"  # what the emulator runs from a checkout
EMU_DIALPLAN = "voiceagent/emulator/data/conf/dialplan/public/50_voiceagent.xml"  # its packaged copy
BREAKAGES += [
    # finding 1: accept loop, caps, deadlines, descriptors, health
    B("17a", "fork accept loop leaves on EMFILE (websockets' serve_forever behaviour)", (FORK_HARD,),
      Patch(FORKLISTEN, "                    delay = self._accept_failed(exc, delay)\n", "                    break\n")),
    B("17b", "no per-address cap on unconfirmed fork sockets", (FORK_HARD,),
      Patch(FORKGUARD, "            if mine is not None and len(mine) >= self.max_pending_per_address:",
            "            if False:")),
    B("17c", "no total cap on fork sockets", (FORK_HARD,),
      Patch(FORKGUARD, "            if self.total >= self.max_total:", "            if False:")),
    B("17d", "a socket carrying a confirmed call can be dropped by the caps", (FORK_HARD,),
      Patch(FORKGUARD, """            self._forget_pending_locked(slot)
            slot.established = True""", """            slot.established = True""")),
    B("17e", "no deadline for a fork's first frame (silent forks kept by keepalive pings)", (FORK_HARD,),
      Patch(FORKSRV, "                msg = self._ws.recv(timeout=self._first_frame_timeout if first else None)",
            "                msg = self._ws.recv()")),
    B("17f", "soft RLIMIT_NOFILE not raised at start-up", (FORK_EDGE,),
      Patch(FORKGUARD, "    if soft != resource.RLIM_INFINITY and soft < target:", "    if False:")),
    B("17g", "heartbeat always says the fork server is serving", (FORK_EDGE,),
      Patch(WORKER, """"fork_serving": int(bool(fork.get("serving"))),""", """"fork_serving": 1,""")),
    B("17h", "fork server health ignores running out of descriptors", (FORK_HARD,),
      Patch(FORKLISTEN, "        return last is None or time.monotonic() - last > _DEGRADED_FOR", "        return True")),
    # finding 2: unconfirmed forks, FreeSWITCH cost, log floods
    B("17i", "unconfirmed forks count against MAX_CALLS", (FORK_EDGE, FORK_LOAD),
      Patch(WORKER, """        return sum(1 for sess in self.sessions.values()
                   if sess.admitted or (sess.direction is Direction.OUTBOUND and not sess.state.over))""",
            "        return len(self.sessions)")),
    B("17j", "unconfirmed forks written to Redis as live calls", (FORK_EDGE,),
      Patch(WORKER, """        if admitted:
            self.admit_session(sess)
        return sess""", """        self.admit_session(sess)
        sess.admitted = admitted
        return sess""")),
    B("17k", "a fork for a uuid FreeSWITCH says does not exist is still uuid_kill'ed", (FORK_EDGE,),
      Patch(SESSION, "                if not self.channel_absent:", "                if True:")),
    B("17l", "uuid_exists asked again and again for an unconfirmed fork", (FORK_EDGE,),
      Patch(INTAKE, "            if not sess.channel_absent:\n                try:", "            if True:\n                try:")),
    B("17m", "refusal log lines not throttled", (FORK_HARD, FORK_LOAD),
      Patch(THROTTLE, "            if k is not None and now - k.last < self.interval:", "            if False:")),
    # finding 3: takeover
    B("17n", "a second fork replaces a call's live fork", (FORK_EDGE,),
      Patch(SESSION_FORK, """        return old is None or old.closed or self.expects_fork()""",
            "        return True"),
      Patch(INTAKE, """        if sess is not None and not sess.may_attach_fork():""", """        if False:""")),
    B("17o", "fork restart does not tell the session to expect the new fork", (FORK_EDGE,),
      Patch(SESSION_FORK, "        self.expect_fork(self.worker.settings.fork_arrival_timeout)  # only this new fork may replace the old\n",
            "")),
    # finding 4: open by default
    B("17p", "FORK_HOST defaults to 0.0.0.0 again", (FORK_SETTINGS,),
      Patch(CONFIG, """    fork_host: str = Field(default="127.0.0.1",""", """    fork_host: str = Field(default="0.0.0.0",""")),
    B("17q", "non-loopback fork bind without auth accepted", (FORK_SETTINGS,),
      Patch(CONFIG, "    if not user and not is_loopback_host(s.fork_host) and not s.fork_allow_insecure:",
            "    if False:")),
    B("17r", "half-configured fork auth accepted (password without user, user without password)", (FORK_SETTINGS,),
      Patch(CONFIG, "    if user and not password:", "    if False:"),
      Patch(CONFIG, "    if password and not user:", "    if False:")),
    B("17s", "no warning when the advertised fork URL is loopback but a node is remote", (FORK_SETTINGS,),
      Patch(INTAKE, "    if not is_loopback_host(host):\n        return None", "    if True:\n        return None")),
    # finding 11: JSON, dialplan, SIGINT
    B("17t", "deeply nested JSON reaches json (RecursionError escapes)", (FORK_HARD,),
      Patch(FORKWIRE, "    if not _json_depth_ok(text):", "    if False:"),
      Patch(FORKWIRE, "        except RecursionError:", "        except ZeroDivisionError:")),
    B("17u", "metadata with a repeated key accepted (it picks the sample rate)", (FORK_HARD,),
      Patch(FORKWIRE, "        parse_json_values(text, unique_keys=True)  #", "        0 and parse_json_values(text, unique_keys=True)  #")),
    B("17v", "dialplan pastes the caller id into the metadata JSON again", (FORK_EDGE, EMU_API), *(
      Patch(f, "&quot;node&quot;:&quot;${switchname}&quot;,&quot;direction&quot;",
            "&quot;node&quot;:&quot;${switchname}&quot;,&quot;caller&quot;:&quot;${caller_id_number}&quot;,"
            "&quot;direction&quot;") for f in (FS_DIALPLAN, EMU_DIALPLAN))),
    B("17w", "caller and callee taken from the fork metadata instead of FreeSWITCH", (FORK_EDGE, LIFECYCLE),
      Patch(INTAKE, "        sess.caller, sess.callee = caller, callee",
            """        sess.caller, sess.callee = str(sess.metadata.get("caller", "")), str(sess.metadata.get("callee", ""))""")),
    B("17x", "the worker's own fork metadata carries caller ids (restart fails on a quote)", (FORK_EDGE,),
      Patch(WORKER, """        return {"uuid": sess.id, "node": sess.node.name, "direction": sess.direction.value}""",
            """        return {"uuid": sess.id, "node": sess.node.name, "caller": sess.caller, "callee": sess.callee,
                "direction": sess.direction.value}""")),
    B("17y", "fork server stop waits for handshakes in progress", (FORK_HARD, FORK_EDGE),
      Patch(FORKSRV, """        for slot in self.guard.pending_slots():
            if not slot.upgraded:
                slot.abort()""", """        return""")),
    B("17z", "worker stop leaves pending forks waiting out their grace window", (FORK_EDGE,),
      Patch(WORKER, """                sess.refuse("stopping")""", """                pass""")),
    # finding 12a / 12d
    B("17za", "admission ignores event-loop lag", (FORK_EDGE,),
      Patch(WORKER, "        if max_lag and self.loop_lag.lag_ms > max_lag:", "        if False:")),
    B("17zb", "a call whose fork failed to connect is left parked", (FORK_EDGE,),
      Patch(WORKER, "            self.spawn(self.intake.orphan_fork_failed, node, ev, call_id=u)", "            pass")),
    B("17zc", "connect_failed of somebody else's fork hangs up the call", (FORK_EDGE,),
      Patch(INTAKE, """                if node.fs.getvar(u, "voiceagent_fork") is None:""", """                if False:""")),
    B("17zd", "a claimed call whose fork never arrives is left parked", (FORK_EDGE,),
      Patch(WORKER, "        self.intake.watch_claimed(node, u)", "        pass")),
    B("17ze", "ForkConnection reads remote_address of a socket closed under it", (FORK_HARD,),
      Patch(FORKSRV, "        self.remote = slot.remote if slot is not None else _remote_of(ws)",
            """        self.remote = "%s:%s" % tuple(ws.remote_address[:2])""")),
]


# 18. state and recovery: inbox validation, orphan sweep, playback watchdog, records, bulk hangup
INBOX_CMDS = "voiceagent/calls/inbox_commands.py"
RECOVERY = "voiceagent/calls/recovery.py"
FLAGS = "voiceagent/calls/flags.py"
T_COMMANDS = "tests/calls/test_inbox_commands.py"
T_ORPHANS = "tests/calls/test_orphans.py"
T_FAULTS = "tests/calls/test_state_faults.py"
T_BULK = "tests/calls/test_bulk_hangup.py"
T_POOL = "tests/calls/test_redis_pool.py"
BREAKAGES += [
    B("18a", "play command accepts dialplan syntax (set::, file!CAUSE, relative paths)", (T_COMMANDS,),
      Patch(INBOX_CMDS, """        problem = media_path_problem(v)
        if problem:
            raise ValueError(problem)
        return v""", """        return v""")),
    B("18b", "worker plays any file: play path not confined to PLAYBACK_DIR/MEDIA_DIRS (symlink escapes)", (T_COMMANDS,),
      Patch(WORKER, "                path = resolve_media_path(cmd.file, [self.settings.playback_dir, *self.settings.media_dirs])",
            "                path = cmd.file")),
    B("18c", "transfer command accepts the 'inline' dialplan", (T_COMMANDS,),
      Patch(INBOX_CMDS, '    dialplan: Literal["XML"] = "XML"',
            """    dialplan: str = Field(default="XML", pattern=r"^[A-Za-z0-9_]+$")""")),
    B("18d", "an invalid inbox command kills the listener", (T_COMMANDS,),
      Patch(INBOX, """        except ValidationError as exc:
            log.warning("inbox: dropping invalid command""", """        except KeyError as exc:
            log.warning("inbox: dropping invalid command""")),
    B("18e", "no orphan sweep: a dead worker's calls stay parked and listed", (T_ORPHANS,),
      Patch(RECOVERY, """            if alive[owner]:
                continue
            if not store.claim""", """            if True:
                continue
            if not store.claim""")),
    B("18f", "orphan sweep without the per-call claim (every worker kills)", (T_ORPHANS,),
      Patch(RECOVERY, """            if not store.claim("sweep", call_id""", """            if False and not store.claim("sweep", call_id""")),
    B("18g", "send_command queues into a dead worker's inbox", (T_ORPHANS,),
      Patch(INBOX, """        if not self.worker_alive(worker_id):""", """        if False:""")),
    B("18h", "the heartbeat does not refresh the inbox TTL", (T_ORPHANS,),
      Patch(INBOX, """        pipe.expire(self.inbox_key(worker_id), max(1, int(ttl)))\n""", "")),
    B("18i", "PLAYBACK_DIR never swept of stale WAVs", (T_ORPHANS,),
      Patch(RECOVERY, """        cutoff = time.time() - w.settings.playback_max_age_minutes * 60
""", """        cutoff = time.time() - w.settings.playback_max_age_minutes * 60
        return 0
""")),
    B("18j", "PLAYBACK_DIR sweep ignores our file-name pattern (deletes other files)", (T_ORPHANS,),
      Patch(RECOVERY, "            if not PLAYBACK_FILE_RE.match(entry.name) or not entry.is_file(follow_symlinks=False):",
            "            if not entry.is_file(follow_symlinks=False):")),
    B("18k", "unowned parked call whose fork failed waits out its park timeout", (T_ORPHANS,),
      Patch(WORKER, "            self.spawn(self.intake.orphan_fork_failed, node, ev, call_id=u)", "            pass")),
    B("18n", "no playback watchdog (a lost PLAYBACK_STOP keeps the agent 'speaking')", (T_FAULTS,),
      Patch(SESSION, "            self._expire_playbacks(now, s.playback_margin_seconds)\n", "")),
    B("18o", "playbacks not reconciled after an ESL reconnect", (T_FAULTS,),
      Patch(NODE_LINK, "                sess.reconcile_playbacks()  # their PLAYBACK_STOPs may have been lost in the outage",
            "                pass")),
    B("18p", "heartbeat writes single fields (half a record after a Redis restart)", (T_FAULTS,),
      Patch(WORKER, """                    self.store.refresh(self._record(sess))""", """                    self.store.update(sess.id, state=sess.state.value)""")),
    B("18q", "writes that fail while Redis is down are dropped, not replayed", (T_FAULTS,),
      Patch(INBOX, """        self._pending[call_id] = (op, data)
        while len(self._pending) > MAX_PENDING_OPS:""", """        self._apply(call_id, op, data)
        return
        while len(self._pending) > MAX_PENDING_OPS:""")),
    B("18r", "heartbeat refreshes records of calls that already ended", (T_FAULTS,),
      Patch(WORKER, """                if (sess.admitted and sess.confirmed.is_set() and not sess.ended.is_set()
                        and sess.state != CallState.ENDED):""", "                if sess.admitted:")),
    B("18s", "session events are plain gevent Events again (lost wake-up on bulk hangup)", (T_BULK,),
      Patch(FLAGS, """        if self.is_set():
            return True
""", "")),
    B("18t", "sessions stuck after their hangup are never reaped", (T_FAULTS,),
      Patch(RECOVERY, "            sess.force_close()", "            pass")),
    B("18u", "non-blocking Redis pool (\"Too many connections\" under load)", (T_POOL,),
      Patch(INBOX, "    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=pool_timeout,",
            "    pool = redis.ConnectionPool.from_url(url, max_connections=max_connections,")),
    B("18v", "the inbox BLPOP holds a connection of the shared pool", (T_POOL,),
      Patch(INBOX, """    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class,
                                                            max_connections=1, **kwargs))""",
            """    return redis.Redis(connection_pool=pool)""")),
    B("18w", "a call's writes may overtake each other (remove before a late refresh: stale record)", (T_POOL,),
      Patch(INBOX, "            call_id = next((c for c in self._pending if c not in self._inflight), None)",
            "            call_id = next(iter(self._pending), None)")),
]


# 19. ESL and configuration: reconnect backoff, event flood, start-up checks, secrets masking
ESL_FLOOD = "tests/calls/test_esl_flood.py"
STARTUP = "tests/calls/test_startup_config.py"
ESLQUEUE = "voiceagent/telephony/eslqueue.py"
CONFIG_SPEECH = "voiceagent/config/speech.py"
CONFIG_BASE = "voiceagent/config/base.py"
STARTUP_PY = "voiceagent/startup.py"
VOICE_CLI = "voiceagent/workers_cli.py"
BREAKAGES += [
    B("19a", "esl backoff resets after every connect, however short (reconnect storm)", ESL,
      Patch(ESLPY, "            if time.monotonic() - up_since < self.healthy_after:", "            if False:")),
    B("19b", "reconnect-cycle log lines not throttled", ESL,
      Patch(ESLPY, "self._log_throttle = LogThrottle(log, _RECONNECT_LOG_INTERVAL)", "self._log_throttle = LogThrottle(log, 0.0)")),
    B("19c", "log lines repeat the node prefix ('ESL fs1: ESL fs1: ...')", ESL,
      Patch(ESL_ERRORS, "    while text.startswith(prefix):", "    while False:")),
    B("19d", "esl event queue without back-pressure (the reader never stops reading)", ESL + (ESL_FLOOD,),
      Patch(ESLQUEUE, "        if size >= self.limit and self._room.is_set():", "        if False:")),
    B("19e", "esl reader never yields while data is waiting", ESL + (ESL_FLOOD,),
      Patch(ESL_PROTO, "                        gevent.sleep(0)  # recv with data waiting never switches: let the others run\n"
                   "                gevent.sleep(0)\n",
            "                        pass\n")),
    B("19f", "a call's events handled inline by the node's dispatcher (no per-call lanes)", CALLS + (ESL_FLOOD,),
      Patch(NODE_LINK, "            self.lanes.put(u, ev)  # this worker's call: delivered in its own lane",
            "            self.worker.on_node_event(self, ev)")),
    B("19g", "voice skips the start-up checks (files, ports, Redis)", (STARTUP, DRAIN),
      Patch(VOICE_CLI, "            preflight(settings)  # files, ports, Redis: before loading models, one line per problem",
            "            pass")),
    B("19h", "Redis reachability not checked at start-up", (STARTUP, DRAIN),
      Patch(STARTUP_PY, "    problems = check_esl_nodes(s) + check_files(s) + check_ports(s) + check_redis(s)",
            "    problems = check_esl_nodes(s) + check_files(s) + check_ports(s)")),
    B("19i", "ESL_NODES accepts ports above 65535 and duplicate node names", (STARTUP,),
      Patch(CONFIG, "            if int(port) > 65535:", "            if False:"),
      Patch(CONFIG, "            if name in nodes:", "            if False:")),
    B("19j", "PAUSE_MS >= END_OF_TURN_MS accepted", (STARTUP,),
      Patch(CONFIG_SPEECH, "        if self.pause_ms and self.pause_ms >= self.end_of_turn_ms:", "        if False:")),
    B("19k", "credentials inside URLs shown by 'voiceagent config'", (STARTUP,),
      Patch(CONFIG_BASE, """        netloc = "***@" + netloc.rsplit("@", 1)[1]""", "        pass")),
    B("19l", "bind check of FORK_PORT / METRICS_PORT skipped (port in use = traceback)", (STARTUP,),
      Patch(STARTUP_PY, """    problems = check_bind("FORK_HOST", s.fork_host, "FORK_PORT", s.fork_port, s.fork_reuse_port)""",
            "    problems = []")),
    B("19m", "a stuck call's event lane grows without bound (and the call is never given up)", ("tests/calls/test_lanes.py",),
      Patch("voiceagent/calls/lanes.py", "        if len(lane.events) >= self.limit:", "        if False:")),
]

# --------------------------------------------------------------------------- typed seams inside the worker (issue 8)
CALL_STATE = "voiceagent/calls/call_state.py"
OBSERVERS = "voiceagent/calls/observers.py"
OUTBOUND_PY = "voiceagent/calls/outbound.py"
EVENTS_PY = "voiceagent/telephony/events.py"
T_CALL_STATE = "tests/calls/test_call_state.py"
T_PORTS = "tests/calls/test_session_ports.py"
BREAKAGES += [
    B("23a", "the call state machine takes an illegal transition (an ended call comes back)", (T_CALL_STATE, T_PORTS),
      Patch(CALL_STATE, "        if state not in ALLOWED[cur]:", "        if False:")),
    B("23b", "typed events: a PLAYBACK_STOP by uuid_break reads as played to its end", (T_PORTS, CALLS_EDGE),
      Patch(EVENTS_PY, '        return self.status == "break"', "        return False")),
    B("23c", "observers miss the states a call had before they heard of it (OFFERED, REQUESTED)", (T_PORTS, OUTBOUND),
      Patch(SESSION, "        for t in self.states.history:\n            self.worker.notify.call_state(info, t.state, t.at)",
            "        pass")),
    B("23d", "an outbound call never shows RINGING on CHANNEL_PROGRESS", (OUTBOUND,),
      Patch(SESSION, "            if self.state is CallState.DIALING:\n                self._to(CallState.RINGING)",
            "            if False:\n                pass")),
    B("23e", "an observer that raises breaks the call (and the observers after it)", (T_PORTS,),
      Patch(OBSERVERS, "            except Exception:\n                log.exception", "            except ZeroDivisionError:\n                log.exception")),
    B("23f", "a failed originate leaves its session behind (a live call that never was)", (OUTBOUND,),
      Patch(OUTBOUND_PY, "            sess.finish_unstarted(cause, outcome)\n", "")),
    B("23g", "the worker does not subscribe to CHANNEL_PROGRESS (no RINGING, ever)", (OUTBOUND,),
      Patch(NODE_LINK, "port, events=fs_events.worker_subscription())", "port)")),
]



# 22. settings grouped by concern, and every setting reaching its consumer
REACH = "tests/test_settings_reach.py"
CONFIG_SECTIONS_T = "tests/test_config_sections.py"
CONFIG_SETTINGS = "voiceagent/config/settings.py"
COMMANDS_PY = "voiceagent/telephony/commands.py"
CLI_PY = "voiceagent/cli.py"
BREAKAGES += [
    B("22a", "BGAPI_TIMEOUT dropped from the ESL connection's construction", (REACH, ESL_CLIENT),
      Patch(ESLPY, """        kw.setdefault("bgapi_timeout", settings.bgapi_timeout)\n""", "")),
    B("22b", "the originate waits ring timeout + 30 s whatever BGAPI_TIMEOUT says", (REACH,),
      Patch(COMMANDS_PY, "originate_wait(self.conn.bgapi_timeout, timeout)", "timeout + 30.0")),
    B("22c", "ESL_EVENT_QUEUE_MAX dropped from the ESL connection's construction", (REACH,),
      Patch(ESLPY, """        kw.setdefault("max_queued_events", settings.esl_event_queue_max)\n""", "")),
    B("22d", "a setting that nobody reads", (REACH,),
      Patch(CONFIG, "    esl_event_queue_max: int = Field(",
            """    esl_spare_knob: int = Field(default=1, description="Read by nobody.")\n"""
            "    esl_event_queue_max: int = Field(")),
    B("22e", "load_sections validates every section (a bad variable of another concern stops the process)",
      (CONFIG_SECTIONS_T,),
      Patch(CONFIG_SETTINGS, "    return load(compose(*sections), **overrides)", "    return load(Settings, **overrides)")),
    B("22f", "'voiceagent config' prints no section headings", (CONFIG_SECTIONS_T,),
      Patch(CLI_PY, """        click.echo(f"# === {section.title} ===")\n""", "")),
    B("22g", "'voiceagent config' shows secrets", (CONFIG_SECTIONS_T, STARTUP),
      Patch(CONFIG_BASE, """        value = "***" if value.get_secret_value() else \"\"""", "        value = value.get_secret_value()")),
]


# --------------------------------------------------------------------------- call records, requests, events (issue 8)
T_REC_CLIENT = "tests/records/test_client.py"
T_REC_STREAM = "tests/records/test_stream.py"
T_REC_REPORTER = "tests/records/test_reporter.py"
T_REQUESTS = "tests/calls/test_call_requests.py"
T_CHOICE = "tests/e2e/test_choice_calls.py"
T_PURPOSE = "tests/dialog/test_purpose.py"
REC_STORE = "voiceagent/records/store.py"
REC_STREAM = "voiceagent/records/stream.py"
REC_CLIENT = "voiceagent/records/client.py"
REC_REPORTER = "voiceagent/records/reporter.py"
TAKER = "voiceagent/calls/request_taker.py"
PURPOSE = "voiceagent/dialog/purpose.py"
CALL_PURPOSE = "voiceagent/calls/call_purpose.py"
BREAKAGES += [
    B("24a", "taking a request does not remove it (two workers dial the same request)", (T_REC_CLIENT, T_REQUESTS),
      Patch(REC_STORE, "local got = redis.call('ZPOPMIN', KEYS[1])",
            "local got = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')")),
    B("24b", "a second end overwrites the first outcome", (T_REC_CLIENT,),
      Patch(REC_STORE, '    """Mark ``rec`` ended (once: a later end keeps the first outcome)."""\n    if rec.ended:\n        return\n',
            '    """Mark ``rec`` ended (once: a later end keeps the first outcome)."""\n')),
    B("24c", "a consumer's unacknowledged events are not given back to it", (T_REC_STREAM,),
      Patch(REC_STREAM, 'own = self._decode(self.r.xreadgroup(group, consumer, {self.key: "0"}',
            'own = self._decode(self.r.xreadgroup(group, consumer, {self.key: ">"}')),
    B("24d", "a new consumer group starts at the end (a late consumer misses what came before)", (T_REC_STREAM,),
      Patch(REC_STREAM, 'def ensure_group(self, group: str, start: str = "0")',
            'def ensure_group(self, group: str, start: str = "$")')),
    B("24e", "records of a dead worker's calls stay open forever", (T_REQUESTS,),
      Patch(RECOVERY, "            if alive[owner]:\n                continue\n            now = time.time()",
            "            if True:\n                continue\n            now = time.time()")),
    B("24f", "the taker dials without marking the record claimed first", (T_REQUESTS,),
      Patch(TAKER, '                rec.state = "claimed"\n                rec.history.append(StateChange(state="claimed", at=now))\n',
            "")),
    B("24g", "an ambiguous spoken answer picks one of the options", (T_PURPOSE,),
      Patch(PURPOSE, "        if len(hits) != 1:\n            return None", "        if not hits:\n            return None")),
    B("24h", "a choice call's answers go to the LLM instead of the word matcher", (T_CHOICE,),
      Patch(CALL_PURPOSE, "        return self.choice is not None and not self.choice.done",
            "        return False")),
    B("24i", "the idempotency key is ignored (the same request placed twice)", (T_REC_CLIENT,),
      Patch(REC_STORE, "            if idempotency_key:\n", "            if False:\n")),
    B("24j", "cancel does not reach the worker dialing the call", (T_REQUESTS,),
      Patch(REC_CLIENT, '                self.calls.push_command(rec.worker, call_id, {"type": "hangup", "cause": "ORIGINATOR_CANCEL"})',
            "                pass")),
    B("24k", "the record is marked ended by the state change, before the outcome is known", (T_REQUESTS,),
      Patch(REC_REPORTER, "        if state is CallState.ENDED:\n            return  #", "        if False:\n            return  #")),
    B("24l", "calls being dialed do not count against MAX_CALLS", (T_REQUESTS,),
      Patch(WORKER, "if sess.admitted or (sess.direction is Direction.OUTBOUND and not sess.state.over))",
            "if sess.admitted)")),
    B("24m", "the record writer drops a change when Redis is down instead of retrying it", (T_REC_REPORTER,),
      Patch(REC_REPORTER, "                backoff = min(backoff * 2, 5.0)\n                continue\n",
            "                backoff = min(backoff * 2, 5.0)\n")),
    B("24n", "a cancel that lands between the claim and the dial is dialed anyway", (T_REQUESTS,),
      Patch(TAKER, "            if latest is not None and latest.cancel_requested:", "            if False:")),
]

WS_HELPERS = "tests/ws_helpers.py"
WATCHER_GUARD = "tests/watcher_guard.py"
T_WATCHER_GUARD = "tests/test_watcher_guard.py"
BREAKAGES += [
    B("25a", "the test WebSocket servers run websockets' serve_forever (its poller stays on a closed socket)",
      (T_WATCHER_GUARD, "tests/emulator/test_fork_client.py"),
      Patch(WS_HELPERS, "    return gevent.spawn(_accept_loop, server)", "    return gevent.spawn(server.serve_forever)")),
    B("25b", "the watcher guard never finds a selector left on a closed descriptor", (T_WATCHER_GUARD,),
      Patch(WATCHER_GUARD, "if known is not None and watcher.active and _identity(fd) != known[0]:", "if False:")),
]

# --------------------------------------------------------------------------- the REST API for calls (issue 9, first slice)
T_API_CALLS = "tests/api/test_calls_api.py"
T_API_AUTH = "tests/api/test_errors_and_auth.py"
T_API_PROC = "tests/api/test_api_process.py"
API_APP = "voiceagent/api/app.py"
API_CALLS = "voiceagent/api/calls.py"
API_ERRORS = "voiceagent/api/errors.py"
API_INPUTS = "voiceagent/api/inputs.py"
BREAKAGES += [
    B("26a", "the bearer token is not checked (any caller places calls)", (T_API_AUTH,),
      Patch(API_APP, 'if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):',
            "if False:")),
    B("26b", "a validation error does not name the field", (T_API_CALLS,),
      Patch(API_ERRORS, 'out.append({"field": ".".join(str(p) for p in loc) or "(body)",', 'out.append({"field": "(body)",')),
    B("26c", "the Idempotency-Key header is ignored (a retried POST dials twice)", (T_API_CALLS,),
      Patch(API_CALLS, 'key = request.headers.get("Idempotency-Key")', "key = None")),
    B("26d", "a non-loopback API_HOST without API_TOKEN is allowed", (T_API_PROC,),
      Patch(CONFIG_SETTINGS, "if not s.api_token.get_secret_value() and not is_loopback_host(s.api_host):", "if False:")),
    B("26e", "/health needs a token (a load balancer's probe gets 401)", (T_API_AUTH,),
      Patch(API_APP, "if (op is not None and op.public) or (view", "if False or (view")),
    B("26f", "a chunked body over the limit is cut and read instead of refused", (T_API_AUTH,),
      Patch(API_INPUTS, '    raise ApiError(413, f"the body is larger than {limit} bytes")', "    return data")),
    B("26g", "the cursor repeats the last record of the previous page", (T_API_CALLS,),
      Patch(API_CALLS, "r.created == after[0] and r.id >= after[1]", "r.created == after[0] and r.id > after[1]")),
]

# --------------------------------------------------------------------------- the dial policy (issue 9)
T_DIAL = "tests/records/test_dial_policy.py"
DIAL = "voiceagent/records/dial_policy.py"
BREAKAGES += [
    B("27a", "premium-rate numbers are dialed although DIAL_ALLOW_PREMIUM is off", (T_DIAL, T_API_CALLS),
      Patch(DIAL, "if num is not None and valid and not self.allow_premium \\", "if False \\")),
    B("27b", "international numbers are dialed although DIAL_ALLOW_INTERNATIONAL is off", (T_DIAL,),
      Patch(DIAL, "if not self.allow_international and not self._domestic(num, valid):", "if False:")),
    B("27c", "DIAL_ALLOWED_PATTERNS is ignored", (T_DIAL, "tests/calls/test_call_requests.py"),
      Patch(DIAL, "if self.allowed_patterns and not any(p.fullmatch(to) for p in self.allowed_patterns):", "if False:")),
]

# --------------------------------------------------------------------------- webhooks in and out
T_WH_IN = "tests/webhooks/test_inbound.py"
T_WH_OUT = "tests/webhooks/test_outbound.py"
WH_SOURCES = "voiceagent/webhooks/sources.py"
WH_INBOUND = "voiceagent/webhooks/inbound.py"
WH_DELIVERY = "voiceagent/webhooks/delivery.py"
WH_GUARD = "voiceagent/webhooks/guard.py"
BREAKAGES += [
    B("30a", "a webhook's HMAC signature is not checked (anyone who knows the URL places calls)", (T_WH_IN,),
      Patch(WH_SOURCES, "if not hmac.compare_digest(given_sig.encode(), expected.encode()):", "if False:")),
    B("30b", "a repeated Alertmanager delivery is not recognised as a repeat", (T_WH_IN,),
      Patch(WH_INBOUND, 'if not c.r.set(seen, "[]", nx=True, ex=int(ttl)):', "if False:")),
    B("30c", "a status delivery answered 5xx is not retried", (T_WH_OUT,),
      Patch(WH_DELIVERY, "if status >= 500 or status in RETRY_STATUSES:", "if status in RETRY_STATUSES:")),
    B("30d", "a delivery id already delivered is sent again", (T_WH_OUT,),
      Patch(WH_DELIVERY, "if connection.exists(keys.webhook_sent(d.id)):", "if False:")),
    B("30e", "a v4-mapped IPv6 address is judged as IPv6, not as the IPv4 address it carries", (T_WH_OUT,),
      Patch(WH_GUARD, "if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:", "if False:")),
    B("30f", "a source answers under any kind's URL (a call source takes Grafana payloads ...)", (T_WH_IN,),
      Patch(WH_INBOUND, "if src is None or src.kind != kind:", "if src is None:")),
]

# --------------------------------------------------------------------------- scheduled calls (issue 9, schedules)
T_SCHED_TIMING = "tests/schedules/test_timing.py"
T_SCHED_API = "tests/schedules/test_schedules_api.py"
T_SCHED_FIRING = "tests/schedules/test_firing.py"
T_SCHED_RESTART = "tests/schedules/test_restarts.py"
SCHED_TIMING = "voiceagent/schedules/timing.py"
SCHED_RUNNER = "voiceagent/schedules/runner.py"
SCHED_SERVICE = "voiceagent/schedules/service.py"
SCHED_LOCKS = "voiceagent/schedules/scheduler_locks.py"
BREAKAGES += [
    B("29a", "a time that happens twice on the fall-back day runs at its second occurrence", (T_SCHED_TIMING,),
      Patch(SCHED_TIMING, "return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)",
            "return wall.replace(tzinfo=zone, fold=1).astimezone(UTC)")),
    B("29b", "a repeated run job (retry, duplicate) dials again", (T_SCHED_FIRING,),
      Patch(SCHED_RUNNER, """    if sv.store.run(schedule_id, due) is not None:
        _ensure_armed(sv, schedule_id, now)
        return "done"
    if sched.paused or sched.next_due != due:""", """    if sched.paused:"""),
      Patch(SCHED_RUNNER, 'request = sched.call.model_copy(update={"idempotency_key": key})',
            "request = sched.call")),
    B("29c", "a failed run ends the series (the next run is not armed)", (T_SCHED_FIRING,),
      Patch(SCHED_RUNNER, "    if after.state == \"active\" and after.next_due is not None:\n        sv.armer.arm(schedule_id, after.next_due)\n",
            "")),
    B("29d", "deleting a schedule leaves its pending job to fire", (T_SCHED_API,),
      Patch(SCHED_SERVICE, "        self.armer.disarm(schedule_id, sched.next_due)\n        return self.store.delete(schedule_id)",
            "        return self.store.delete(schedule_id)")),
    B("29e", "a one-time time in the past is accepted", (T_SCHED_API, T_SCHED_TIMING),
      Patch(SCHED_TIMING, "        if due <= now:", "        if due < now - 10 ** 10:")),
    B("29f", "the scheduler locks a killed worker left are kept (no run is scheduled for minutes)", (T_SCHED_RESTART,),
      Patch(SCHED_LOCKS, "        if not dead:\n            continue", "        if True:\n            continue")),
]

# --------------------------------------------------------------------------- tools API, tool at answer, node health, API fuzz (issue 9)
T_TOOLS_API = "tests/api/test_tools_api.py"
T_TOOL_CALLS = "tests/e2e/test_tool_calls.py"
T_HEALTH_NODES = "tests/api/test_health_nodes.py"
T_API_FUZZ = "tests/api/test_fuzz_openapi.py"
API_TOOLS = "voiceagent/api/tools.py"
ANSWER_TOOL = "voiceagent/calls/answer_tool.py"
NODE_LINK = "voiceagent/calls/node_link.py"
BREAKAGES += [
    B("31a", "POST /tools/{name}/execute does not check the arguments (a bad one is a 200 failed run, not a 422)",
      (T_TOOLS_API,),
      Patch(API_TOOLS, "    data = body(ExecuteTool)\n    _check_arguments(t, data.arguments)\n", "    data = body(ExecuteTool)\n")),
    B("31b", "a tool that hangs up runs from the API as if it had a call (200 instead of 409)", (T_TOOLS_API,),
      Patch(API_TOOLS, 'direction="api", on_hangup=lambda reason: refuse("hang up"),', 'direction="api", on_hangup=None,')),
    B("31c", "a failed tool at answer is read out as its error instead of the apology", (T_TOOL_CALLS,),
      Patch(ANSWER_TOOL, "speech = (result.speak or spoken(result.value)) if result.ok else APOLOGY",
            "speech = result.speak or spoken(result.value)")),
    B("31d", "the tool run at answer is not in the call record (no call.tool event either)", (T_TOOL_CALLS,),
      Patch(ANSWER_TOOL, "        turn = dialog.turns[-1]  # reported once its playback is over, so the tool lands in the "
                         "same record turn\n        turn.tool_started(run.name, run.arguments)\n",
            "        turn = dialog.turns[-1]  # reported once its playback is over, so the tool lands in the "
            "same record turn\n")),
    B("31e", "a lost ESL link stays 'connected' in the heartbeat", (T_HEALTH_NODES,),
      Patch(NODE_LINK, '        elif self.state == "connected":\n            self._set_state("reconnecting")\n', ""),
      Patch(NODE_LINK, '    def _on_disconnected(self, _conn=None) -> None:\n        self._set_state("reconnecting")',
            "    def _on_disconnected(self, _conn=None) -> None:\n        pass")),
    B("31f", "a body nested past the JSON parser's stack is a 500", (T_API_FUZZ,),
      Patch(API_INPUTS, "    except RecursionError:  # '[[[[...' within the size limit: the parser's own stack runs out\n"
                        '        raise ApiError(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None\n',
            "")),
]

# --------------------------------------------------------------------------- the call queue (RQ), limit, retries
T_QDIAL = "tests/jobs/test_dial_queue.py"
T_QLIMITS = "tests/jobs/test_limits_and_recovery.py"
T_QRETRY = "tests/jobs/test_retries.py"
BREAKAGES += [
    B("28a", "a call slot is taken beyond CALL_CONCURRENCY_LIMIT", (T_QDIAL, T_QLIMITS),
      Patch("voiceagent/jobs/slots.py", "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then", "if true then")),
    B("28b", "ending a call does not free its slot", (T_QDIAL, T_QLIMITS),
      Patch("voiceagent/records/store.py", "            pipe.zrem(self.keys.call_slots, rec.id)\n", "")),
    B("28c", "a retried dial job hands a call over that was handed over already", (T_QLIMITS,),
      Patch("voiceagent/jobs/dial.py", '        if rec.state != "queued":\n            return f"already handed over ({rec.state})"\n', "")),
    B("28d", "retries go on past the policy's attempts", (T_QRETRY,),
      Patch("voiceagent/jobs/retries.py", "if rule is None or rec.attempt > rule.attempts:", "if rule is None:")),
    B("28e", "QUEUE_MAX_DEPTH is not enforced (no 429)", (T_QLIMITS,),
      Patch("voiceagent/records/store.py", "if depth >= max_queued:", "if False:")),
    B("28f", "the follower acknowledges an event a handler failed on (it is lost)", (T_QRETRY,),
      Patch("voiceagent/jobs/follower.py", "        if ok:\n            self.client.ack(", "        if True:\n            self.client.ack(")),
]

# --------------------------------------------------------------------------- operator layer integration (issue 9)
BREAKAGES += [
    B("33a", "a dial that must end its record while Redis is unreachable gives up at once (the record stays open)",
      ("tests/calls/test_state_faults.py",),
      Patch("voiceagent/calls/request_taker.py", "                if time.monotonic() + backoff > deadline:",
            "                if True:")),
    B("33b", "'voiceagent call place' skips the queue (no cluster limit, no retries for CLI calls)",
      ("tests/calls/test_call_requests.py",),
      Patch("voiceagent/calls_cli.py", "call_id = client.place(req) if direct else", "call_id = client.place(req) if True else")),
    B("33c", "the generic POST /webhooks/call sends its message as written instead of filling it from the payload",
      ("tests/webhooks/test_inbound.py",),
      Patch("voiceagent/webhooks/inbound.py", 'if src is API_SOURCE and isinstance(data.get("message"), str):',
            "if False:")),
]

# --------------------------------------------------------------------------- honcho: the whole system from one command
T_HONCHO = "tests/jobs/test_honcho.py"
EMU_CLI = "voiceagent/emulator/cli.py"
BREAKAGES += [
    B("32a", "Procfile.emulator lost the RQ worker (calls stay queued)", (T_HONCHO,),
      Patch("Procfile.emulator", "worker: voiceagent jobs worker --with-scheduler\n", "")),
    B("32b", "emulator serve --worker-env ignores ESL_NODES' port (listens on 8021, the worker never connects)",
      (T_HONCHO,),
      Patch(EMU_CLI, 'found = {"host": host, "port": port,', 'found = {"host": host, "port": opts["port"],')),
    B("32c", "the emulator ignores SIGTERM (honcho has to SIGKILL it)", (T_HONCHO,),
      Patch(EMU_CLI, "gevent.signal_handler(signal.SIGTERM, stop.set)", "gevent.signal_handler(signal.SIGTERM, lambda: None)")),
    B("32d", ".env.example names a variable nothing reads (ESL_NODE)", (T_HONCHO,),
      Patch(".env.example", "\nESL_NODES=fs1=127.0.0.1:8021\n", "\nESL_NODE=fs1=127.0.0.1:8021\n")),
]

# --------------------------------------------------------------------------- built-in tools (tools/)
T_CALC = "tests/tools/test_calculator.py"
T_WEATHER = "tests/tools/test_weather.py"
BREAKAGES += [
    B("35a", "the calculator lost its exponent bound (only the magnitude check stands: 2**-1000 is computed)", (T_CALC,),
      Patch("tools/calculator.py", "    if abs(exp) > MAX_EXPONENT:", "    if False:")),
    B("35b", "the calculator evaluates any call by name (no whitelist of functions)", (T_CALC,),
      Patch("tools/calculator.py", "isinstance(node.func, ast.Name) and node.func.id in _FUNCS",
            "isinstance(node.func, ast.Name)")),
    B("35c", "the weather report is in the server's zone (UTC), not the profile's", (T_WEATHER,),
      Patch("tools/weather.py", "    zone = ZoneInfo(ctx.timezone)\n", '    zone = ZoneInfo("UTC")\n')),
    B("35d", "a station that answers 500 crashes the weather tool (a failed tool, no sentence)", (T_WEATHER,),
      Patch("tools/weather.py", "    if r.status_code != 200:\n        raise Unavailable(",
            "    if r.status_code != 200:\n        r.raise_for_status()\n        raise Unavailable(")),
    B("35e", "a ToolReply's words are left to the LLM: the conversation never says them",
      ("tests/tools/test_spoken_replies.py",),
      Patch("voiceagent/dialog/conversation.py", "                    if result.ok and result.speak:  # a ToolReply",
            "                    if False:  # a ToolReply")),
    B("35f", "transfer_call dials whatever name the LLM gives (not only the profile's targets)",
      ("tests/tools/test_small_tools.py",),
      Patch("tools/transfer.py", "    if name not in targets:\n        raise ToolError(",
            "    if name not in targets:\n        targets[name] = name\n    if False:\n        raise ToolError(")),
]

# --------------------------------------------------------------------------- tool plugins: reload, disable, rich replies
T_RELOAD = "tests/dialog/test_tool_reload.py"
BREAKAGES += [
    B("34a", "a reload imports a changed plugin from its cached bytecode (the old code runs on)", (T_RELOAD,),
      Patch("voiceagent/dialog/tools.py", "spec_from_file_location(mod_name, path, loader=FreshSource(mod_name, str(path)))",
            "spec_from_file_location(mod_name, path)")),
    B("34b", "a live conversation keeps the tools it started with (a reload reaches new calls only)", (T_RELOAD,),
      Patch("voiceagent/dialog/conversation.py", "        self._follow_tools()\n        turn: List[dict]",
            "        turn: List[dict]")),
    B("34c", "words a tool says with ctx.say are neither spoken (without a call's on_say) nor kept in the history",
      (T_RELOAD,),
      Patch("voiceagent/dialog/conversation.py", "for text in self.ctx.said[said_before:]:", "for text in []:")),
    B("34d", "TOOLS_DISABLED is ignored by calls (a disabled tool is still offered to the LLM)", (T_RELOAD,),
      Patch("voiceagent/dialog/conversation.py", "if n in tools and n not in tools.disabled]", "if n in tools]")),
    B("34e", "a process adopts a bumped tools generation without reloading", (T_RELOAD, "tests/api/test_tools_reload_api.py"),
      Patch("voiceagent/dialog/tool_reload.py", "        return self.reload(generation)\n",
            "        self.generation = generation\n        return None\n")),
    B("34f", "a plugin file saved with a syntax error takes its tools away instead of keeping the last good version",
      (T_RELOAD,),
      Patch("voiceagent/dialog/tool_reload.py", "if failed and old_by_file.get(str(f)):", "if False:")),
]

# --------------------------------------------------------------------------- timers: what a caller schedules by voice
T_OWNED = "tests/tools/test_caller_schedules.py"
T_TIMER_RUNS = "tests/tools/test_timer_runs.py"
BREAKAGES += [
    B("36a", "cancel_scheduled cancels any caller's item by id (the owner is not checked)", (T_OWNED,),
      Patch("voiceagent/schedules/caller.py", 'if s is None or s.owner != self.owner or s.state == "finished":',
            'if s is None or s.state == "finished":')),
    B("36b", "list_scheduled lists every schedule of the deployment, not the caller's own", (T_OWNED,),
      Patch("voiceagent/schedules/caller.py",
            'items = [s for s in self.sv.store.owned(self.owner) if s.state != "finished"]',
            'items = [s for s in map(self.sv.store.get, self.sv.store.ids()) if s and s.state != "finished"]')),
    B("36c", "owners are not normalised (5551230001 and +15551230001 are two callers)", (T_OWNED,),
      Patch("voiceagent/schedules/owners.py", "    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)",
            "    return compact")),
    B("36d", "a timer's call back waits on the bulk queue", (T_TIMER_RUNS,),
      Patch("voiceagent/schedules/runner.py", 'PRIORITY: Dict[str, Priority] = {"timer": "high", "callback": "high"}',
            'PRIORITY: Dict[str, Priority] = {"callback": "high"}')),
    B("36e", "a timer always calls back, even with the caller on the line", (T_TIMER_RUNS,),
      Patch("voiceagent/schedules/runner.py", 'if sched.kind == "timer":  # on the line', 'if False:  # on the line')),
    B("36f", "a timer looks for the caller's other calls by the caller id only (a call back to them is missed)",
      (T_TIMER_RUNS,),
      Patch("voiceagent/schedules/owners.py",
            'return call.get("callee", "") if call.get("direction") == "outbound" else call.get("caller", "")',
            'return call.get("caller", "")')),
]

# --------------------------------------------------------------------------- Home Assistant: the home over the phone
T_HA_ASSIST = "tests/home_assistant/test_assist.py"
T_HA_DIRECT = "tests/home_assistant/test_direct.py"
T_HA_CONFIRM = "tests/home_assistant/test_confirm.py"
HA = "voiceagent/integrations/home_assistant/"
BREAKAGES += [
    B("37a", "Assist's conversation id is not kept: a follow-up in the same call starts a new conversation",
      (T_HA_ASSIST,),
      Patch(HA + "assist.py", "        ctx.extra[CONVERSATION_KEY] = answer.conversation_id\n",
            "        pass\n")),
    B("37b", "one area on the allowlist lets every entity of the home through",
      (T_HA_DIRECT,),
      Patch(HA + "control.py", "or bool({st.area_id.lower(), st.area_name.lower()} - {\"\"} & s.allowed_areas))",
            "or bool(s.allowed_areas))")),
    B("37c", "a confirm: true the caller was never asked for unlocks the door", (T_HA_CONFIRM,),
      Patch(HA + "control.py", "    if args.confirm and same:", "    if args.confirm:\n        pending = pending if same else "
            "Pending(ctx.call_id, st.entity_id, service, body, question, done, ctx.clock.monotonic() + 30, False)\n"
            "    if args.confirm:")),
    B("37d", "a confirmation question never times out", (T_HA_CONFIRM,),
      Patch(HA + "control.py", "        if ctx.clock.monotonic() > pending.expires:\n            return expired(ctx, pending)[0]",
            "        if False:\n            return expired(ctx, pending)[0]")),
    B("37e", "an ambiguous name is guessed (the first match is controlled) instead of asked back", (T_HA_DIRECT,),
      Patch(HA + "entities.py", "    if len(hits) == 1:\n        return Match(found=hits[0])",
            "    if hits:\n        return Match(found=hits[0])")),
    B("37f", "the token is not sent as a bearer token (every request is refused with 401)", (T_HA_DIRECT,),
      Patch(HA + "client.py", 'headers = {"Authorization": f"Bearer {', 'headers = {"X-Token": f"{')),
    # ---- 38: barge-in that pauses at once and resumes after a false alarm (issue 12)
    B("38a", "the emulator resumes a paused file from its beginning (FreeSWITCH resumes where it stopped)",
      ("tests/emulator/test_fileman.py",),
      Patch("voiceagent/emulator/channel_apps.py", "            pos = min(len(pcm), pos + n)\n", "")),
    B("38b", "uuid_fileman with nothing playing says +OK instead of -ERR No file handle!",
      ("tests/emulator/test_fileman.py",),
      Patch("voiceagent/emulator/api_commands.py", '        if ch.playing is None:\n            return "-ERR No file handle!\\n"\n',
            "")),
    B("38c", "a backchannel is taken for words: 'mm-hm' stops the agent instead of resuming it",
      ("tests/e2e/test_barge_in_pause.py",),
      Patch("voiceagent/calls/backchannel.py", "    return not normalised(text) or is_backchannel(text, words)",
            "    return not normalised(text)")),
    B("38d", "the false alarm is never resumed (the agent stays paused until the watchdog)",
      ("tests/e2e/test_barge_in_pause.py",),
      Patch("voiceagent/calls/barge_in.py", "        if self.paused_ok and resume is not None:", "        if False:")),
    B("38e", "a stop decision leaves the paused agent unbroken (no uuid_break, no barge-in reported)",
      ("tests/e2e/test_barge_in_pause.py",),
      Patch("voiceagent/calls/barge_in.py", "            d._barge_in(ep, onset_t=self.onset_t, extra=report)\n", "")),
]

# --------------------------------------------------------------------------- semantic end-of-turn (smart-turn v3)
T_EOT = "tests/speech/test_end_of_turn.py"
BREAKAGES += [
    B("39b", "a trailing conjunction or filler no longer keeps the turn open when the model says complete", (T_EOT,),
      Patch("voiceagent/speech/end_of_turn.py", '        if cue == "continuing":\n            return d(',
            '        if cue == "never":\n            return d(')),
    B("39c", "a decision for a pause the caller talked through still shortens the turn", (T_EOT,),
      Patch("voiceagent/speech/end_of_turn.py", "if self.ep.pause_index != index or not self.ep.paused:",
            "if False:")),
    B("39d", "the endpointer keeps an old pause's hold after the caller resumes (the next pause ends at once)",
      (T_EOT,),
      Patch("voiceagent/speech/vad.py", "                self.hold_ms = None  # the decision was for the pause",
            "                pass  # the decision was for the pause")),
    B("39e", "the cap is ignored: a complete decision's short wait is not bounded by SMART_TURN_MAX_WAIT_MS", (T_EOT,),
      Patch("voiceagent/speech/end_of_turn.py", "return Decision(hold_ms=min(hold, self.max_wait_ms),",
            "return Decision(hold_ms=hold,")),
]

# --------------------------------------------------------------------------- turn flow: answers started early, pre-roll, backchannels, idle
T_FLOW = "tests/e2e/test_turn_flow.py"
EARLY = "voiceagent/calls/preemptive.py"
BREAKAGES += [
    B("40a", "the held stream is compared without the caller's message: a preemptive answer is never used",
      (T_FLOW + "::test_a_preemptive_answer_is_used_when_the_transcript_holds",),
      Patch(EARLY, "held.snapshot == _snapshot(messages, tools)", "held.snapshot == _snapshot(messages[:-1], tools)")),
    B("40b", "a superseded preemptive stream is only marked cancelled: its HTTP stream stays open",
      (T_FLOW + "::test_a_preemptive_answer_is_cancelled_when_the_caller_carries_on",),
      Patch(EARLY, "        if held is not None:\n            held.cancel()\n",
            "        if held is not None:\n            held.cancelled = True\n")),
    B("40c", "the pre-roll is back to 200 ms: a short first word before a hesitation is lost",
      (T_FLOW + "::test_the_pre_roll_keeps_a_short_first_word",),
      Patch("voiceagent/config/speech.py", "speech_preroll_ms: int = Field(default=600,",
            "speech_preroll_ms: int = Field(default=200,")),
    B("40d", "a backchannel is answered whenever the agent is not talking (after a statement too)",
      (T_FLOW + "::test_a_backchannel_after_a_statement_is_not_answered", "tests/calls/test_backchannel.py"),
      Patch("voiceagent/calls/backchannel.py", "return dialog._agent_talking() or not agent_asked(dialog)",
            "return dialog._agent_talking()")),
    B("40e", "one idle reprompt too many before the goodbye",
      (T_FLOW + "::test_idle_reprompts_then_a_polite_hang_up",),
      Patch("voiceagent/calls/idle.py", "if self.reprompts < self.max_reprompts:", "if self.reprompts <= self.max_reprompts:")),
]

# --------------------------------------------------------------------------- call pages, transcript store, recordings
T_PAGES = "tests/api/test_call_pages.py"
T_PAGE_AUTH = "tests/api/test_page_auth.py"
T_REC = "tests/api/test_call_recording.py"
PAGE_VIEWS = "voiceagent/api/page_views.py"
BREAKAGES += [
    B("44a", "the call page prints the caller's words unescaped: an utterance becomes markup (a script)",
      (T_PAGES,),
      Patch("voiceagent/api/templates/call.html", '<span class="said">{{ t.caller }}</span>',
            '<span class="said">{{ t.caller | safe }}</span>')),
    B("44b", "a sentence cut off by a barge-in shows as heard",
      (T_PAGES,),
      Patch(PAGE_VIEWS, 'out.append(Sentence(text, "cut" if heard[j].endswith(CUT) else "heard"))',
            'out.append(Sentence(text, "heard"))')),
    B("44c", "the waterfall draws STT from the caller's last word, not after the endpoint wait",
      (T_PAGES,),
      Patch(PAGE_VIEWS, 'add("STT", endpoint, t("stt_wait_ms"))', 'add("STT", 0.0, t("stt_wait_ms"))')),
    B("44d", "the pages open without logging in",
      (T_PAGE_AUTH, T_PAGES),
      Patch("voiceagent/api/pages.py", "return not want or (isinstance(got, str)", "return True or (isinstance(got, str)")),
    B("44e", "the login cookie is SameSite=Lax (sent along from other sites' links)",
      (T_PAGE_AUTH,),
      Patch("voiceagent/api/pages.py", 'SESSION_COOKIE_SAMESITE="Strict"', 'SESSION_COOKIE_SAMESITE="Lax"')),
    B("44f", "the emulator's recording leaves out the caller's leg",
      ("tests/emulator/test_record.py",),
      Patch("voiceagent/emulator/channel_record.py", "        for fork in self.forks.values():\n",
            "        for fork in []:\n")),
    B("44g", "a started recording is not named in the call's record (the page and the API cannot find it)",
      (T_REC,),
      Patch("voiceagent/calls/recording.py", "self.reporter.call_recording(call, name)",
            'self.reporter.call_recording(call, "")')),
]

# --------------------------------------------------------------------------- telemetry: metrics, traces, log lines
T_OBS = "tests/observability/"
BREAKAGES += [
    B("43a", "turn stage histograms observe milliseconds: every latency 1000 times too large",
      (T_OBS + "test_metric_units.py::test_a_turn_is_one_observation_per_stage_and_a_call_counts_once",),
      Patch("voiceagent/observability/call_metrics.py", "hist.observe(value / 1000.0)", "hist.observe(value)")),
    B("43b", "a tool name the LLM made up becomes a label of its own (unbounded label set)",
      (T_OBS + "test_metric_units.py::test_tool_runs_count_by_name_errors_separately_and_a_made_up_name_as_unknown",),
      Patch("voiceagent/dialog/tools.py", "tool_ran(name, name in self._tools, result.ok, result.seconds)",
            "tool_ran(name, True, result.ok, result.seconds)")),
    B("43c", "the call span starts a new trace instead of continuing the request's",
      (T_OBS + "test_traces.py",),
      Patch("voiceagent/observability/call_traces.py", "context=context_of(call.trace_parent), kind=SpanKind.SERVER",
            "context=context_of(''), kind=SpanKind.SERVER")),
    B("43d", "the dial job does not hand its span on in the record: the call hangs off the API request",
      (T_OBS + "test_traces.py::test_an_api_request_its_dial_job_and_the_call_it_places_are_one_trace",),
      Patch("voiceagent/records/client.py", "rec.traceparent = traceparent() or rec.traceparent", "pass")),
    B("43e", "the queue wait is measured from the hand-over instead of from when the call was queued",
      (T_OBS + "test_jobs_metrics.py::test_a_job_worker_serves_metrics_with_the_queue_wait_of_the_call_it_handed_over",),
      Patch("voiceagent/jobs/dial.py", "observe(max(0.0, time.time() - (handed.due or handed.created)))",
            "observe(0.0)")),
    B("43f", "LOG_MASK_NUMBERS masks nothing in JSON lines",
      (T_OBS + "test_log_lines.py::test_masking_applies_to_the_message_and_string_fields_and_can_be_turned_off",),
      Patch("voiceagent/observability/logs.py", "                    log_data[key] = mask_numbers(value)",
            "                    log_data[key] = value")),
]

# --------------------------------------------------------------------------- speech as a service: remote backends, the speech server
T_REMOTE = "tests/speech/test_remote_backends.py"
T_BATCH = "tests/speech/test_stt_batch.py"
T_SS_BAD = "tests/speech_server/test_bad_input.py"
T_SS_SHAPES = "tests/speech_server/test_openai_shapes.py"
BREAKAGES += [
    B("42a", "a remote STT/TTS request is never retried after a 5xx or a timeout", (T_REMOTE,),
      Patch("voiceagent/speech/remote_http.py", "        for attempt in range(self.retries + 1):",
            "        for attempt in range(1):")),
    B("42b", "a 4xx from the speech server is retried like a 5xx", (T_REMOTE,),
      Patch("voiceagent/speech/remote_http.py", "            if resp.status_code >= 500:",
            "            if resp.status_code >= 400:")),
    B("42c", "STT_FALLBACK=local is ignored: a failed remote transcription reaches the call", (T_REMOTE,),
      Patch("voiceagent/speech/fallback.py", "            log.warning(\"remote STT failed, transcribing locally: %s\", exc)",
            "            raise")),
    B("42d", "batched transcripts go to the wrong requests", (T_BATCH,),
      Patch("voiceagent/speech/stt_batch.py", "    for audio, result in zip(audios, results, strict=True):",
            "    for audio, result in zip(audios, reversed(results), strict=True):")),
    B("42e", "verbose_json has no segments (the worker's hallucination filter loses Whisper's scores)",
      (T_SS_SHAPES,),
      Patch("voiceagent/speech_server/transcriptions.py", '        "segments": [{"id": i,', '        "chunks": [{"id": i,')),
    B("42f", "the upload limit is not enforced", (T_SS_BAD,),
      Patch("voiceagent/speech_server/app.py", '    app.config["MAX_CONTENT_LENGTH"] = settings.speech_server_max_upload_bytes',
            '    app.config["MAX_CONTENT_LENGTH"] = None')),
]

# --------------------------------------------------------------------------- batched VAD, the load benchmark
T_VADB = "tests/speech/test_vad_batch.py"  # whole files: run_tests keeps only paths that exist
VADB = "voiceagent/speech/vad_batch.py"
BREAKAGES += [
    B("45a", "the batched graph hands the LSTM calls as time steps (and steps as calls): every run fails over to one by one",
      (T_VADB,),
      Patch(VADB, '["vb_by_call"], ["vb_by_step"], perm=[1, 0, 2])', '["vb_by_call"], ["vb_by_step"], perm=[0, 1, 2])')),
    B("45b", "seq_lens is not wired: a call with fewer chunks than the longest gets the padded steps' state",
      (T_VADB,),
      Patch(VADB, 'lstm.input[4] = "seq_lens"', 'lstm.input[4] = ""')),
    B("45c", "every call of a run gets the first call's next LSTM state",
      (T_VADB,),
      Patch(VADB, "out[i] = (probs[k, :lens[k]].copy(), hn[0, k].copy(), cn[0, k].copy())",
            "out[i] = (probs[k, :lens[k]].copy(), hn[0, 0].copy(), cn[0, 0].copy())")),
    B("45d", "a call's next chunk does not get the last 64 samples of its previous one as context",
      (T_VADB,),
      Patch(VADB, "        self._ctx = ctx\n", "")),
    B("45e", "VAD_BATCH is ignored: every call runs its own Silero on the event loop",
      (T_VADB,),
      Patch("voiceagent/calls/voice_services.py", "if not (s.vad_batch and s.vad_engine == \"silero\"):",
            "if True:")),
    B("45f", "the load probe forgets the live calls' audio: frames received are not counted",
      ("tests/bench/test_load_bench.py",),
      Patch("bench/load_worker.py", '"samples": self.ended_samples + sum(s.samples_received for s in live),',
            '"samples": self.ended_samples,')),
    B("45g", "FORK_REUSE_PORT is not passed to the listening socket: a second worker cannot share the port",
      ("tests/telephony/test_fork_reuse_port.py",),
      Patch("voiceagent/telephony/fork_server.py", "reuse_port=self._reuse_port,", "reuse_port=False,")),
]

# turn-taking bench follow-up: one backchannel list for turns and barge-in, urgent inference calls first
T_BACK = "tests/calls/test_backchannel.py"
T_POOL = "tests/speech/test_inference.py::test_urgent_calls_go_before_the_ordinary_ones_waiting"
BREAKAGES += [
    B("41a", "the barge-in's false alarm ignores BACKCHANNEL_WORDS: a backchannel over the agent stops it",
      ("tests/e2e/test_barge_in_pause.py::test_a_backchannel_pauses_then_resumes_where_it_paused",),
      Patch("voiceagent/calls/barge_in.py", "is_false_alarm(tr.text, self.s.backchannel_words)",
            'is_false_alarm(tr.text, "")')),
    B("41b", "the one backchannel list lost a phrase the barge-in list had ('mmm')",
      (T_BACK,),
      Patch("voiceagent/config/dialog.py", 'backchannel_words: str = Field(default="mm,mmm,mm-hm,',
            'backchannel_words: str = Field(default="mm,mm-hm,')),
    B("41c", "digits are not words: a caller's '2.' over the agent counts as a cough and resumes it",
      (T_BACK,),
      Patch("voiceagent/calls/backchannel.py", 're.sub(r"[^a-z0-9\\s]", " ",', 're.sub(r"[^a-z\\s]", " ",')),
    B("41d", "urgent inference calls wait behind the ordinary ones (a barge-in's transcript behind queued TTS)",
      (T_POOL,),
      Patch("voiceagent/speech/inference.py", "self._acquire(gevent.getcurrent() in _URGENT)", "self._acquire(False)")),
    B("41e", "a job killed while it waits for a thread stays in line and the thread it is handed is lost",
      (T_POOL,),
      Patch("voiceagent/speech/inference.py", "            else:\n                line.remove(turn)\n", "")),
    B("41f", "the reply joins the acknowledgement's sleeping greenlet: every answer waits out ACK_AFTER_MS",
      ("tests/e2e/test_conversation.py::test_an_answer_ready_before_the_acknowledgement_is_not_held_back_to_it",),
      Patch("voiceagent/calls/voice_dialog.py", "                        if ack.handing:", "                        if True:")),
]

# --------------------------------------------------------------------------- machinery
def fresh_copy(dest: Path, source_dir: Optional[Path], ref: str, repo: Path) -> None:
    """A clean tree at ``dest``: ``git archive <ref>`` of ``repo``, or a copy of ``source_dir``."""
    if dest.exists():
        shutil.rmtree(dest)
    if source_dir is not None:
        shutil.copytree(source_dir, dest, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache"))
    else:
        data = subprocess.run(["git", "-C", str(repo), "archive", ref], check=True, capture_output=True).stdout
        dest.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")


class SnippetMissing(RuntimeError):
    pass


def apply(tree: Path, br: Breakage, dry: bool = False) -> None:
    for p in br.patches:
        path = tree / p.file
        if not path.exists():
            raise SnippetMissing(f"{br.id}: {p.file} does not exist")
        text = path.read_text()
        n = text.count(p.old)
        if n != p.count:
            raise SnippetMissing(f"{br.id}: snippet found {n} times in {p.file} (expected {p.count}):\n{p.old}")
        if not dry:
            path.write_text(text.replace(p.old, p.new))
            if p.file.endswith(".py"):
                compile(path.read_text(), str(path), "exec")  # a typo in a patch is our bug, not a catch


@dataclass
class Run:
    failed: List[str] = field(default_factory=list)
    passed: int = 0
    errors: List[str] = field(default_factory=list)  # collection errors, crashes, timeouts
    seconds: float = 0.0
    output: str = ""


_RESULT = re.compile(r"^(tests/\S+?::.+?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?: |$)")  # ids may hold spaces


def run_tests(tree: Path, tests: Sequence[str], python: str, per_test_timeout: float, total_timeout: float) -> Run:
    """Run pytest verbosely into a log file and read the per-test results from it.

    pytest-timeout cannot always interrupt a greenlet that waits forever, so the whole run has
    its own timeout: then the results seen so far count, and the test that was running is
    reported as hung (a hang is a catch: the suite does not pass).
    """
    tests = [t for t in tests if (tree / t.partition("::")[0]).exists()]  # a file, or one test of it
    if not tests:  # pytest without paths would run the whole suite
        run = Run()
        run.errors.append("none of the breakage's test files exists")
        return run
    out = tree.parent / f"pytest-{os.getpid()}-{time.monotonic_ns()}.log"
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    cmd = [python, "-m", "pytest", *tests, "-v", "-p", "no:cacheprovider", f"--timeout={per_test_timeout:g}"]
    t0 = time.monotonic()
    run = Run()
    hung = False
    with open(out, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=total_timeout)
        except subprocess.TimeoutExpired:
            hung = True
            os.killpg(proc.pid, signal.SIGKILL)  # pytest and whatever it spawned (the drain test's worker)
            proc.wait()
    run.seconds = time.monotonic() - t0
    text = out.read_text(errors="replace")
    out.unlink()
    run.output = text[-4000:]
    last_line = ""
    for line in text.splitlines():
        m = _RESULT.match(line)
        if m:
            name = m.group(1).replace("tests/", "", 1)
            if m.group(2) in ("FAILED", "ERROR"):
                if name not in run.failed:
                    run.failed.append(name)
            elif m.group(2) in ("PASSED", "XPASS"):
                run.passed += 1
        if line.startswith("tests/") and "::" in line:
            last_line = line
    if hung:
        run.errors.append(f"run killed after {total_timeout:g}s")
        m = re.match(r"^(tests/\S+::\S+)", last_line)
        if m and not _RESULT.match(last_line):
            run.failed.append(m.group(1).replace("tests/", "", 1) + " (hung)")
    elif proc.returncode not in (0, 1) and not run.failed:
        run.errors.append(f"pytest exited with {proc.returncode}")
    return run


def short(test: str) -> str:
    """``telephony/test_esl_client.py::test_x`` → ``test_esl_client::test_x``."""
    path, _, name = test.partition("::")
    return f"{Path(path).stem}::{name}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=REPO, help="git repository to archive (default: this one)")
    ap.add_argument("--ref", default="HEAD", help="git ref to archive (default HEAD: committed code only)")
    ap.add_argument("--source-dir", type=Path, help="copy this directory instead of git archive (uncommitted work)")
    ap.add_argument("--only", nargs="*", help="breakage ids to run")
    ap.add_argument("--tests", nargs="*", help="run these test files instead of each breakage's own list")
    ap.add_argument("--list", action="store_true", help="list breakages and exit")
    ap.add_argument("--check", action="store_true", help="only verify that every snippet matches")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--timeout", type=float, default=30.0, help="per-test timeout (pytest-timeout)")
    ap.add_argument("--run-timeout", type=float, default=600.0, help="timeout of one breakage's whole test run")
    ap.add_argument("--workdir", type=Path, help="where the copies go (default: a temp dir)")
    ap.add_argument("--jobs", type=int, default=1, help="breakages tested side by side (tests mostly wait on sockets)")
    ap.add_argument("--keep", action="store_true", help="keep the copies")
    ap.add_argument("--no-baseline", action="store_true", help="skip the clean baseline run")
    ap.add_argument("--markdown", type=Path, help="also write the table as markdown to this file")
    ap.add_argument("--max-names", type=int, default=4, help="failed tests named per breakage in the table")
    ap.add_argument("-v", "--verbose", action="store_true", help="print pytest's tail for every breakage")
    args = ap.parse_args(argv)

    chosen = BREAKAGES
    if args.only:
        known = {b.id for b in BREAKAGES}
        unknown = [i for i in args.only if i not in known]
        if unknown:
            ap.error(f"unknown breakage ids: {unknown}")
        chosen = [b for b in BREAKAGES if b.id in args.only]
    ids = [b.id for b in BREAKAGES]
    assert len(ids) == len(set(ids)), "duplicate breakage ids"

    if args.list:
        for b in chosen:
            print(f"{b.id:5} {b.what}\n      files: {', '.join(sorted({p.file for p in b.patches}))}\n"
                  f"      tests: {' '.join(b.tests)}")
        return 0

    work = args.workdir or Path(tempfile.mkdtemp(prefix="sabotage-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "repo"
    try:
        # Every snippet must match the pristine tree before anything runs.
        fresh_copy(tree, args.source_dir, args.ref, args.repo)
        missing = []
        for b in chosen:
            try:
                apply(tree, b, dry=True)
            except SnippetMissing as exc:
                missing.append(str(exc))
        if missing:
            print("SNIPPETS MISSING (the code changed; update scripts/sabotage.py):", file=sys.stderr)
            for m in missing:
                print("  " + m.replace("\n", "\n    "), file=sys.stderr)
            return 2
        print(f"all {len(chosen)} breakages' snippets match", file=sys.stderr)
        if args.check:
            return 0

        baseline_failed: Dict[str, List[str]] = {}
        if not args.no_baseline:
            files = sorted(args.tests or {t for b in chosen for t in b.tests})
            print(f"baseline: {len(files)} test files ...", file=sys.stderr, flush=True)
            base = run_tests(tree, files, args.python, args.timeout, args.run_timeout * 2)
            print(f"baseline: {base.passed} passed, {len(base.failed)} failed in {base.seconds:.0f}s",
                  file=sys.stderr, flush=True)
            if base.failed or base.errors:
                print("BASELINE NOT CLEAN; these failures are ignored below:\n  " + "\n  ".join(base.failed + base.errors)
                      + "\n" + base.output, file=sys.stderr)
            for t in base.failed:
                baseline_failed.setdefault(t, [])
            if base.errors and not base.passed:
                return 2

        def one(b: Breakage) -> Tuple[Breakage, Run, List[str]]:
            btree = work / f"repo-{b.id}"  # its own fresh copy, so breakages can run side by side
            fresh_copy(btree, args.source_dir, args.ref, args.repo)
            apply(btree, b)
            print(f"[{b.id}] {b.what} ...", file=sys.stderr, flush=True)
            try:
                r = run_tests(btree, args.tests or b.tests, args.python, args.timeout, args.run_timeout)
            finally:
                if not args.keep:
                    shutil.rmtree(btree, ignore_errors=True)
            caught = [t for t in r.failed if t not in baseline_failed]
            if r.errors and not caught and r.seconds >= args.run_timeout:
                caught = ["(the test run hung)"]
            verdict = f"caught by {len(caught)}" if caught else "NOT CAUGHT"
            print(f"[{b.id}]   {verdict} ({r.passed} passed, {r.seconds:.0f}s){' ' + '; '.join(r.errors) if r.errors else ''}"
                  + ("\n" + r.output[-1500:] if args.verbose or not caught else ""), file=sys.stderr, flush=True)
            return b, r, caught

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            rows: List[Tuple[Breakage, Run, List[str]]] = list(pool.map(one, chosen))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep:
            shutil.rmtree(tree, ignore_errors=True)

    lines = ["| id | breakage | caught by |", "|---|---|---|"]
    for b, r, caught in rows:
        files = ", ".join(sorted({Path(p.file).name for p in b.patches}))
        shown = [short(t) for t in caught[:args.max_names]]
        if len(caught) > args.max_names:
            shown.append(f"(+{len(caught) - args.max_names} more)")
        by = ", ".join(shown) if caught else "**NOT CAUGHT**"
        if r.errors:
            by += f" ({'; '.join(r.errors)})"
        lines.append(f"| {b.id} | `{files}`: {b.what} | {by} |")
    table = "\n".join(lines)
    print(table)
    n_missed = sum(1 for _, _, c in rows if not c)
    print(f"\n{len(rows) - n_missed}/{len(rows)} breakages caught", file=sys.stderr)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return 1 if n_missed else 0


if __name__ == "__main__":
    sys.exit(main())
