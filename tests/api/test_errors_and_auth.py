"""Every error is the same JSON shape; the bearer token guards every endpoint except /health."""
import pytest
import requests

from .conftest import TOKEN

ENDPOINTS = [("POST", "/calls"), ("GET", "/calls"), ("GET", "/calls/x"), ("DELETE", "/calls/x"),
             ("POST", "/calls/x/say"), ("POST", "/calls/x/hangup"), ("POST", "/calls/x/transfer"),
             ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nowhere")]


def _is_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and isinstance(err["fields"], list)
    return err


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_a_missing_or_wrong_token_is_401_everywhere(api, method, path, auth):
    r = requests.request(method, api.url + path, headers={"Authorization": auth} if auth else {}, json={})
    _is_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_needs_no_token_and_the_right_token_opens_the_rest(api):
    assert requests.get(api.url + "/health").status_code == 200
    assert requests.get(api.url + "/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_unknown_routes_404_and_wrong_methods_405(api):
    _is_error(api.http.get(api.url + "/nowhere"), 404, "not_found")
    r = api.http.put(api.url + "/calls")
    _is_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_bad_json_is_400_a_non_object_422_and_a_non_json_type_415(api):
    _is_error(api.http.post(api.url + "/calls", data='{"to": ', headers={"Content-Type": "application/json"}),
              400, "bad_request")
    err = _is_error(api.http.post(api.url + "/calls", json=["+15550100"]), 422, "validation_failed")
    assert err["fields"][0]["field"] == "(body)"
    _is_error(api.http.post(api.url + "/calls", data="to=+15550100"), 415, "unsupported_media_type")
    _is_error(api.http.post(api.url + "/calls", data='{"to": "1"}', headers={"Content-Type": "text/plain"}),
              415, "unsupported_media_type")
    assert api.waiting() == 0


def test_a_body_over_the_limit_is_413_declared_or_chunked(start_api):
    api = start_api(api_max_body_bytes=2048)
    big = '{"to": "+15550100", "message": "' + "a" * 4000 + '"}'
    _is_error(api.http.post(api.url + "/calls", data=big, headers={"Content-Type": "application/json"}),
              413, "body_too_large")
    chunks = (part.encode() for part in (big[:1000], big[1000:]))
    _is_error(api.http.post(api.url + "/calls", data=chunks, headers={"Content-Type": "application/json"}),
              413, "body_too_large")
    ok = '{"to": "+15550100", "message": "' + "a" * 1500 + '"}'
    assert api.http.post(api.url + "/calls", data=ok, headers={"Content-Type": "application/json"}).status_code == 202
    assert api.waiting() == 1


def test_an_unexpected_error_is_a_json_500_without_a_traceback_logged_once(api, monkeypatch, caplog):
    def boom(*a, **kw):
        raise RuntimeError("secret internals /srv/app.py line 12")
    from voiceagent.jobs.dispatch import Dispatcher

    monkeypatch.setattr(Dispatcher, "submit", boom)
    with caplog.at_level("ERROR"):
        r = api.http.post(api.url + "/calls", json={"to": "+15550100"})
    err = _is_error(r, 500, "internal_error")
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info and "secret internals" in str(rec.exc_info[1])]
    assert len(logged) == 1, caplog.records
    assert err["fields"] == []


def test_health_reports_live_workers_and_pending_requests(api):
    from voiceagent.calls.inbox import CallStore

    api.http.post(api.url + "/calls", json={"to": "+15550100"})
    beat = {"calls": 2, "max_calls": 5, "room": 3, "draining": 0}
    CallStore(api.client.r, api.prefix).heartbeat("hw-1", beat, ttl=30)
    h = requests.get(api.url + "/health").json()
    assert h["status"] == "ok" and h["redis"] is True and h["queued"] == {"high": 1, "bulk": 0}
    assert [(w["id"], w["calls"], w["max_calls"], w["room"]) for w in h["workers"]] == [("hw-1", 2, 5, 3)]


def test_health_is_503_when_redis_is_unreachable(start_api):
    api = start_api(redis_url="redis://127.0.0.1:1/0", redis_socket_timeout=0.5)
    r = requests.get(api.url + "/health")
    assert r.status_code == 503 and r.json()["status"] == "down" and r.json()["redis"] is False
