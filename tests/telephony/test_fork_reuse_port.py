"""FORK_REUSE_PORT: several voice workers' fork servers on one port (SO_REUSEPORT), each serving the forks
the kernel hands it; without it a second server on the port is refused, by the preflight too."""
import socket

import gevent
import pytest
from gevent.queue import Queue
from websockets.sync.client import connect

from voiceagent.startup import check_bind
from voiceagent.telephony.fork_server import Audio, ForkServer
from voiceagent.telephony.forkwire import SUBPROTOCOL


class Recorder:
    """A fork handler keeping its connections and their messages."""

    def __init__(self):
        self.messages: Queue = Queue()
        self.connections: Queue = Queue()

    def __call__(self, conn):
        self.connections.put(conn)
        for msg in conn.messages():
            self.messages.put(msg)

    def next(self, timeout=5.0):
        return self.messages.get(timeout=timeout)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_servers_share_a_port_and_each_fork_reaches_exactly_one(request):
    port = _port()
    recs = [Recorder(), Recorder()]
    servers = [ForkServer("127.0.0.1", port, rec, reuse_port=True) for rec in recs]
    for srv in servers:
        srv.start()
        request.addfinalizer(srv.stop)
    assert servers[0].port == servers[1].port == port
    assert check_bind("FORK_HOST", "127.0.0.1", "FORK_PORT", port, reuse_port=True) == []  # a third may join
    assert check_bind("FORK_HOST", "127.0.0.1", "FORK_PORT", port) == [
        f"FORK_PORT: port {port} on 127.0.0.1 is already in use"]
    n = 24
    for k in range(n):
        uuid = f"8eb532dd-ba0a-4941-aab3-{k:012d}"
        with connect(f"ws://127.0.0.1:{port}/call/{uuid}", subprotocols=[SUBPROTOCOL], compression=None,
                     legacy=True, open_timeout=5) as ws:
            ws.send('{"sampleRate":16000}')
            ws.send(bytes([k]) * 640)
            got = None
            with gevent.Timeout(10):  # the fork's audio arrives at one server or the other
                while got is None:
                    got = next((rec for rec in recs if not rec.messages.empty()), None)
                    gevent.sleep(0.01)
            got.next()  # the metadata
            assert got.next() == Audio(bytes([k]) * 640, 16000)
            other = recs[1 - recs.index(got)]
            assert other.messages.empty()
    served = [rec.connections.qsize() for rec in recs]
    assert sum(served) == n and min(served) > 0, served  # the kernel spread them (24 coin flips)


def test_without_reuse_port_a_second_server_on_the_port_is_refused(request):
    first = ForkServer("127.0.0.1", 0, Recorder(), reuse_port=True)
    first.start()
    request.addfinalizer(first.stop)
    with pytest.raises(OSError):
        ForkServer("127.0.0.1", first.port, Recorder()).start()
