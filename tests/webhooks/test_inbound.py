"""Webhooks in: real Grafana, Alertmanager and Home Assistant payloads place the right calls."""
import copy
import hashlib
import hmac
import json

import requests

from tests.webhooks.conftest import sample

BEARER = "grafana-bearer-secret-42"
HMAC_KEY = "alertmanager-hmac-secret-99"

SOURCES = {
    "oncall": {"kind": "grafana", "auth": {"type": "bearer", "secret": BEARER},
               "to": ["+15551230001", "+15551230009"], "profile": "default",
               "message": "{{ commonLabels.severity }} alert {{ alert.labels.alertname }} on "
                          "{{ alert.labels.instance }}: {{ alert.annotations.summary }}. {{ others }}"},
    "payments": {"kind": "alertmanager", "auth": {"type": "hmac", "secret": HMAC_KEY, "header": "X-Signature"},
                 "to": ["+15551230004"], "priority": "high"},
    "payments-resolved": {"kind": "alertmanager", "auth": {"type": "bearer", "secret": BEARER},
                          "to": ["+15551230004"], "call_resolved": True},
    "team-label": {"kind": "alertmanager", "auth": {"type": "bearer", "secret": BEARER}, "to": ["+15551230004"],
                   "message": "Alert for team {{ alert.labels.squad }}"},
    "home": {"kind": "call", "auth": {"type": "bearer", "secret": BEARER}},
    "shop": {"kind": "call", "auth": {"type": "bearer", "secret": BEARER}, "to": ["{{ order.customer.phone }}"],
             "message": "Hello {{ order.customer.name }}, your order {{ order.id }} is delayed."},
}


def bearer(token=BEARER):
    return {"Authorization": f"Bearer {token}"}


