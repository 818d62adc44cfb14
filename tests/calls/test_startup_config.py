"""A bad setting stops ``voiceagent voice`` at start-up: exit 2, one short line naming the variable.

Each case runs the real command as a subprocess (as tests/calls/test_drain.py does).  Before,
about half of these gave a 34-45 line traceback, and some started "ready" and failed later
(every call, or forever in the log without naming the setting).  Each case is one Python
start-up (~0.7 s): the checks run before any model is loaded.
"""
import os
import socket
import subprocess
import sys
import uuid
import wave

import pytest
import redis

from voiceagent.config import load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: id -> (environment overrides, the variable the error must name[, one it must not name]);
#: "{held}" is a port in use, "{closed}" a port nobody listens on, "{d}" a directory of prepared files.
CASES = {
    "fork-port-in-use": ({"FORK_PORT": "{held}"}, "FORK_PORT", "METRICS_PORT"),
    "fork-host-unresolvable": ({"FORK_HOST": "no-such-host.invalid"}, "FORK_HOST"),
    "redis-url-not-a-url": ({"REDIS_URL": "notaurl"}, "REDIS_URL"),
    "redis-on-a-closed-port": ({"REDIS_URL": "redis://127.0.0.1:{closed}/0"}, "REDIS_URL"),
    "metrics-port-in-use": ({"METRICS_PORT": "{held}"}, "METRICS_PORT", "FORK_PORT"),
    "profiles-invalid-yaml": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}/bad.yaml"}, "PROFILES_FILE"),
    "profiles-a-directory": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}"}, "PROFILES_FILE"),
    "profiles-not-text": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}/binary.yaml"}, "PROFILES_FILE"),
    "profiles-unreadable": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}/secret.yaml"}, "PROFILES_FILE"),
    "profiles-wrong-schema": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}/schema.yaml"}, "PROFILES_FILE"),
    "profiles-missing": ({"DIALOG": "conversation", "PROFILES_FILE": "{d}/nope.yaml"}, "PROFILES_FILE"),
    "phrases-invalid-json": ({"DIALOG": "conversation", "PHRASES_FILE": "{d}/bad.json"}, "PHRASES_FILE"),
    "tools-dir-missing": ({"DIALOG": "conversation", "TOOLS_DIRS": "{d}/no-tools"}, "TOOLS_DIRS"),
    "esl-port-out-of-range": ({"ESL_NODES": "fs1=127.0.0.1:99999"}, "ESL_NODES"),
    "esl-port-0": ({"ESL_NODES": "fs1=127.0.0.1:0"}, "ESL_NODES"),
    "esl-duplicate-node-names": ({"ESL_NODES": "fs1=127.0.0.1:8021,fs1=127.0.0.1:8022"}, "ESL_NODES"),
    "esl-password-empty": ({"ESL_PASSWORD": ""}, "ESL_PASSWORD"),
    "greeting-file-missing": ({"GREETING_FILE": "{d}/nope.wav"}, "GREETING_FILE"),
    "greeting-file-not-a-wav": ({"GREETING_FILE": "{d}/bad.json"}, "GREETING_FILE"),
    "greeting-file-stereo": ({"GREETING_FILE": "{d}/stereo.wav"}, "GREETING_FILE"),
    "pause-not-below-end-of-turn": ({"PAUSE_MS": "600", "END_OF_TURN_MS": "600"}, "PAUSE_MS"),
    "fork-public-url-not-a-url": ({"FORK_PUBLIC_URL": "not a url"}, "FORK_PUBLIC_URL"),
    "llm-base-url-not-a-url": ({"LLM_BASE_URL": "not a url"}, "LLM_BASE_URL"),
    "playback-dir-not-creatable": ({"PLAYBACK_DIR": "{d}/bad.json/pb"}, "PLAYBACK_DIR"),
    "stt-remote-without-url": ({"DIALOG": "conversation", "STT_BACKEND": "remote", "STT_URL": ""}, "STT_URL"),
    "tts-remote-without-url": ({"DIALOG": "conversation", "TTS_ENGINE": "remote", "TTS_URL": ""}, "TTS_URL"),
    "stt-url-not-a-url": ({"STT_URL": "gpu1:8090"}, "STT_URL"),
}


