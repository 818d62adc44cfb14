"""A private Redis server (restartable) and a TCP proxy in front of it (cut-able), for Redis fault tests.

The shared Redis on 6379 is never restarted or cut: each test gets its own ``redis-server`` on a
free port, in its tmp_path, without persistence (a restart loses everything, like a real crash of
a Redis without AOF), and the worker may talk to it through a proxy whose ``down()`` makes Redis
unreachable while its data stays.
"""
import shutil
import socket
import subprocess
import time

import gevent
import pytest
import redis
from gevent.server import StreamServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of a test's own on a free port; ``persistent`` = an append-only file fsynced on every
    write (a kill -9 loses nothing), else nothing survives a restart."""

    def __init__(self, workdir, persistent: bool = False):
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, **kw)

    def start(self) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                gevent.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def restart(self) -> None:
        """A crash and restart: every key is gone."""
        self.stop()
        self.start()


class TcpProxy:
    """127.0.0.1:<port> → target; ``down()`` closes every connection and refuses new ones."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._server = None
        self._socks = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def up(self) -> None:
        self._server = StreamServer(("127.0.0.1", self.port), self._handle)
        self._server.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        self._socks = []

    def _handle(self, client, _addr) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        self._socks += [client, upstream]

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass

        a = gevent.spawn(pump, client, upstream)
        pump(upstream, client)
        a.join(1)


@pytest.fixture
def redis_server(tmp_path):
    assert shutil.which("redis-server"), "redis-server is needed (./run installs it)"
    srv = RedisServer(tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def redis_proxy(redis_server):
    proxy = TcpProxy(redis_server.port)
    proxy.up()
    yield proxy
    proxy.down()
