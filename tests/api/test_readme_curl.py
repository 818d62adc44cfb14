"""The README's REST API examples, run as written against a live server (curl, or a replay of the
same commands with requests where curl is missing)."""
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from voiceagent.calls.inbox import CallStore

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks():
    return re.findall(r"<!-- README-CURL.*?-->\n```sh\n(.*?)```", README.read_text(), re.S)


def _block(i=0):
    blocks = _blocks()
    assert len(blocks) == 2, "the README's REST API sections lost a curl block (calls; queue, schedules, webhooks)"
    return blocks[i]


def _run(block, mode, env):
    """The block as a shell script (curl) or command by command (replay); curl's stdout lines."""
    if mode == "curl":
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=dict(os.environ, **env),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()
    for words in _commands(block):
        _replay(words, env)
    return []


def _commands(block):
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    assert words and words[0] == "curl", words[:3]
    cmds = []
    for w in words:
        if w == "curl":
            cmds.append([w])
        else:
            cmds[-1].append(w)
    return cmds


def _replay(words, env):
    """One curl command with requests: -X, -H, -d and the URL (the options the README uses)."""
    method, headers, data, url = None, {}, None, None
    it = iter(words[1:])
    for w in it:
        if w == "-X":
            method = next(it)
        elif w == "-H":
            k, _, v = next(it).partition(":")
            headers[k.strip()] = v.strip()
        elif w == "-d":
            data = next(it)
        elif w.startswith("-"):
            assert w in ("-fsS",), f"option the replay does not know: {w}"
        else:
            url = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], w)
    headers = {k: re.sub(r"\$(\w+)", lambda m: env[m.group(1)], v) for k, v in headers.items()}
    r = requests.request(method or ("POST" if data else "GET"), url, headers=headers, data=data)
    assert r.status_code < 400, (words, r.status_code, r.text)


@pytest.mark.parametrize("mode", ["curl", "replay"])
def test_the_readme_curl_examples_work_against_a_live_server(api, mode):
    if mode == "curl" and not shutil.which("curl"):
        pytest.skip("curl is not installed: the replay runs the same commands")
    call_id = api.http.post(api.url + "/calls", json={"to": "+15550100"}).json()["id"]
    store = CallStore(api.client.r, api.prefix)  # make it a live call with a worker, so "say" has a listener
    store.register({"id": call_id, "node": "fs1", "worker": "readme-worker", "direction": "outbound",
                    "state": "active"})
    store.heartbeat("readme-worker", {"calls": 1, "max_calls": 2, "room": 1}, ttl=30)
    env = {"API": api.url, "TOKEN": api.settings.api_token.get_secret_value(), "ID": call_id}
    lines = _run(_block(0), mode, env)
    if mode == "curl":
        assert json.loads(lines[0])["state"] == "queued"
    placed = api.client.r.get(api.client.keys.idempotency("appointment-4711"))
    assert placed, "the POST example placed no call"
    assert api.client.get(placed.decode()).request.choice.options[1].digit == "2"
    (say,) = api.client.r.lrange(api.client.keys.inbox("readme-worker"), 0, -1)
    assert json.loads(say)["command"]["text"] == "One moment please."
    assert api.client.get(call_id).outcome.value == "canceled"


def test_the_replay_understands_every_readme_command():
    cmds = _commands(_block(0))
    assert len(cmds) == 6 and all(w[0] == "curl" for w in cmds)
    assert len(_commands(_block(1))) == 4


@pytest.mark.parametrize("mode", ["curl", "replay"])
def test_the_readme_queue_schedule_and_webhook_examples_work(start_api, tmp_path, monkeypatch, mode):
    if mode == "curl" and not shutil.which("curl"):
        pytest.skip("curl is not installed: the replay runs the same commands")
    monkeypatch.setenv("README_HA_TOKEN", "ha-token-readme-0123456789")
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text("sources:\n  home:\n    kind: call\n    auth: {type: bearer, secret_env: README_HA_TOKEN}\n")
    api = start_api(webhooks_file=str(hooks))
    env = {"API": api.url, "TOKEN": api.settings.api_token.get_secret_value(), "HOOK_TOKEN": "ha-token-readme-0123456789"}
    lines = _run(_block(1), mode, env)
    if mode == "curl":
        assert json.loads(lines[0])["schedule"]["state"] == "active" and json.loads(lines[0])["next_runs"]
        assert json.loads(lines[2])["ok"] is True
    (sched,) = api.http.get(api.url + "/schedules").json()["schedules"]
    assert sched["when"]["every"] == "weekdays" and sched["call"]["tool"]["name"] == "get_datetime", sched
    assert sched["call"]["retry"]["no_answer"]["attempts"] == 2 and sched["next_due"]
    recs = api.client.list(limit=5)
    assert [r.request.message for r in recs] == ["The washing machine is done."], recs
    assert recs[0].state == "queued" and recs[0].priority == "high"