def _prepare(d) -> None:
    (d / "bad.yaml").write_text("profiles: [\n  - name: x\n bad: : :\n")
    (d / "binary.yaml").write_bytes(b"\xff\xfe\x00profiles")
    (d / "secret.yaml").write_text("profiles: []\n")
    os.chmod(d / "secret.yaml", 0)
    (d / "schema.yaml").write_text("profiles:\n  - nme: front desk\n    greeting: 3\n")
    (d / "bad.json").write_text("{not json")
    with wave.open(str(d / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 1600)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Prepared files, a port in use, a closed port and a Redis prefix, shared by the cases."""
    d = tmp_path_factory.mktemp("startup")
    _prepare(d)
    held = socket.create_server(("127.0.0.1", 0))
    subs = {"{held}": str(held.getsockname()[1]), "{closed}": str(_free_port()), "{d}": str(d)}
    prefix = f"vatest-{uuid.uuid4().hex[:8]}"
    base = {"ESL_NODES": "fs1=127.0.0.1:1", "ESL_PASSWORD": "test-secret", "DIALOG": "greeting",
            "FORK_HOST": "127.0.0.1", "FORK_PORT": "0", "METRICS_PORT": "0", "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_PREFIX": prefix, "PLAYBACK_DIR": str(d / "playback"), "LOG_FORMAT": "json",
            "WORKER_ID": f"startup-{prefix}"}
    yield base, subs
    held.close()
    os.chmod(d / "secret.yaml", 0o600)
    r = redis.Redis()
    keys = list(r.scan_iter(f"{prefix}:*"))  # only if a worker got as far as its heartbeat
    if keys:
        r.delete(*keys)


def _run_voice(env, timeout=15.0):
    """``voiceagent voice`` with ``env``: (exit status or None if it kept running, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # it started instead of refusing
        proc.kill()
        _, err = proc.communicate()
        return None, err.decode("utf-8", "replace")
    return proc.returncode, err.decode("utf-8", "replace")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_setting_is_one_line_naming_the_variable_and_exit_2(case, setup):
    if case == "profiles-unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file ('profiles-not-text' covers an unreadable file)")
    base, subs = setup
    env = dict(os.environ, **base)
    for key, value in CASES[case][0].items():
        for k, v in subs.items():
            value = value.replace(k, v)
        env[key] = value
    rc, err = _run_voice(env)
    var, *not_named = CASES[case][1:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc}: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    assert 1 <= len(lines) <= 3, err[-2000:]
    assert var in lines[0], err
    assert not any(other in lines[0] for other in not_named), f"the error should name {var} only: {err}"


def test_port_0_is_still_a_placeholder_for_demo_and_bench():
    """demo.py and bench/latency.py pass ESL_NODES fs1=127.0.0.1:0 and fill the port in later."""
    s = load_settings(esl_nodes="fs1=127.0.0.1:0", esl_password="pw")
    assert s.esl_endpoints() == [("fs1", "127.0.0.1", 0)]


def test_config_masks_credentials_inside_urls():
    s = load_settings(esl_password="pw", redis_url="redis://admin:r3dis-pw@10.0.0.9:6379/0?password=q-pw&db=1",
                      llm_base_url="https://bob:llm-pw@llm.example/v1", fork_public_url="wss://fs:fork-pw@10.0.0.5:8765",
                      llm_api_key="sk-key-pw")
    shown = s.masked()
    text = "\n".join(f"{k}={v}" for k, v in shown.items())
    for secret in ("r3dis-pw", "q-pw", "llm-pw", "fork-pw", "sk-key-pw", "admin", "bob"):
        assert secret not in text, secret
    assert shown["REDIS_URL"].startswith("redis://***@10.0.0.9:6379/0") and "db=1" in shown["REDIS_URL"]
    assert shown["LLM_BASE_URL"] == "https://***@llm.example/v1"
    assert shown["FORK_PUBLIC_URL"] == "wss://***@10.0.0.5:8765"
