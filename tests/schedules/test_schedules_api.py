"""The /schedules API against a real server and Redis: create, read, page, edit, delete; errors."""
import time
from datetime import datetime, timezone

import pytest
import redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from voiceagent.jobs.queues import queue_name

WEATHER = {"name": "weekday weather", "when": {"every": "weekdays", "time": "07:00"}, "timezone": "Europe/Berlin",
           "call": {"to": "+15550100", "tool": {"name": "get_weather", "arguments": {"city": "Berlin"},
                                                "before": "Good morning.", "after": "Have a nice day."}}}


def job_ids(api):
    reg = ScheduledJobRegistry(queue_name(api.prefix, "schedules"), connection=redis.Redis())
    return set(reg.get_job_ids())


def job_id(api, sched):
    return f"{api.prefix}-schedule-{sched['id']}-{sched['next_due']}"


def test_create_a_weekday_weather_call_then_read_list_and_delete_it(api):
    r = api.http.post(api.url + "/schedules", json=WEATHER)
    assert r.status_code == 201, r.text
    got = r.json()
    sched = got["schedule"]
    assert r.headers["Location"] == f"/schedules/{sched['id']}"
    assert sched["state"] == "active" and sched["call"]["tool"]["name"] == "get_weather"
    assert len(got["next_runs"]) == 5 and all("T07:00:00+0" in t for t in got["next_runs"])
    assert job_ids(api) == {job_id(api, sched)}  # the first run is armed, with its deterministic id
    view = api.http.get(f"{api.url}/schedules/{sched['id']}", params={"next": 8}).json()
    assert len(view["next_runs"]) == 8 and view["runs"] == [] and view["schedule"]["id"] == sched["id"]
    assert api.http.get(api.url + "/schedules").json()["schedules"][0]["id"] == sched["id"]
    assert api.http.delete(f"{api.url}/schedules/{sched['id']}").status_code == 204
    assert job_ids(api) == set()
    assert not Job.exists(job_id(api, sched), connection=redis.Redis())  # cancelled: never fires
    assert api.http.get(f"{api.url}/schedules/{sched['id']}").status_code == 404


def test_a_one_time_reminder_with_a_choice_question(api):
    body = {"name": "appointment reminder", "when": {"at": "2099-05-04T10:00:00+02:00"},
            "call": {"to": "+15550123", "message": "Hello Mrs. Smith, this is a reminder of your appointment "
                     "tomorrow at 10.", "choice": {"question": "Will you come? Say yes or press 1, no or press 2.",
                                                   "options": [{"value": "yes", "digit": "1"},
                                                               {"value": "no", "digit": "2"}]}}}
    r = api.http.post(api.url + "/schedules", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["next_runs"] == ["2099-05-04T08:00:00+00:00"]
    assert r.json()["schedule"]["next_due"] == datetime(2099, 5, 4, 8, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("change,field", [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": None}, "timezone"),
    ({"when": {"cron": "61 7 * * *"}}, "when.cron"),
    ({"when": {"cron": "0 7 * *"}}, "when.cron"),
    ({"when": {"every": "weekdays"}}, "when.time"),
    ({"when": {"every": "weekdays", "time": "7am"}}, "when.time"),
    ({"when": {"at": "2099-01-01T10:00:00+01:00", "in_seconds": 60}}, "when.in_seconds"),
    ({"when": {"at": "2099-01-01T10:00:00"}}, "when.at"),
    ({"when": {"at": "2020-01-01T10:00:00+01:00"}, "timezone": None}, "when.at"),
    ({"when": {}}, "when"),
    ({"until": "2020-01-01"}, "until"),
    ({"max_runs": 0}, "max_runs"),
    ({"call": {"to": "0900 call me"}}, "call.to"),
    ({"call": {"to": "+15550100", "idempotency_key": "mine"}}, "call"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_input_is_a_422_naming_the_field(api, change, field):
    r = api.http.post(api.url + "/schedules", json={**WEATHER, **change})
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()
    assert job_ids(api) == set()


def test_the_dial_policy_applies_when_the_schedule_is_created(start_api):
    api = start_api(dial_allowed_patterns=r"\+1555.*")
    r = api.http.post(api.url + "/schedules", json={**WEATHER, "call": {"to": "+4930123456"}})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "call.to", r.text
    assert api.http.get(api.url + "/schedules").json()["schedules"] == []


def test_pause_resume_and_edit_rearm_the_next_run(api):
    sched = api.http.post(api.url + "/schedules", json=WEATHER).json()["schedule"]
    url = f"{api.url}/schedules/{sched['id']}"
    r = api.http.patch(url, json={"paused": True})
    assert r.status_code == 200 and r.json()["schedule"]["state"] == "paused" and r.json()["next_runs"] == []
    assert job_ids(api) == set()
    r = api.http.patch(url, json={"paused": False})
    assert r.json()["schedule"]["state"] == "active" and job_ids(api) == {job_id(api, r.json()["schedule"])}
    r = api.http.patch(url, json={"when": {"cron": "30 18 * * *"}, "name": "evening"})
    edited = r.json()["schedule"]
    assert edited["name"] == "evening" and all("T18:30:00" in t for t in r.json()["next_runs"])
    assert job_ids(api) == {job_id(api, edited)}  # the old 07:00 job is gone
    bad = api.http.patch(url, json={"timezone": "Nowhere/Land"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "timezone"
    bad = api.http.patch(url, json={"when": None})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "when"


def test_paging_walks_every_schedule_once(api):
    ids = [api.http.post(api.url + "/schedules", json={**WEATHER, "name": f"s{i}"}).json()["schedule"]["id"]
           for i in range(5)]
    seen, cursor = [], None
    for _ in range(5):
        page = api.http.get(api.url + "/schedules", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [s["id"] for s in page.json()["schedules"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert api.http.get(api.url + "/schedules", params={"cursor": "junk"}).status_code == 422


def test_401_without_the_token_and_404_for_unknown_ids(api):
    plain = api.http.__class__()
    assert plain.get(api.url + "/schedules").status_code == 401
    assert plain.post(api.url + "/schedules", json=WEATHER).status_code == 401
    for method in ("get", "patch", "delete"):
        r = getattr(api.http, method)(api.url + "/schedules/nope", json={} if method == "patch" else None)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, r.text)


def test_openapi_documents_the_schedules(api):
    doc = api.http.get(api.url + "/openapi.json").json()
    assert set(doc["paths"]["/schedules"]) == {"get", "post"}
    assert set(doc["paths"]["/schedules/{schedule_id}"]) == {"get", "patch", "delete"}
    assert "When" in doc["components"]["schemas"] and "ScheduleRun" in doc["components"]["schemas"]
    assert time.time() > 0
