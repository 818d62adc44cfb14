"""The fork edge is closed by default: loopback bind, no half-configured auth, a warning when the
URL given to FreeSWITCH cannot reach a remote node."""
import logging
import os
import sys

import pytest
import redis

from tests.fork_helpers import run_isolated
from voiceagent.calls.fork_intake import advertised_url_warning
from voiceagent.config import ConfigError, load_settings


def test_the_fork_server_binds_loopback_by_default(monkeypatch):
    monkeypatch.delenv("FORK_HOST", raising=False)
    assert load_settings().fork_host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "voice1.example.net"])
def test_a_non_loopback_bind_without_auth_is_a_config_error_naming_fork_host(host):
    with pytest.raises(ConfigError) as exc:
        load_settings(fork_host=host)
    assert "FORK_HOST" in str(exc.value) and "FORK_ALLOW_INSECURE" in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_binds_need_no_auth(host):
    assert load_settings(fork_host=host).fork_host == host


def test_a_non_loopback_bind_is_allowed_with_auth_or_an_explicit_opt_out():
    assert load_settings(fork_host="0.0.0.0", fork_auth_user="fs", fork_auth_password="pw").fork_host == "0.0.0.0"
    assert load_settings(fork_host="0.0.0.0", fork_allow_insecure=True).fork_allow_insecure


@pytest.mark.parametrize("kw,var", [
    ({"fork_auth_password": "pw"}, "FORK_AUTH_USER"),           # would silently disable auth
    ({"fork_auth_user": "fs"}, "FORK_AUTH_PASSWORD"),           # an empty password
    ({"fork_auth_user": "fs", "fork_auth_password": ""}, "FORK_AUTH_PASSWORD"),
    ({"fork_auth_user": "f:s", "fork_auth_password": "pw"}, "FORK_AUTH_USER"),
])
def test_half_configured_fork_auth_is_rejected_naming_the_variable(kw, var):
    with pytest.raises(ConfigError) as exc:
        load_settings(**kw)
    assert f"{var}:" in str(exc.value)


def test_the_voice_command_refuses_to_start_open_to_the_network(tmp_path):
    env = dict(os.environ, FORK_HOST="0.0.0.0")
    env.pop("FORK_ALLOW_INSECURE", None)
    env.pop("FORK_AUTH_USER", None)
    rc, _, err = run_isolated([sys.executable, "-m", "voiceagent.cli", "voice"], timeout=30, env=env)
    assert rc == 2, err[-2000:]
    assert "FORK_HOST" in err


def test_a_loopback_fork_url_with_a_remote_node_is_warned_about():
    s = load_settings(esl_nodes="fs1=127.0.0.1:8021,fs2=10.1.2.3:8021")
    warning = advertised_url_warning(s, "ws://127.0.0.1:8765")
    assert warning and "fs2=10.1.2.3" in warning and "FORK_PUBLIC_URL" in warning
    assert advertised_url_warning(s, "ws://10.0.0.5:8765") is None
    assert advertised_url_warning(load_settings(), "ws://127.0.0.1:8765") is None


def test_the_worker_logs_that_warning_at_start(tmp_path, caplog):
    from voiceagent.calls.worker import VoiceWorker

    s = load_settings(esl_nodes="far=192.0.2.1:8021", fork_port=0, esl_connect_timeout=0.5,
                      redis_prefix="vatest-forkwarn", worker_id="forkwarn", playback_dir=tmp_path / "pb")
    caplog.set_level(logging.WARNING, logger="voiceagent.calls")
    w = VoiceWorker(s, redis_client=redis.Redis())
    w.start()
    try:
        lines = [r.getMessage() for r in caplog.records if "FORK_PUBLIC_URL" in r.getMessage()]
        assert lines and "far=192.0.2.1" in lines[0]
    finally:
        w.stop()
