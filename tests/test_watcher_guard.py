"""A gevent selector left on a closed descriptor: what it breaks, that the guard sees it, that the
test servers no longer leave one (the cause of the run-wide "Fatal Python error: Aborted")."""
import errno
import os
import selectors
import signal
import socket
import sys

import gevent
import pytest
from websockets.sync.client import connect
from websockets.sync.server import serve

from tests import watcher_guard
from tests.fork_helpers import run_isolated
from tests.ws_helpers import serve_in_greenlet


def _one_loop_iteration():
    gevent.sleep(0.001)  # a timer: the loop polls and runs its check phase, where gevent's deferred closes run


def _leak_a_selector():
    """A selector waiting on two sockets returns for the readable one; the other is then closed while
    its watcher is still active, and the selector is dropped without close() (serve_forever's pattern)."""
    quiet, quiet_peer = socket.socketpair()
    ready, ready_peer = socket.socketpair()
    sel = selectors.DefaultSelector()
    sel.register(quiet, selectors.EVENT_READ)
    sel.register(ready, selectors.EVENT_READ)
    ready_peer.send(b"x")
    assert [key.fileobj for key, _ in sel.select(timeout=2)] == [ready]
    fd = quiet.fileno()
    for s in (quiet, quiet_peer, ready, ready_peer):
        s.close()
    _one_loop_iteration()
    return fd


def test_the_guard_finds_a_selector_left_on_a_closed_descriptor_and_stops_it():
    fd = _leak_a_selector()
    found = watcher_guard.stale()
    assert [w.fd for w in found] == [fd] and "test_watcher_guard.py" in found[0].registered_at
    watcher_guard.close_selectors(found)
    assert watcher_guard.stale() == []


def test_the_leaked_watcher_defers_every_later_close_on_its_descriptor_number():
    """Why the leak matters even before libev aborts: a port stays bound after close() (EADDRINUSE)."""
    fd = _leak_a_selector()
    try:
        s = socket.socket()
        assert s.fileno() == fd  # the lowest free number: the stale watcher's
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        again = socket.socket()
        with pytest.raises(OSError) as err:
            again.bind(("127.0.0.1", port))
        assert err.value.errno == errno.EADDRINUSE
        again.close()
        _one_loop_iteration()
        with socket.socket() as third:
            third.bind(("127.0.0.1", port))  # the deferred close has run now
    finally:
        watcher_guard.close_selectors(watcher_guard.stale())


def _echo(ws):
    for msg in ws:
        ws.send(msg)


def test_websockets_serve_forever_leaves_its_selector_on_the_closed_wakeup_socket():
    """The reproduction: websockets 17.4 (pinned) never closes serve_forever's poller."""
    srv = serve(_echo, "127.0.0.1", 0)
    g = gevent.spawn(srv.serve_forever)
    gevent.sleep(0.01)
    srv.shutdown()
    g.join(2)
    _one_loop_iteration()
    found = watcher_guard.stale()
    try:
        assert found and all("server.py" in w.registered_at for w in found), \
            "websockets closes its poller now: tests.ws_helpers may go"
    finally:
        watcher_guard.close_selectors(found)


def test_serve_in_greenlet_serves_and_leaves_no_watcher():
    srv = serve(_echo, "127.0.0.1", 0)
    g = serve_in_greenlet(srv)
    port = srv.socket.getsockname()[1]
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
    srv.shutdown()
    assert g.join(2) is None and g.dead and g.successful()
    _one_loop_iteration()
    assert watcher_guard.stale() == []


SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watcher_abort_scenario.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("mode", ["serve_forever", "serve_in_greenlet"])
def test_the_leak_is_what_aborts_the_run_when_libev_rebuilds_its_epoll_set(mode):
    """tests/watcher_abort_scenario.py: the abort itself, in a process of its own."""
    rc, out, err = run_isolated([sys.executable, SCENARIO, mode], timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    if mode == "serve_forever":
        assert rc == -signal.SIGABRT and "libev: I/O watcher with invalid fd found in epoll_ctl" in err, (rc, err[-2000:])
    else:
        assert rc == 0 and out.strip() == "survived", (rc, err[-2000:])
