"""``create_app(settings, client=None)``: the Flask app of the REST API, one blueprint per resource.

The app holds a :class:`records.client.CallClient` (built from the Redis and records settings
unless given) and checks the bearer token before any view runs: every operation needs it
except those declared public (``/health``).  The HTML pages under ``/ui`` (pages.py) are not
operations: a browser cannot send the header, so they check their own login cookie.  Tokens are
compared with ``hmac.compare_digest`` so the time a wrong token takes says nothing about the right
one.  An empty API_TOKEN turns auth off, which :func:`server.make_server` allows on a loopback address only.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any, Optional

import redis
from flask import Flask, request

from ..dialog.tool_reload import ToolSet, read_generation
from ..dialog.tools import ToolRegistry
from ..jobs.dispatch import Dispatcher
from ..records.client import CallClient
from ..webhooks import inbound as webhooks_in
from . import calls, docs, errors, health, pages, schedules, telemetry, tools
from .errors import ApiError
from .openapi import is_html_page, operation_of

log = logging.getLogger(__name__)

BLUEPRINTS = (calls.bp, schedules.bp, tools.bp, health.bp, docs.bp, webhooks_in.bp, pages.bp)


def _token(settings: Any) -> bytes:
    secret = getattr(settings, "api_token", None)
    value = secret.get_secret_value() if secret is not None else ""
    return value.encode()


def _tools(settings: Any, client: CallClient, tools: Optional[ToolRegistry]) -> ToolSet:
    """The voice worker's registry (TOOLS_DIRS, TOOL_TIMEOUT); the built-ins when the settings have no
    tools section.  A plugin that fails to import is listed by GET /tools, never fatal here.  It follows
    the tools generation in Redis (POST /tools/reload in any API process reloads them all)."""
    from ..config import ToolsSettings

    s = settings if hasattr(settings, "tools_dirs") else ToolsSettings()
    live = ToolSet(tools if tools is not None else ToolRegistry.from_settings(s), s)
    try:
        live.generation = read_generation(client.r, client.keys)  # what was just loaded is current
    except redis.RedisError as exc:  # the first tools request reloads, once Redis answers
        log.warning("tools generation unknown (%s)", exc)
    return live


def create_app(settings: Any, client: Optional[CallClient] = None, tools: Optional[ToolRegistry] = None) -> Flask:
    app = Flask("voiceagent.api", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["voiceagent.client"] = client = client or CallClient.from_settings(settings)
    app.extensions["voiceagent.settings"] = settings
    app.extensions["voiceagent.dispatcher"] = Dispatcher.from_settings(settings, client)
    app.extensions["voiceagent.tools"] = _tools(settings, client, tools)
    telemetry.install(app, app.extensions["voiceagent.dispatcher"].depth)  # first: 401s are traced and counted
    expected = _token(settings)
    if not expected:
        log.warning("API_TOKEN is empty: the API accepts requests without a token (loopback only)")

    @app.before_request
    def _authenticate() -> None:
        view = app.view_functions.get(request.endpoint or "")
        op = operation_of(view) if view is not None else None
        if (op is not None and op.public) or (view is not None and is_html_page(view)):
            return  # public, or a page (pages.py checks its login cookie)
        if not expected:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "a valid 'Authorization: Bearer <API_TOKEN>' header is required",
                           headers={"WWW-Authenticate": 'Bearer realm="voiceagent"'})

    pages.configure(app, settings, expected)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    errors.install(app)
    return app
