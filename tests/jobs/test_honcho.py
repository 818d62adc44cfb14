"""``honcho -f Procfile.emulator start``: the whole system from one command, a call through it, a clean stop.

honcho runs as a real process with its own session; each Procfile process is a shell in a session (and
process group) of its own, so "no stragglers" is checked by process group over /proc, for honcho's group and
every process group it reported starting.  Ports are free ones passed through an env file (honcho's ``-e``,
as a user's ``.env``), everything on 127.0.0.1, Redis keys under the test's prefix: a running system on the
default ports is not touched.
"""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import redis
import requests
from honcho import environ

from tests.calls.redis_faults import free_port
from tests.fork_helpers import wait_until
from voiceagent.config import Settings, load_settings
from voiceagent.jobs.queues import ORDER, queue_name
from voiceagent.records.models import CallRecord

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "honcho-test-token-0123456789"
NAMES = {"voice", "web", "worker", "follow", "dashboard", "freeswitch"}


def _procfile(name: str) -> dict:
    return dict(environ.parse_procfile((ROOT / name).read_text()).processes)


def test_procfile_emulator_is_the_procfile_plus_an_emulated_switch():
    """honcho reads one Procfile, so Procfile.emulator repeats the Procfile's lines: none may drift."""
    main, emulated = _procfile("Procfile"), _procfile("Procfile.emulator")
    assert set(main) == NAMES - {"freeswitch"}
    assert {k: v for k, v in emulated.items() if k in main} == main
    assert set(emulated) == set(main) | {"freeswitch"}
    assert emulated["freeswitch"].startswith("voiceagent emulator serve --worker-env")


def test_env_example_names_real_settings_with_valid_values():
    values = environ.parse((ROOT / ".env.example").read_text())
    unknown = sorted(set(values) - {n.upper() for n in Settings.model_fields})
    assert not unknown, f".env.example sets variables voiceagent does not read: {unknown}"
    s = load_settings(**{k.lower(): v for k, v in values.items()})
    assert s.esl_endpoints() and s.dialog == "greeting"


def _session_groups(pgids):
    """Live (non-zombie) processes whose process group is one of ``pgids``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in pgids and state != "Z":
            out.append(int(d))
    return out


def _env(prefix, tmp_path):
    api, esl, fork, dash = (free_port() for _ in range(4))
    values = {"API_TOKEN": TOKEN, "API_HOST": "127.0.0.1", "API_PORT": api, "REDIS_URL": "redis://127.0.0.1:6379/0",
              "REDIS_PREFIX": prefix, "ESL_NODES": f"fs1=127.0.0.1:{esl}", "ESL_PASSWORD": "honcho-test-esl",
              "ORIGINATE_GATEWAY": "carrier", "FORK_HOST": "127.0.0.1", "FORK_PORT": fork, "DIALOG": "greeting",
              "DASHBOARD_HOST": "127.0.0.1", "DASHBOARD_PORT": dash, "PLAYBACK_DIR": tmp_path / "playback",
              "WORKER_HEARTBEAT_TTL": 10}
    env_file = tmp_path / "honcho.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    # the shell's own voiceagent settings must not leak in; the Procfile's `python` and `voiceagent` are
    # this interpreter's (a fresh clone's .venv in CI)
    settings = {n.upper() for n in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""), PYTHONPATH=str(ROOT),
               PYTHONUNBUFFERED="1")
    return env, env_file, values


def test_honcho_starts_the_whole_system_and_stops_it_with_sigterm(redis_prefix, tmp_path):
    env, env_file, values = _env(redis_prefix, tmp_path)
    api = f"http://127.0.0.1:{values['API_PORT']}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    log_path = tmp_path / "honcho.log"
    with open(log_path, "wb") as log:
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", "Procfile.emulator", "-e", str(env_file),
                                   "--no-colour", "start"], cwd=str(ROOT), env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    groups = {honcho.pid}

    def output():
        return log_path.read_text(errors="replace")

    def started():
        groups.update(int(p) for p in re.findall(r"\| \S+ started \(pid=(\d+)\)", output()))
        return groups

    def health():
        if honcho.poll() is not None:
            raise AssertionError("honcho exited during start-up:\n" + output()[-6000:])
        try:
            body = requests.get(api + "/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None
        return body if body["status"] == "ok" and [(n["name"], n["state"]) for n in body["nodes"]] == [
            ("fs1", "connected")] else None

    try:
        assert wait_until(health, timeout=30, step=0.2), "never healthy:\n" + output()[-6000:]
        assert set(re.findall(r"\| (\S+)\.1 started", output())) == NAMES, output()

        r = requests.post(api + "/calls", json={"to": "+15551230000", "message": "Hello from honcho"},
                          headers=auth, timeout=5)
        assert r.status_code == 202, r.text
        call_id = r.json()["id"]

        def ended():
            body = requests.get(f"{api}/calls/{call_id}", headers=auth, timeout=5).json()
            return body if body["state"] == "ended" else None

        assert wait_until(ended, timeout=30, step=0.2), "the call never ended:\n" + output()[-6000:]
        rec = CallRecord.model_validate(ended())
        assert rec.outcome.value == "answered", rec
        assert rec.turns and rec.turns[0].kind == "greeting" and rec.turns[0].heard, rec.turns
        assert [h.state for h in rec.history][:2] == ["queued", "requested"]  # through the RQ worker

        dash = f"http://127.0.0.1:{values['DASHBOARD_PORT']}"
        assert requests.get(dash + "/", timeout=5).status_code == 200
        job = requests.get(f"{dash}/0/data/job/dial-{call_id}.json", timeout=5)
        assert job.status_code == 200 and job.json()["status"] == "finished", job.text
        follower = re.search(r"following (\S+) as jobs-follower/", output())
        assert follower and follower.group(1) == f"{redis_prefix}:events", output()

        started()
        honcho.send_signal(signal.SIGTERM)
        honcho.wait(20)
        text = output()
        assert "sending SIGKILL" not in text, "a process needed SIGKILL after SIGTERM:\n" + text[-6000:]
        assert set(re.findall(r"\| (\S+)\.1 stopped", text)) == NAMES, text[-6000:]
        assert wait_until(lambda: not _session_groups(groups), timeout=10), \
            f"still running after honcho exited: {_session_groups(groups)}"
    finally:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)
            try:
                honcho.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for pgid in started():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if honcho.poll() is None:
            honcho.wait(5)
        _forget_rq_keys(redis_prefix)


def _forget_rq_keys(prefix):
    """RQ's own keys (rq:queue:<prefix>-high, rq:job:dial-<id>, ...) are outside the prefix the fixture cleans."""
    r = redis.Redis()
    names = [f"rq:queue:{queue_name(prefix, role)}" for role in ORDER]
    r.srem("rq:queues", *names)
    jobs = [key for q in names for key in r.lrange(q, 0, -1)]
    keys = list(r.scan_iter(f"rq:*{prefix}*")) + [b"rq:job:" + j for j in jobs]
    for record in r.scan_iter(f"{prefix}:record:*"):
        keys += list(r.scan_iter(f"rq:*dial-{record.decode().rsplit(':', 1)[1]}*"))
    if keys:
        r.delete(*keys)
