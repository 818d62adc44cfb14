"""websockets' sync server, run in a greenlet without ``Server.serve_forever``.

``serve_forever`` waits in a selector that it never closes; once ``shutdown()`` has closed the
wake-up socket that selector still holds an active libev watcher on its descriptor, for the
rest of the process (see tests/watcher_guard.py for what that breaks).  Under gevent a plain
blocking ``accept()`` is all the loop needs: ``shutdown()`` closing the listening socket wakes
it with an error.
"""
from __future__ import annotations

import threading

import gevent
from websockets.sync.server import Server


def _accept_loop(server: Server) -> None:
    try:
        while True:
            try:
                sock, addr = server.socket.accept()
            except OSError:  # shutdown() closed the listening socket
                break
            # registered before it starts, as serve_forever does, so that shutdown() waits for it
            thread = threading.Thread(target=server.handler, args=(sock, addr))
            with server.lock:
                server.handler_threads.add(thread)
            thread.start()
    finally:
        server.socket_closed.set()  # what shutdown() waits for
        server.shutdown_watcher.close()


def serve_in_greenlet(server: Server) -> gevent.Greenlet:
    """Accept connections for ``server`` (from ``websockets.sync.server.serve``) until its ``shutdown()``."""
    return gevent.spawn(_accept_loop, server)
