"""The base of the tests' local HTTP stand-ins for outside services (Tempest, Home Assistant): a real
gevent WSGI server on a free port whose ``hang`` mode holds requests until the stand-in stops."""
from __future__ import annotations

from gevent.event import Event
from gevent.pywsgi import WSGIServer


class HttpStandIn:
    def __init__(self) -> None:
        self.hang = False                  # never answer (until stopped): the client's timeout must end it
        self._released = Event()
        self._server = WSGIServer(("127.0.0.1", 0), self._app, log=None, error_log=None)

    def _app(self, environ, start_response):  # pragma: no cover - each stand-in answers its own API
        raise NotImplementedError

    def start(self):
        self._server.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.stop(timeout=1)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def hold(self) -> None:
        """In ``hang`` mode: keep the request open until the stand-in stops (at most 30 s)."""
        self._released.wait(30)
