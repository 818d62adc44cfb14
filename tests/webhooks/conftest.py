"""A real API server with webhook sources, a real HTTP receiver, a real RQ worker subprocess."""
import json
import os
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
import yaml

from tests.calls.conftest import redis_prefix  # noqa: F401 - fixture
from voiceagent.api.server import make_server
from voiceagent.config import ApiSettings, DialSettings, RecordsSettings, RedisSettings, WebhookSettings, load_sections
from voiceagent.records.client import CallClient

TOKEN = "test-api-token-5f1c"
DATA = Path(__file__).resolve().parents[1] / "data" / "webhooks"
ROOT = Path(__file__).resolve().parents[2]


def sample(name):
    return json.loads((DATA / name).read_text())


@pytest.fixture
def webhook_api(redis_prefix, tmp_path):  # noqa: F811 - the fixture imported above
    servers = []

    def start(sources, **overrides):
        path = tmp_path / f"webhooks-{len(servers)}.yaml"
        path.write_text(yaml.safe_dump({"sources": sources}))
        s = load_sections(ApiSettings, RedisSettings, RecordsSettings, DialSettings, WebhookSettings,
                          redis_prefix=redis_prefix, api_port=0, api_token=TOKEN, webhooks_file=str(path), **overrides)
        server = make_server(s)
        server.start()
        servers.append(server)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {TOKEN}"
        return types.SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", api=api, settings=s,
                                     prefix=redis_prefix, client=CallClient(redis.Redis(), redis_prefix))

    yield start
    for server in servers:
        server.stop(timeout=2)


class Receiver:
    """An HTTP server recording each POST; answers the statuses of ``script`` in turn, then 200."""

    def __init__(self, script=()):
        self.script = list(script)
        self.got = []
        self.cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.cond:
                    status = owner.script.pop(0) if owner.script else 200
                    owner.got.append(types.SimpleNamespace(headers=dict(self.headers), body=body, status=status,
                                                           path=self.path))
                    owner.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, pred, timeout=30.0):
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.got), timeout), f"receiver got {len(self.got)}: {self.got}"
            return list(self.got)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(script=()):
        r = Receiver(script)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


SECRET = "status-secret-0123456789"


@pytest.fixture
def rq_worker(redis_prefix, tmp_path):  # noqa: F811
    procs = []

    def start(**env):
        e = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_PREFIX": redis_prefix, "WEBHOOK_SECRET": SECRET,
             "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_TIMEOUT": "2", **env}
        log = open(tmp_path / f"rq-{len(procs)}.log", "w")
        p = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "jobs", "worker", "--queue", "webhooks"],
                             env=e, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
        procs.append((p, log))
        return p

    yield start
    for p, log in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    r = redis.Redis()
    for k in r.scan_iter(f"rq:*{redis_prefix}*"):
        r.delete(k)


