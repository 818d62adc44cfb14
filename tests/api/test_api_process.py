"""``voiceagent api`` as its own process: it serves, and it refuses an open address without a token."""
import os
import socket
import subprocess
import sys

import gevent
import pytest
import requests

from voiceagent.api.server import make_server
from voiceagent.config import ConfigError

from .conftest import TOKEN, api_settings


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(prefix, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
    env.update(REDIS_PREFIX=prefix, **extra)
    return env


def test_voiceagent_api_serves_calls_over_http(redis_prefix):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "api", "--port", str(port)],
                            env=_env(redis_prefix, API_TOKEN=TOKEN, ESL_NODES="not a valid node list"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        with gevent.Timeout(20, AssertionError("voiceagent api never said it was listening")):
            seen = []
            while not any("listening on" in line for line in seen):
                line = proc.stderr.readline()
                assert line, "voiceagent api exited: " + "".join(seen)
                seen.append(line)
        assert requests.get(url + "/health", timeout=5).status_code == 200
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = requests.post(url + "/calls", json={"to": "+15550100"}, headers=auth)
        assert r.status_code == 202 and r.json()["state"] == "queued"
        assert requests.get(f"{url}/calls/{r.json()['id']}", headers=auth).json()["to"] == "+15550100"
        assert requests.get(url + "/calls").status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "api.example.com"])
def test_a_non_loopback_host_without_a_token_is_refused(redis_prefix, host):
    with pytest.raises(ConfigError, match="API_TOKEN"):
        make_server(api_settings(redis_prefix, api_host=host, api_token=""))
    out = subprocess.run([sys.executable, "-m", "voiceagent.cli", "api"], env=_env(redis_prefix, API_HOST=host),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "API_TOKEN" in out.stderr, out.stderr


def test_loopback_without_a_token_and_an_open_host_with_one_are_allowed(redis_prefix):
    for host, token in (("127.0.0.1", ""), ("::1", ""), ("0.0.0.0", TOKEN)):
        server = make_server(api_settings(redis_prefix, api_host=host, api_token=token))
        server.close()
