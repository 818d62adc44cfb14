"""The run-wide abort, in a process of its own: a WebSocket test server, then libev rebuilds its epoll set.

    python tests/watcher_abort_scenario.py serve_forever|serve_in_greenlet

libev rebuilds the kernel's interest list from every active io watcher after a fork and whenever
epoll reports a descriptor it cannot update (one closed here but still open in a forked child
that has not exec'd yet: the subprocess tests).  ``loop.reinit()`` makes that rebuild happen now.
A watcher left on a closed descriptor then fails ``epoll_ctl`` with EBADF, and libev asserts:
"libev: I/O watcher with invalid fd found in epoll_ctl", SIGABRT.  Prints "survived" otherwise.
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from websockets.sync.server import serve  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.ws_helpers import serve_in_greenlet  # noqa: E402


def main(mode: str) -> None:
    srv = serve(lambda ws: None, "127.0.0.1", 0)
    g = gevent.spawn(srv.serve_forever) if mode == "serve_forever" else serve_in_greenlet(srv)
    gevent.sleep(0.01)
    srv.shutdown()
    g.join(2)
    gevent.sleep(0.01)
    gevent.get_hub().loop.reinit()
    gevent.sleep(0.01)  # the next loop iteration rebuilds the epoll set
    print("survived", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
