"""``voiceagent emulator``: run the FreeSWITCH emulator, or place one test call through it."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys

import click


def register(main: click.Group) -> None:
    main.add_command(emulator)


@click.group("emulator")
def emulator() -> None:
    """A FreeSWITCH stand-in (ESL + mod_audio_fork) to try the agent without a phone."""


def _make(host, port, password, speed, fork_url, dialplan_dir, switchname="fs1", fork_auth=None):
    from gevent import monkey

    monkey.patch_all()
    from . import FreeSwitchEmulator

    variables = {"voiceagent_fork_url": fork_url.rstrip("/")} if fork_url else {}
    if fork_auth:
        variables.update(voiceagent_fork_user=fork_auth[0], voiceagent_fork_password=fork_auth[1])
    return FreeSwitchEmulator(host=host, port=port, password=password, speed=speed, variables=variables,
                              dialplan_dir=dialplan_dir, switchname=switchname)


def _as_worker_node(ctx: click.Context, node: str, opts: dict) -> dict:
    """The emulator the voice worker's environment expects: one node of ESL_NODES, its ESL_PASSWORD,
    and inbound forks to its fork server (FORK_PUBLIC_URL, else ws://FORK_HOST:FORK_PORT, with
    FORK_AUTH_USER/FORK_AUTH_PASSWORD).  So one env file (honcho's .env) configures both; an option
    given on the command line still wins."""
    from ..config import ConfigError, EslSettings, ForkSettings, load_sections

    try:
        s = load_sections(EslSettings, ForkSettings)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    endpoints = {name: (host, port) for name, host, port in s.esl_endpoints()}
    name = node or next(iter(endpoints))
    if name not in endpoints:
        raise click.UsageError(f"--node {name!r} is not in ESL_NODES ({', '.join(endpoints)})")
    host, port = endpoints[name]
    fork_host = "127.0.0.1" if s.fork_host in ("0.0.0.0", "", "::") else s.fork_host
    found = {"host": host, "port": port, "password": s.esl_password.get_secret_value(),
             "fork_url": s.fork_public_url or f"ws://{fork_host}:{s.fork_port}"}
    explicit = {k for k in found if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE}
    out = {k: (opts[k] if k in explicit else v) for k, v in found.items()}
    auth = (s.fork_auth_user, s.fork_auth_password.get_secret_value()) if s.fork_auth_user else None
    return dict(out, switchname=name, fork_auth=auth)


def _settings_default_password() -> str:
    from ..config import Settings

    return Settings.model_fields["esl_password"].default.get_secret_value()


_WORKER_DEFAULT_PASSWORD = _settings_default_password()  # the worker's ESL_PASSWORD default, read from its settings

_common = [
    click.option("--host", default="127.0.0.1", show_default=True, help="ESL listen address"),
    click.option("--port", default=8021, show_default=True, type=int, help="ESL listen port (0 = any free port)"),
    click.option("--password", default=lambda: os.environ.get("ESL_PASSWORD") or _WORKER_DEFAULT_PASSWORD,
                 show_default="$ESL_PASSWORD, else the worker's default 'change-me'",
                 help="ESL password (the same default as the worker's, so the two work together out of the box)"),
    click.option("--speed", default=1.0, show_default=True, type=float, help="time scale (2 = twice real time)"),
    click.option("--fork-url", default=None,
                 help="worker fork server, e.g. ws://127.0.0.1:8765 (dialplan $${voiceagent_fork_url})"),
    click.option("--dialplan-dir", default=None, type=click.Path(exists=True, file_okay=False),
                 help="XML dialplan directory (default: the repo's freeswitch/conf/dialplan)"),
]


def _with_common(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


@emulator.command("serve")
@_with_common
@click.option("--call", "calls", multiple=True, help="place an inbound call to this number after start (repeatable)")
@click.option("--caller", default="+15551230001", show_default=True)
@click.option("--audio", default=None, type=click.Path(exists=True, dir_okay=False), help="what the callers say (WAV)")
@click.option("--worker-env", is_flag=True,
              help="be the node the voice worker's environment names: listen on its ESL_NODES entry (--node, "
                   "default the first), take ESL_PASSWORD, fork inbound calls to FORK_PUBLIC_URL or "
                   "ws://FORK_HOST:FORK_PORT (Procfile.emulator)")
@click.option("--node", default="", help="with --worker-env: which ESL_NODES entry (default: the first)")
@click.pass_context
def serve(ctx, host, port, password, speed, fork_url, dialplan_dir, calls, caller, audio, worker_env, node) -> None:
    """Run an emulated FreeSWITCH until interrupted (or SIGTERM)."""
    import gevent
    import gevent.event

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    extra = {}
    if worker_env:
        extra = _as_worker_node(ctx, node, {"host": host, "port": port, "password": password, "fork_url": fork_url})
        host, port, password, fork_url = (extra.pop(k) for k in ("host", "port", "password", "fork_url"))
    emu = _make(host, port, password, speed, fork_url, dialplan_dir, **extra)
    emu.start()
    shown = "***" if worker_env else repr(password)  # from the environment: a real secret, maybe
    click.echo(f"FreeSWITCH emulator {emu.switchname}: ESL on {host}:{emu.port} (password {shown}), "
               f"Core-UUID {emu.factory.core_uuid}, inbound forks to {fork_url or 'the dialplan default'}")
    for number in calls:
        ch = emu.place_call(destination=number, caller=caller, audio=audio)
        click.echo(f"call {ch.uuid} -> {number}")
    stop = gevent.event.Event()  # SIGTERM (honcho, systemd) and Ctrl-C end it cleanly, exit status 0
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    try:
        stop.wait()
    finally:
        emu.stop()


@emulator.command("call")
@_with_common
@click.option("--to", "destination", default="agent", show_default=True, help="destination number")
@click.option("--from", "caller", default="+15551230001", show_default=True, help="caller id number")
@click.option("--context", default="public", show_default=True)
@click.option("--audio", default=None, type=click.Path(exists=True, dir_okay=False), help="what the caller says (WAV)")
@click.option("--press", default=None, help="DTMF digits the caller presses once answered")
@click.option("--duration", default=30.0, show_default=True, type=float, help="hang up after this many call seconds")
@click.option("--answer-timeout", default=10.0, show_default=True, type=float)
@click.option("--record", default=None, type=click.Path(dir_okay=False), help="save what the caller heard (WAV)")
def call(host, port, password, speed, fork_url, dialplan_dir, destination, caller, context, audio, press,
         duration, answer_timeout, record) -> None:
    """Place one call, print the ESL-side timeline, save what the caller heard.

    The emulator listens on --port so that a worker configured for it can answer the call."""
    logging.basicConfig(level=logging.WARNING)
    emu = _make(host, port, password, speed, fork_url, dialplan_dir)
    emu.start()
    try:
        ch = emu.place_call(destination=destination, caller=caller, audio=audio, context=context)
        click.echo(f"call {ch.uuid}: {caller} -> {destination} (ESL on {host}:{emu.port})")
        if not ch.wait_answered(answer_timeout / speed):
            click.echo(f"not answered within {answer_timeout}s", err=True)
            ch.hangup("ORIGINATOR_CANCEL")
        else:
            if press:
                ch.press(press)
            if not ch.wait_hangup(duration / speed):
                ch.hangup()
        ch.wait_hangup(5)
        for t, key in ch.timeline:
            click.echo(f"{t:9.3f}s  {key}")
        for s in ch.segments:
            click.echo(f"played {s['start']:.3f}-{s['end']:.3f}s {s['status']:5s} {s['path']}")
        click.echo(f"hangup cause: {ch.hangup_cause}")
        if record:
            ch.write_heard_wav(record)
            click.echo(f"wrote {record}")
        out = {"uuid": ch.uuid, "answered": ch.answered, "hangup_cause": ch.hangup_cause,
               "segments": ch.segments}
        click.echo(json.dumps(out))
    finally:
        emu.stop()
    sys.exit(0)
