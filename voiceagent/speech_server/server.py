"""Serving the speech app: gevent's WSGI server (the API's), each request a greenlet, the models in
the native inference pool, so one process serves many concurrent calls and batches their turns.
A non-loopback SPEECH_SERVER_HOST without SPEECH_SERVER_TOKEN is refused."""
from __future__ import annotations

import logging
from typing import Any, Optional

from gevent.pywsgi import WSGIServer

from ..config import ConfigError, is_loopback_host
from .app import create_app
from .engines import SpeechEngines

__all__ = ["make_speech_server"]

log = logging.getLogger(__name__)


def make_speech_server(settings: Any, engines: Optional[SpeechEngines] = None, *,
                       port: Optional[int] = None) -> WSGIServer:
    if not settings.speech_server_token.get_secret_value() and not is_loopback_host(settings.speech_server_host):
        raise ConfigError(f"invalid configuration: SPEECH_SERVER_TOKEN: is required when SPEECH_SERVER_HOST "
                          f"({settings.speech_server_host!r}) is not a loopback address")
    engines = engines or SpeechEngines(settings)
    app = create_app(settings, engines)
    server = WSGIServer((settings.speech_server_host, settings.speech_server_port if port is None else port), app,
                        log=None, error_log=log)
    server.engines = engines
    return server
