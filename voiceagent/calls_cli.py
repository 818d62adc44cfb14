"""``voiceagent call ...`` and ``voiceagent events``: the call client from a shell.

Any machine that reaches Redis can place a call, follow it and read how it went; the voice
workers do the dialing.  Output is JSON (one document, or one event per line).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click


def _settings() -> Any:
    from .config import ConfigError, DialSettings, JobsSettings, RecordsSettings, RedisSettings, load_sections

    try:
        return load_sections(RedisSettings, RecordsSettings, DialSettings, JobsSettings)  # only what placing reads
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _client() -> Any:
    from .records.client import CallClient

    return CallClient.from_settings(_settings())


def _emit(obj: Any) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json", by_alias=True)
    click.echo(json.dumps(obj, indent=None, separators=(",", ":")))


def _fail(message: str, code: int = 1) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def register(main: click.Group) -> None:
    @main.group("call")
    def call() -> None:
        """Place, follow, command and cancel calls (through Redis; voice workers dial)."""

    @call.command("place")
    @click.option("--to", help="Number, extension or sip: URI.")
    @click.option("--message", help="Said when the callee answers.")
    @click.option("--instructions", help="What the call is for (joins the prompt).")
    @click.option("--profile", help="Dialog profile.")
    @click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Prompt variable (repeatable).")
    @click.option("--json", "body", type=click.File("r"), help="The whole request as JSON ('-' = stdin).")
    @click.option("--wait", "wait_s", type=float, default=None,
                  help="Wait this long for the call to end; print the record.")
    @click.option("--priority", type=click.Choice(["high", "bulk"]), default="high", show_default=True,
                  help="Queue priority: bulk calls are dialed when no high one waits.")
    @click.option("--direct", is_flag=True, help="Skip the queue: hand the call straight to the voice workers "
                  "(no CALL_CONCURRENCY_LIMIT, no retries; for a system without job workers).")
    def place(to: Optional[str], message: Optional[str], instructions: Optional[str], profile: Optional[str],
              variables: Any, body: Any, wait_s: Optional[float], priority: str, direct: bool) -> None:
        """Queue an outbound call (a job worker dials it when the cluster has room); prints its id (or its
        record with --wait)."""
        from pydantic import ValidationError

        from .jobs.dispatch import Dispatcher, QueueFull
        from .records.client import CallClient
        from .records.dial_policy import DialRefused

        req: dict = json.load(body) if body is not None else {}
        if not isinstance(req, dict):
            _fail("the request must be a JSON object", 2)
        for key, val in (("to", to), ("message", message), ("instructions", instructions), ("profile", profile)):
            if val is not None:
                req[key] = val
        for item in variables:
            name, sep, value = item.partition("=")
            if not sep:
                _fail(f"--var {item!r}: expected NAME=VALUE", 2)
            req.setdefault("variables", {})[name] = value
        s = _settings()
        client = CallClient.from_settings(s)
        try:
            call_id = client.place(req) if direct else Dispatcher.from_settings(s, client).submit(
                req, priority=priority)  # type: ignore[arg-type]
        except QueueFull as exc:
            _fail(f"the queue is full: {exc}", 3)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
            _fail(f"invalid request: {fields}", 2)
        except DialRefused as exc:
            _fail(f"refused by the dial policy: {exc}", 2)
        if wait_s is None:
            _emit({"id": call_id})
            return
        try:
            _emit(client.wait(call_id, timeout=wait_s))
        except TimeoutError as exc:
            _fail(str(exc))

    @call.command("get")
    @click.argument("call_id")
    def get(call_id: str) -> None:
        """Print a call's record."""
        rec = _client().get(call_id)
        if rec is None:
            _fail(f"no record of call {call_id}")
        _emit(rec)

    @call.command("wait")
    @click.argument("call_id")
    @click.option("--until", default="ended", show_default=True, help="State to wait for.")
    @click.option("--timeout", type=float, default=60.0, show_default=True)
    def wait(call_id: str, until: str, timeout: float) -> None:
        """Wait until a call reaches a state (default: ended); print its record."""
        try:
            _emit(_client().wait(call_id, until=until, timeout=timeout))
        except TimeoutError as exc:
            _fail(str(exc))

    @call.command("cancel")
    @click.argument("call_id")
    def cancel(call_id: str) -> None:
        """Cancel a queued request, or hang up a call being dialed or talked to."""
        from .calls.inbox import CallNotFound

        try:
            _emit(_client().cancel(call_id))
        except CallNotFound:
            _fail(f"no record of call {call_id}")

    @call.command("list")
    @click.option("--direction", type=click.Choice(["inbound", "outbound"]))
    @click.option("--state")
    @click.option("--outcome")
    @click.option("--limit", type=int, default=20, show_default=True)
    def list_(direction: Optional[str], state: Optional[str], outcome: Optional[str], limit: int) -> None:
        """Recent calls, newest first (one JSON record per line)."""
        for rec in _client().list(direction=direction, state=state, outcome=outcome, limit=limit):
            _emit(rec)

    @call.command("send")
    @click.argument("call_id")
    @click.argument("command_json")
    def send(call_id: str, command_json: str) -> None:
        """Send a live call a command, e.g. '{"type": "say", "text": "One moment"}'."""
        from pydantic import ValidationError

        from .calls.inbox import CallNotFound

        try:
            cmd = _client().send(call_id, json.loads(command_json))
        except (ValueError, ValidationError) as exc:
            _fail(f"invalid command: {exc}", 2)
        except CallNotFound as exc:
            _fail(str(exc))
        _emit(cmd)

    @main.command("events")
    @click.option("--group", default="cli", show_default=True, help="Consumer group (keeps its position).")
    @click.option("--consumer", default="cli-1", show_default=True)
    @click.option("--follow/--no-follow", default=False, help="Keep reading new events.")
    def events(group: str, consumer: str, follow: bool) -> None:
        """Print call events from the stream, one JSON object per line, acknowledging each."""
        client = _client()
        while True:
            got = client.stream.read(group, consumer, block_ms=1000 if follow else 1)
            for entry_id, ev in got:
                _emit(ev)
                client.ack(group, entry_id)
            if not got and not follow:
                return
