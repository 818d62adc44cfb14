"""Serving the API: gevent's WSGI server, refused on an open address without a token."""
from __future__ import annotations

import logging
from typing import Any, Optional

from gevent.pywsgi import WSGIServer

from ..config import ConfigError, api_bind_problem
from ..records.client import CallClient
from .app import create_app

log = logging.getLogger(__name__)


def make_server(settings: Any, client: Optional[CallClient] = None, *, port: Optional[int] = None) -> WSGIServer:
    """A WSGIServer for the API on API_HOST:API_PORT (``port`` overrides; 0 picks one).

    Raises ConfigError naming API_TOKEN when API_HOST is not a loopback address and no token is set."""
    problem = api_bind_problem(settings)
    if problem:
        raise ConfigError(f"invalid configuration: {problem[0]}: {problem[1]}")
    app = create_app(settings, client)
    server = WSGIServer((settings.api_host, settings.api_port if port is None else port), app, log=None,
                        error_log=log)
    return server
