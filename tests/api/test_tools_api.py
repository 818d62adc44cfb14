"""The tools resource over real HTTP and real Redis: the registry as loaded (with its plugin
problems), running a tool in the API process, saying its result into a live call, and calling
someone with a tool's result (the queued request carries the ToolRun)."""
import json
import os
import uuid

import pytest

from tests.api.test_calls_api import _live, _place
from voiceagent.dialog.tools import builtin_tools_dir

HERE = os.path.dirname(__file__)
PLUGINS = os.path.join(HERE, "..", "e2e", "tool_plugins")
BROKEN = os.path.join(HERE, "..", "dialog", "plugins", "broken")


@pytest.fixture
def tapi(start_api):
    return start_api(tools_dirs=f"{builtin_tools_dir()},{PLUGINS},{BROKEN}", tool_timeout=0.3)


def test_get_tools_lists_each_tool_with_schema_source_and_the_plugins_that_failed(tapi):
    r = tapi.http.get(tapi.url + "/tools")
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = {t["name"]: t for t in body["tools"]}
    assert {"get_datetime", "hang_up", "transfer_call", "weather_report", "crash_report"} <= set(by_name)
    weather = by_name["weather_report"]
    assert weather["description"] == "The weather in a city today."
    assert weather["parameters"]["type"] == "object" and weather["parameters"]["required"] == ["city"]
    assert weather["source"].endswith("briefing_tools.py") and weather["enabled"] is True
    assert by_name["transfer_call"]["enabled"] is False  # needs a profile's transfer targets
    problems = " ".join(body["problems"])
    assert "a_syntax_error.py failed to load" in problems and "SyntaxError" in problems, problems
    one = tapi.http.get(tapi.url + "/tools/weather_report")
    assert one.status_code == 200 and one.json() == weather
    missing = tapi.http.get(tapi.url + "/tools/no_such_tool")
    assert missing.status_code == 404 and "weather_report" in missing.json()["error"]["message"]