def signed(body, key=HMAC_KEY):
    return {"X-Signature": "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def test_a_grafana_alert_calls_each_number_and_reads_the_alert(webhook_api):
    app = webhook_api(SOURCES)
    # no API token: /webhooks/* use the source's own auth
    r = requests.post(app.url + "/webhooks/grafana/oncall", json=sample("grafana_firing.json"), headers=bearer())
    assert r.status_code == 202, r.text
    ids = r.json()["ids"]
    assert len(ids) == 2
    recs = [app.client.get(i) for i in ids]
    assert sorted(rec.to for rec in recs) == ["+15551230001", "+15551230009"]
    assert {rec.request.message for rec in recs} == {
        "critical alert DiskAlmostFull on db-2: Disk on db-2 is 97 percent full. 1 more alert is firing."}
    assert all(rec.profile == "default" for rec in recs)


def test_a_wrong_or_missing_token_is_401_and_calls_nobody(webhook_api):
    app = webhook_api(SOURCES)
    for headers in (bearer("nope-not-the-token-at-all"), {}, {"Authorization": f"Bearer {BEARER}x"}):
        r = requests.post(app.url + "/webhooks/grafana/oncall", json=sample("grafana_firing.json"), headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert app.client.list() == []


def test_an_alertmanager_group_signed_with_hmac_calls_once_however_often_it_is_resent(webhook_api):
    app = webhook_api(SOURCES)
    body = json.dumps(sample("alertmanager_firing.json")).encode()
    first = requests.post(app.url + "/webhooks/alertmanager/payments", data=body, headers=signed(body))
    assert first.status_code == 202, first.text
    (call_id,) = first.json()["ids"]
    rec = app.client.get(call_id)
    assert rec.to == "+15551230004"
    assert rec.request.message == ("Alert CheckoutErrorRateHigh is firing. "
                                   "Checkout is failing for more than 5 percent of requests")
    # repeat_interval re-sends the same group (Alertmanager re-serialises it: key order differs)
    again = json.dumps(sample("alertmanager_firing.json"), sort_keys=True).encode()
    for _ in range(2):
        r = requests.post(app.url + "/webhooks/alertmanager/payments", data=again, headers=signed(again))
        assert r.status_code == 200 and r.json() == {"source": "payments", "ids": [call_id], "duplicate": True,
                                                     "ignored": ""}
    assert [c.id for c in app.client.list()] == [call_id]
    # a new alert in the group is a new notification: it calls
    more = sample("alertmanager_firing.json")
    more["alerts"].append({**copy.deepcopy(more["alerts"][0]), "fingerprint": "0000aaaa1111bbbb"})
    body3 = json.dumps(more).encode()
    r = requests.post(app.url + "/webhooks/alertmanager/payments", data=body3, headers=signed(body3))
    assert r.status_code == 202 and r.json()["ids"] != [call_id]


def test_a_bad_hmac_signature_is_401(webhook_api):
    app = webhook_api(SOURCES)
    body = json.dumps(sample("alertmanager_firing.json")).encode()
    tampered = body.replace(b"payments", b"paymentz")
    for headers in (signed(tampered), signed(body, key="some-other-secret-value"),
                    {"Content-Type": "application/json"}):
        r = requests.post(app.url + "/webhooks/alertmanager/payments", data=body, headers=headers)
        assert r.status_code == 401, r.text
    assert app.client.list() == []


def test_resolved_notifications_call_only_when_the_source_asks(webhook_api):
    app = webhook_api(SOURCES)
    resolved = json.dumps(sample("alertmanager_resolved.json")).encode()
    r = requests.post(app.url + "/webhooks/alertmanager/payments", data=resolved, headers=signed(resolved))
    assert r.status_code == 200 and r.json()["ids"] == [] and "resolved" in r.json()["ignored"]
    assert app.client.list() == []
    r = requests.post(app.url + "/webhooks/alertmanager/payments-resolved", json=sample("alertmanager_resolved.json"),
                      headers=bearer())
    assert r.status_code == 202
    assert app.client.get(r.json()["ids"][0]).request.message.startswith("Alert CheckoutErrorRateHigh is resolved.")


def test_a_payload_that_makes_no_call_is_422_naming_what_is_missing(webhook_api):
    app = webhook_api(SOURCES)
    empty = {**sample("alertmanager_firing.json"), "alerts": []}
    r = requests.post(app.url + "/webhooks/alertmanager/payments-resolved", json=empty, headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "alerts"
    r = requests.post(app.url + "/webhooks/alertmanager/team-label", json=sample("alertmanager_firing.json"),
                      headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "alert.labels.squad"
    r = requests.post(app.url + "/webhooks/call/home", json={"message": "hello"}, headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "to"
    r = requests.post(app.url + "/webhooks/call/home", json={"to": "+15551230002"}, headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "message"
    r = requests.post(app.url + "/webhooks/call/shop", json={"order": {"id": "A-1", "customer": {"name": "X"}}},
                      headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "order.customer.phone"
    r = requests.post(app.url + "/webhooks/alertmanager/payments-resolved", json={"status": "burning", "alerts": []},
                      headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "status"
    assert app.client.list() == []


def test_home_assistant_and_n8n_json_place_the_calls_they_describe(webhook_api):
    app = webhook_api(SOURCES)
    r = requests.post(app.url + "/webhooks/call/home", json=sample("homeassistant_rest_command.json"),
                      headers=bearer())
    assert r.status_code == 202, r.text
    rec = app.client.get(r.json()["ids"][0])
    assert (rec.to, rec.request.message) == ("+15551230002", "The garage door has been open for 30 minutes.")
    r = requests.post(app.url + "/webhooks/call/shop", json=sample("n8n_order.json"), headers=bearer())
    assert r.status_code == 202, r.text
    rec = app.client.get(r.json()["ids"][0])
    assert (rec.to, rec.request.message) == ("+15551230003", "Hello Dana, your order A-1043 is delayed.")
    tool = {"to": "+15551230002", "tool": {"name": "get_weather", "arguments": {"city": "Oslo"}, "before": "Morning."}}
    r = requests.post(app.url + "/webhooks/call/home", json=tool, headers={**bearer(), "Idempotency-Key": "ha-77"})
    assert r.status_code == 202
    rec = app.client.get(r.json()["ids"][0])
    assert rec.request.tool.name == "get_weather" and rec.request.message is None
    again = requests.post(app.url + "/webhooks/call/home", json=tool, headers={**bearer(), "Idempotency-Key": "ha-77"})
    assert again.status_code == 200 and again.json()["ids"] == r.json()["ids"]


def test_unknown_sources_are_404_and_refused_numbers_422(webhook_api):
    app = webhook_api(SOURCES, dial_allow_premium=False)
    assert requests.post(app.url + "/webhooks/grafana/nobody", json={}, headers=bearer()).status_code == 404
    # a source exists only under its own kind
    r = requests.post(app.url + "/webhooks/call/oncall", json=sample("homeassistant_rest_command.json"),
                      headers=bearer())
    assert r.status_code == 404
    r = requests.post(app.url + "/webhooks/call/home", json={"to": "+19005551234", "message": "hi"}, headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "to"
    assert app.client.list() == []
    # a refused call did not count as delivered: nothing to dedup against
    doc = requests.get(app.url + "/openapi.json", headers={"Authorization": "Bearer test-api-token-5f1c"}).json()
    for path in ("/webhooks/grafana/{source}", "/webhooks/alertmanager/{source}", "/webhooks/call/{source}"):
        assert doc["paths"][path]["post"]["security"] == []


def test_the_generic_endpoint_takes_the_api_token_and_templates_the_message_from_the_payload(webhook_api):
    app = webhook_api({})  # POST /webhooks/call needs no WEBHOOKS_FILE entry: the API token authenticates it
    body = {"to": "+15551230005", "order": {"id": "A-7", "customer": {"name": "Lee"}},
            "message": "Hello {{ order.customer.name }}, order {{ order.id }} has shipped."}
    assert requests.post(app.url + "/webhooks/call", json=body).status_code == 401
    assert requests.post(app.url + "/webhooks/call", json=body, headers=bearer()).status_code == 401  # a source's
    r = app.api.post(app.url + "/webhooks/call", json=body)
    assert r.status_code == 202, r.text
    rec = app.client.get(r.json()["ids"][0])
    assert (rec.to, rec.request.message, rec.state) == ("+15551230005", "Hello Lee, order A-7 has shipped.", "queued")
    r = app.api.post(app.url + "/webhooks/call", json={**body, "message": "Hi {{ order.total }}"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "order.total", r.text
    r = app.api.post(app.url + "/webhooks/call", json={"message": "Nobody to call"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "to", r.text
