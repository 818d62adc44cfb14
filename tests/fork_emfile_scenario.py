"""A fork server running out of file descriptors, in a process of its own.

    python tests/fork_emfile_scenario.py exact|flood

The soft RLIMIT_NOFILE is lowered in *this* process only: at zero free descriptors gevent's
hub may abort(), which must not take the test run with it.  ``exact`` leaves not one
descriptor free while 3 more sockets arrive (accept() itself fails with EMFILE); ``flood``
sends 150 idle sockets at ~40 free descriptors (websockets' per-connection socketpair fails
too).  Then the limit is restored (``exact``) or kept (``flood``), the flood closes, and a real
fork must get in.  Prints one JSON line with what happened.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.queue import Queue  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fork_helpers import Flood, lowest_free_fd, open_fds, wait_until  # noqa: E402
from voiceagent.telephony.fork_server import ForkServer, Metadata  # noqa: E402
from voiceagent.telephony.forkwire import SUBPROTOCOL  # noqa: E402

UUID = "8eb532dd-ba0a-4941-aab3-a85a2ae06271"


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main(mode: str) -> dict:
    lines = _Lines()
    logging.getLogger("voiceagent.telephony").addHandler(lines)
    got: Queue = Queue()

    def handler(conn):
        for msg in conn.messages():
            got.put(msg)

    srv = ForkServer("127.0.0.1", 0, handler, max_connections=100000, max_pending_per_address=100000,
                     handshake_timeout=30)
    srv.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: dict = {}
    flood = None
    try:
        if mode == "exact":
            flood = Flood(srv.port, "silent:5:127.0.0.2")
            wait_until(lambda: srv.guard.total == 5, 5)
            gevent.sleep(0.1)  # their handlers are set up
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd(), hard))  # not one descriptor left
            flood.more("silent:3:127.0.0.2")  # accept() now fails with EMFILE
            wait_until(lambda: srv.health()["accept_errors"] > 0, 5)
            out["degraded"] = srv.health()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        else:
            base = open_fds()
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd() + 40, hard))
            flood = Flood(srv.port, "silent:150:127.0.0.2",
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
            wait_until(lambda: srv.health()["accept_errors"] > 0, 10)
            out["degraded"] = srv.health()
            flood.close()
            # dropped sockets stop counting at once and are closed by their handlers a moment later
            wait_until(lambda: srv.guard.total == 0 and open_fds() <= base + 5, 10)
        try:
            with connect(f"{srv.url}/call/{UUID}", subprotocols=[SUBPROTOCOL], compression=None,
                         open_timeout=3) as ws:
                ws.send('{"uuid":"%s"}' % UUID)
                out["fork_after"] = isinstance(got.get(timeout=3), Metadata)
        except Exception as exc:
            out["fork_after"] = f"{type(exc).__name__}: {exc}"
        out["serving_after"] = wait_until(lambda: srv.health()["serving"], 5)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if flood is not None:
            flood.close()
        srv.stop()
    out["emfile_lines"] = [m for m in lines.messages if "cannot accept" in m]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), default=str), flush=True)
