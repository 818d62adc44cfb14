"""``voiceagent api``: serve the REST API with gevent's WSGI server (the Procfile's ``web``).

Reads only the sections it uses (api, Redis, records, dial, jobs, schedules, webhooks, tools), so a bad
value of the voice worker's settings cannot stop it; a non-loopback API_HOST without API_TOKEN stops it with
a message naming API_TOKEN.
"""
from __future__ import annotations

import signal
import sys
from typing import Optional

import click


def register(main: click.Group) -> None:
    @main.command("api")
    @click.option("--host", default=None, help="Override API_HOST.")
    @click.option("--port", type=int, default=None, help="Override API_PORT.")
    def api(host: Optional[str], port: Optional[int]) -> None:
        """Serve the REST API (POST /calls, GET /calls, /tools, /health, /openapi.json, /docs)."""
        import gevent

        from .api.server import make_server
        from .config import (
            ApiSettings,
            ConfigError,
            DialSettings,
            JobsSettings,
            LoggingSettings,
            RecordsSettings,
            RedisSettings,
            ScheduleSettings,
            ToolsSettings,
            TracingSettings,
            WebhookSettings,
            load_sections,
        )
        from .observability.logs import setup_from_settings
        from .observability.tracing import setup_tracing

        overrides = {k: v for k, v in (("api_host", host), ("api_port", port)) if v is not None}
        try:
            s = load_sections(ApiSettings, RedisSettings, RecordsSettings, DialSettings, JobsSettings, ScheduleSettings,
                              WebhookSettings, ToolsSettings, LoggingSettings, TracingSettings, **overrides)
            server = make_server(s)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        setup_from_settings(s)
        setup_tracing(s, "api")
        server.start()
        click.echo(f"voiceagent api listening on http://{server.address[0]}:{server.server_port}", err=True)
        gevent.signal_handler(signal.SIGTERM, server.stop)
        gevent.signal_handler(signal.SIGINT, server.stop)
        server.serve_forever()
