"""GET /health per FreeSWITCH node: each live worker's heartbeat carries its ESL links' states
(connected / reconnecting / down, since when) and /health folds them per node, so a node no live
worker is connected to is reported — against the emulator and real workers."""
import json

from tests.calls.conftest import ESL_PASSWORD, set_fork_url
from tests.calls.redis_faults import free_port
from tests.fork_helpers import wait_until
from voiceagent.calls.inbox import CallStore
from voiceagent.calls.worker import VoiceWorker
from voiceagent.config import load_settings


def _health(api):
    r = api.http.get(api.url + "/health")
    assert r.status_code == 200, r.text
    return r.json()


def _node(api, name):
    return next((n for n in _health(api)["nodes"] if n["name"] == name), None)


def test_a_node_is_connected_then_reconnecting_when_its_switch_goes_away(api, make_emulator, make_worker):
    emu = make_emulator(switchname="fs1")
    w = make_worker([emu], worker_heartbeat_seconds=0.1, esl_reconnect_max_delay=0.5)
    assert wait_until(lambda: (_node(api, "fs1") or {}).get("state") == "connected", 10), _health(api)
    node = _node(api, "fs1")
    assert node["workers"] == {w.worker_id: "connected"}
    mine = next(x for x in _health(api)["workers"] if x["id"] == w.worker_id)
    (link,) = mine["nodes"]
    assert link["node"] == "fs1" and link["state"] == "connected" and link["since"] == node["since"]
    emu.stop()
    assert wait_until(lambda: (_node(api, "fs1") or {}).get("state") == "reconnecting", 10), _health(api)
    lost = _node(api, "fs1")
    assert lost["workers"] == {w.worker_id: "reconnecting"} and lost["since"] >= node["since"]


def test_a_node_no_worker_ever_reached_is_down_and_one_reached_by_any_is_connected(api, make_emulator, make_worker):
    emu = make_emulator(switchname="fs1")
    w1 = make_worker([emu], worker_heartbeat_seconds=0.1)
    s = load_settings(esl_nodes=f"fs1=127.0.0.1:{emu.port},fs9=127.0.0.1:{free_port()}", esl_password=ESL_PASSWORD,
                      fork_host="127.0.0.1", fork_port=0, redis_prefix=api.prefix, worker_id="w-two-nodes",
                      worker_heartbeat_seconds=0.1, admission_max_loop_lag_ms=0)
    w2 = VoiceWorker(s)
    w2.start()
    try:
        set_fork_url(emu, w1.fork_url_base)
        assert wait_until(lambda: (_node(api, "fs9") or {}).get("workers") == {"w-two-nodes": "down"}
                          and (_node(api, "fs1") or {}).get("workers", {}).get("w-two-nodes") == "connected", 10), \
            _health(api)
        fs9, fs1 = _node(api, "fs9"), _node(api, "fs1")
        assert fs9["state"] == "down"  # nobody is connected to it: reported, not left out
        assert fs1["state"] == "connected" and fs1["workers"] == {w1.worker_id: "connected",
                                                                 "w-two-nodes": "connected"}
    finally:
        w2.stop()


def test_heartbeats_without_or_with_unreadable_node_states_are_not_an_error(api):
    store = CallStore(api.client.r, api.prefix)
    store.heartbeat("old-version", {"calls": 0, "max_calls": 2, "room": 2}, ttl=30)
    store.heartbeat("garbled", {"calls": 0, "max_calls": 2, "room": 2, "nodes": "{not json"}, ttl=30)
    store.heartbeat("odd-state", {"calls": 0, "max_calls": 2, "room": 2,
                                  "nodes": json.dumps({"fs1": {"state": "melting", "since": 1}})}, ttl=30)
    store.heartbeat("good", {"calls": 0, "max_calls": 2, "room": 2,
                             "nodes": json.dumps({"fs2": {"state": "reconnecting", "since": 5.0}})}, ttl=30)
    body = _health(api)
    assert {w["id"] for w in body["workers"]} == {"old-version", "garbled", "odd-state", "good"}
    assert body["nodes"] == [{"name": "fs2", "state": "reconnecting", "since": 5.0,
                              "workers": {"good": "reconnecting"}}]
