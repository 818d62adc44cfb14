"""Every setting reaches the code that uses it.

A setting nobody reads is a lie in ``voiceagent config`` (BGAPI_TIMEOUT was one: the originate
passed its own wait and the configured value never arrived).  A static pass finds every field
read somewhere outside the config package; the ESL and Redis settings are then followed from a
worker built from distinctive values to the objects that use them.
"""
import re
from pathlib import Path

import gevent
import gevent.event
import pytest
from gevent.server import StreamServer

from voiceagent.config import Settings, load_settings
from voiceagent.telephony.commands import ORIGINATE_MARGIN_S
from voiceagent.telephony.esl import EslConnection, EslTimeout

PACKAGE = Path(__file__).resolve().parents[1] / "voiceagent"

#: Settings whose consumer is the configuration's own validation (they change what is accepted).
READ_BY_CONFIG = {"fork_allow_insecure": "fork_edge_problem: allows a non-loopback FORK_HOST without auth"}


def _sources() -> str:
    return "\n".join(p.read_text() for p in sorted(PACKAGE.rglob("*.py")) if "config" not in p.relative_to(PACKAGE).parts[:1])


def test_every_setting_is_read_outside_the_config_package():
    text = _sources()
    unread = [name for name in Settings.model_fields
              if name not in READ_BY_CONFIG and not re.search(rf"\.{name}\b|[\"']{name}[\"']", text)]
    assert not unread, f"settings nobody reads (wire them to their consumer or remove them): {', '.join(n.upper() for n in unread)}"
    assert set(READ_BY_CONFIG) <= set(Settings.model_fields)


@pytest.fixture
def worker():
    from voiceagent.calls.worker import VoiceWorker

    s = load_settings(esl_nodes="fsx=127.0.0.9:8123", esl_password="reach-pw", esl_command_timeout=1.25,
                      esl_connect_timeout=2.25, esl_reconnect_max_delay=3.25, bgapi_timeout=123.0,
                      esl_healthy_after_s=4.25, esl_event_queue_max=77, redis_url="redis://127.0.0.1:6399/3",
                      redis_prefix="reach-prefix", redis_max_connections=13, redis_pool_timeout=1.75,
                      redis_socket_timeout=2.75)
    w = VoiceWorker(s)  # nothing connects before start()
    yield w
    w.redis.connection_pool.disconnect()


def _node(worker):
    from voiceagent.calls.worker import NodeLink

    (name, host, port), = worker.settings.esl_endpoints()
    return NodeLink(worker, name, host, port)


def test_the_esl_settings_reach_the_node_connection(worker):
    esl = _node(worker).esl
    assert (esl.node, esl.host, esl.port, esl.password) == ("fsx", "127.0.0.9", 8123, "reach-pw")
    assert (esl.command_timeout, esl.connect_timeout, esl.reconnect_max_delay, esl.bgapi_timeout,
            esl.healthy_after) == (1.25, 2.25, 3.25, 123.0, 4.25)
    assert esl.max_queued_events == 77


def test_bgapi_timeout_reaches_the_originate_wait(worker):
    link = _node(worker)
    waits = []

    def bgapi_async(cmd, timeout=None):
        waits.append(timeout)
        return gevent.event.AsyncResult()

    link.esl.bgapi_async = bgapi_async
    link.fs.originate_async("loopback/1/default", timeout=20)
    assert waits == [123.0]  # BGAPI_TIMEOUT, longer than the ring timeout + margin
    link.fs.originate_async("loopback/1/default", timeout=200)
    assert waits[-1] == 200 + ORIGINATE_MARGIN_S  # never given up before the ring ends
    link.fs.originate_async("loopback/1/default", timeout=20, wait_timeout=7.0)
    assert waits[-1] == 7.0


def test_the_redis_settings_reach_the_worker_client(worker):
    pool = worker.redis.connection_pool
    kw = pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"]) == ("127.0.0.1", 6399, 3)
    assert (pool.max_connections, pool.timeout, kw["socket_timeout"]) == (13, 1.75, 2.75)
    assert worker.store.prefix == "reach-prefix"


def _silent_job_server():
    """Auth, subscription and bgapi accepted; the BACKGROUND_JOB never comes."""

    def handle(sock, _addr):
        f = sock.makefile("rb")
        sock.sendall(b"Content-Type: auth/request\n\n")
        while True:
            lines = []
            while True:
                line = f.readline()
                if not line:
                    return
                if line in (b"\n", b"\r\n"):
                    break
                lines.append(line.decode().strip())
            first = lines[0] if lines else ""
            if first.startswith("bgapi"):
                job = next(x.split(": ", 1)[1] for x in lines if x.startswith("Job-UUID: "))
                sock.sendall(f"Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n".encode())
            else:
                sock.sendall(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")

    srv = StreamServer(("127.0.0.1", 0), handle)
    srv.start()
    return srv


def test_bgapi_timeout_from_settings_expires_a_job_on_the_wire():
    srv = _silent_job_server()
    s = load_settings(esl_nodes=f"fs1=127.0.0.1:{srv.server_port}", esl_password="pw", bgapi_timeout=0.4)
    (name, host, port), = s.esl_endpoints()
    conn = EslConnection.from_settings(s, name, host, port)
    try:
        conn.start(timeout=5)
        started = gevent.get_hub().loop.now()
        with pytest.raises(EslTimeout, match="within 0.4s"):
            with gevent.Timeout(5, AssertionError("the job never expired")):
                conn.bgapi("status")
        assert gevent.get_hub().loop.now() - started < 3
    finally:
        conn.stop()
        srv.stop()