def test_execute_runs_the_tool_and_returns_its_result_and_speech(tapi):
    r = tapi.http.post(tapi.url + "/tools/weather_report/execute", json={"arguments": {"city": "Oslo"}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ok"] is True and out["result"] == {"summary": "In Oslo it is sunny and warm.", "temp_c": 20}
    assert out["speech"] == "In Oslo it is sunny and warm." and out["said_into"] is None
    dt = tapi.http.post(tapi.url + "/tools/get_datetime/execute", json={}).json()
    assert dt["ok"] and dt["result"]["timezone"] == "UTC" and "weekday:" in dt["speech"] and "iso" not in dt["speech"]


@pytest.mark.parametrize("body,field", [({"arguments": {}}, "arguments.city"),
                                        ({"arguments": {"city": ""}}, "arguments.city"),
                                        ({"arguments": {"city": 7}}, "arguments.city"),
                                        ({"arguments": [1]}, "arguments"),
                                        ({"arguments": {"city": "Oslo"}, "extra": 1}, "extra"),
                                        ({"call_id": ""}, "call_id")])
def test_bad_arguments_are_a_422_naming_the_field(tapi, body, field):
    r = tapi.http.post(tapi.url + "/tools/weather_report/execute", json=body)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()


def test_a_result_json_has_no_form_for_is_answered_as_text(tapi):
    r = tapi.http.post(tapi.url + "/tools/odd_report/execute", json={})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["speech"] == "All is well." and isinstance(r.json()["result"]["thing"], str)


def test_a_tool_that_raises_or_times_out_is_a_failed_result_not_a_5xx(tapi):
    crash = tapi.http.post(tapi.url + "/tools/crash_report/execute", json={})
    assert crash.status_code == 200 and crash.json()["ok"] is False
    assert "backend exploded" in crash.json()["error"] and crash.json()["speech"] == ""
    slow = tapi.http.post(tapi.url + "/tools/slow_report/execute", json={})
    assert slow.status_code == 200 and slow.json()["ok"] is False and "timed out" in slow.json()["error"]


def test_tools_that_need_a_live_call_are_refused_instead_of_acting(tapi):
    hang = tapi.http.post(tapi.url + "/tools/hang_up/execute", json={})
    assert hang.status_code == 409 and "hang up" in hang.json()["error"]["message"], hang.text
    transfer = tapi.http.post(tapi.url + "/tools/transfer_call/execute", json={"arguments": {"target": "sales"}})
    assert transfer.status_code == 409 and "profile" in transfer.json()["error"]["message"], transfer.text
    assert tapi.http.post(tapi.url + "/tools/nope/execute", json={}).status_code == 404


def test_execute_with_a_call_id_says_the_result_into_that_call(tapi):
    call_id = _place(tapi).json()["id"]
    _live(tapi, call_id)
    r = tapi.http.post(tapi.url + "/tools/weather_report/execute",
                       json={"arguments": {"city": "Rome"}, "call_id": call_id})
    assert r.status_code == 200 and r.json()["said_into"] == call_id, r.text
    (raw,) = tapi.client.r.lrange(tapi.client.keys.inbox("api-test-worker"), 0, -1)
    msg = json.loads(raw)
    assert msg["call_id"] == call_id and msg["command"]["type"] == "say"
    assert msg["command"]["text"] == "In Rome it is sunny and warm."
    gone = tapi.http.post(tapi.url + "/tools/weather_report/execute",
                          json={"arguments": {"city": "Rome"}, "call_id": str(uuid.uuid4())})
    assert gone.status_code == 404 and gone.json()["error"]["fields"][0]["field"] == "call_id"
    orphan = _place(tapi).json()["id"]
    _live(tapi, orphan, worker="dead-worker", alive=False)
    dead = tapi.http.post(tapi.url + "/tools/weather_report/execute", json={"arguments": {"city": "Rome"},
                                                                             "call_id": orphan})
    assert dead.status_code == 409 and "not said" in dead.json()["error"]["message"]


def test_call_with_a_tool_queues_a_request_carrying_the_tool_run(tapi):
    r = tapi.http.post(tapi.url + "/tools/weather_report/call",
                       json={"to": "+15550100", "caller_id_name": "Weather", "ring_timeout": 20,
                             "arguments": {"city": "Oslo"}, "before": "Good morning.", "after": "Bye."})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/calls/{r.json()['id']}" and r.json()["state"] == "queued"
    rec = tapi.client.get(r.json()["id"])
    req = rec.request
    assert req.to == "+15550100" and req.caller_id_name == "Weather" and req.ring_timeout == 20
    assert req.tool.model_dump() == {"name": "weather_report", "arguments": {"city": "Oslo"},
                                     "before": "Good morning.", "after": "Bye."}
    assert tapi.waiting() == 1


@pytest.mark.parametrize("name,body,field", [
    ("nope", {"to": "+15550100"}, "name"),
    ("weather_report", {"to": "+15550100"}, "arguments.city"),
    ("weather_report", {"to": "+15550100", "arguments": {"city": "x" * 41}}, "arguments.city"),
    ("weather_report", {"arguments": {"city": "Oslo"}}, "to"),
    ("weather_report", {"to": "&park()", "arguments": {"city": "Oslo"}}, "to"),
    ("weather_report", {"to": "+15550100", "arguments": {"city": "Oslo"}, "before": "x" * 1001}, "before"),
    ("weather_report", {"to": "+15550100", "arguments": {"city": "Oslo"}, "tool": {}}, "tool"),
])
def test_an_unknown_tool_or_bad_arguments_is_a_422_before_anything_is_queued(tapi, name, body, field):
    r = tapi.http.post(f"{tapi.url}/tools/{name}/call", json=body)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()
    assert tapi.waiting() == 0


def test_the_tools_operations_are_in_the_openapi_document_and_need_the_token(tapi):
    doc = tapi.http.get(tapi.url + "/openapi.json").json()
    for path, method in (("/tools", "get"), ("/tools/{name}", "get"), ("/tools/{name}/execute", "post"),
                         ("/tools/{name}/call", "post")):
        assert method in doc["paths"][path], path
    assert "ToolCall" in doc["components"]["schemas"] and "ToolExecution" in doc["components"]["schemas"]
    import requests
    assert requests.get(tapi.url + "/tools").status_code == 401
