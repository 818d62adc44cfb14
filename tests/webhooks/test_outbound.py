"""Webhooks out: status events become signed deliveries by a real RQ worker to a real receiver."""
import json
import uuid
from ipaddress import ip_address

import pytest
import redis
import requests

from tests.webhooks.conftest import SECRET, TOKEN
from voiceagent.jobs.queues import Queues
from voiceagent.records.client import CallClient
from voiceagent.records.events import CallDialing
from voiceagent.records.models import CallRequest
from voiceagent.webhooks import signing
from voiceagent.webhooks.delivery import deliver
from voiceagent.webhooks.guard import refusal
from voiceagent.webhooks.outbound import StatusNotifier


@pytest.fixture
def stack(redis_prefix):
    client = CallClient(redis.Redis(), redis_prefix)

    def notifier(url="", **kw):
        kw.setdefault("retries", 3)
        kw.setdefault("retry_base_seconds", 1)
        return StatusNotifier(client, Queues(redis.Redis(), redis_prefix), url=url, **kw)
    return client, notifier


def drain(client, notifier):
    """Hand every stream event to the notifier, as the follower does; returns what was handled."""
    group = f"g-{uuid.uuid4().hex[:6]}"
    handled = []
    while True:
        got = client.stream.read(group, "c1", block_ms=None, stale_ms=0)
        if not got:
            return handled
        for entry_id, event in got:
            notifier.handle(entry_id, event)
            handled.append((entry_id, event))
            client.ack(group, entry_id)


def of(got, **match):
    return [g for g in got if all(json.loads(g.body).get(k) == v for k, v in match.items())]


def test_a_canceled_call_is_posted_signed_to_its_own_url_and_the_global_one(stack, receiver, rq_worker):
    client, make = stack
    own, glob = receiver(), receiver()
    call_id = client.place(CallRequest(to="+15551230001", webhook_url=own.url))
    client.cancel(call_id)
    drain(client, make(url=glob.url))
    rq_worker()
    for r in (own, glob):
        (got,) = r.wait(lambda g: len(g) >= 1)
        assert signing.verify(SECRET, got.body, got.headers[signing.HEADER])
        assert not signing.verify("another-secret-entirely", got.body, got.headers[signing.HEADER])
        assert not signing.verify(SECRET, got.body + b" ", got.headers[signing.HEADER])
        body = json.loads(got.body)
        assert (body["status"], body["outcome"], body["call_id"], body["event"]) == \
            ("canceled", "canceled", call_id, "call.ended")
        assert body["id"] == got.headers[signing.DELIVERY_HEADER] and body["transcript"] == []
    assert json.loads(own.got[0].body)["id"] != json.loads(glob.got[0].body)["id"]  # one id per URL


def test_a_failing_receiver_is_retried_with_backoff_until_it_takes_the_event(stack, receiver, rq_worker):
    client, make = stack
    hook = receiver(script=[500, 503, 200])
    call_id = client.place(CallRequest(to="+15551230001", webhook_url=hook.url))
    client.cancel(call_id)
    drain(client, make())
    rq_worker()
    got = hook.wait(lambda g: any(x.status == 200 for x in g))
    assert [x.status for x in got] == [500, 503, 200]
    assert len({x.headers[signing.DELIVERY_HEADER] for x in got}) == 1  # the same delivery, retried


def test_each_event_is_delivered_once_however_often_it_is_handled(stack, receiver, rq_worker, redis_prefix):
    client, make = stack
    hook = receiver()
    notifier = make()
    call_id = client.place(CallRequest(to="+15551230001", webhook_url=hook.url))
    client.cancel(call_id)
    handled = drain(client, notifier)
    rq_worker()
    hook.wait(lambda g: len(g) == 1)
    for entry_id, event in handled:  # the follower crashed before its ack: it handles them again
        notifier.handle(entry_id, event)
    first = json.loads(hook.got[0].body)
    # a job for the same id that slipped past the notifier's check is not sent either
    Queues(redis.Redis(), redis_prefix).get("webhooks").enqueue(
        deliver, {"id": first["id"], "url": hook.url, "body": hook.got[0].body.decode(), "prefix": redis_prefix})
    # a later event: once it arrives, anything queued before it has run
    notifier.handle("9999999999999-0", CallDialing(call_id=call_id, at=1.0))
    got = hook.wait(lambda g: any(json.loads(x.body)["status"] == "dialing" for x in g))
    assert len(of(got, id=first["id"])) == 1, got


def test_a_4xx_answer_is_final(stack, receiver, rq_worker):
    client, make = stack
    hook = receiver(script=[404])
    notifier = make()
    call_id = client.place(CallRequest(to="+15551230001", webhook_url=hook.url))
    client.cancel(call_id)
    drain(client, notifier)
    rq_worker()
    hook.wait(lambda g: len(g) == 1)
    notifier.handle("9999999999999-0", CallDialing(call_id=call_id, at=1.0))
    got = hook.wait(lambda g: any(json.loads(x.body)["status"] == "dialing" for x in g))
    assert [x.status for x in got] == [404, 200]


def test_a_loopback_target_is_refused_at_delivery_unless_allowed(stack, receiver, rq_worker, redis_prefix):
    client, make = stack
    hook = receiver()
    q = Queues(redis.Redis(), redis_prefix).get("webhooks")
    job = q.enqueue(deliver, {"id": "d-refused", "url": hook.url, "body": "{}", "prefix": redis_prefix})
    rq_worker(WEBHOOK_ALLOW_PRIVATE="false")
    from tests.fork_helpers import wait_until

    assert wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=30)
    assert job.return_value().startswith("refused:") and "loopback" in job.return_value()
    assert hook.got == []


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4",
                                  "169.254.169.254", "fe80::1", "fc00::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::",
                                  "100.64.0.1", "240.0.0.1", "::ffff:10.0.0.1"])
def test_non_public_addresses_are_refused(addr):
    assert refusal(ip_address(addr))


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_pass(addr):
    assert refusal(ip_address(addr)) == ""


def test_post_calls_refuses_a_private_webhook_url_naming_it(webhook_api):
    app = webhook_api({})
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    for url in ("http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data"):
        r = requests.post(app.url + "/calls", json={"to": "+15551230001", "webhook_url": url}, headers=hdr)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "webhook_url", r.text
    r = requests.post(app.url + "/calls", json={"to": "+15551230001", "webhook_url": "ftp://example.org/"}, headers=hdr)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "webhook_url"
    allowed = webhook_api({}, webhook_allow_private=True)
    r = requests.post(allowed.url + "/calls", json={"to": "+15551230001", "webhook_url": "http://127.0.0.1:9/x"},
                      headers=hdr)
    assert r.status_code == 202
    assert allowed.client.get(r.json()["id"]).request.webhook_url == "http://127.0.0.1:9/x"


def test_verify_refuses_an_old_signature():
    header = signing.sign(SECRET, b"{}", timestamp=1000)
    assert signing.verify(SECRET, b"{}", header, now=1100)
    assert not signing.verify(SECRET, b"{}", header, now=1000 + signing.TOLERANCE_SECONDS + 1)
    assert not signing.verify(SECRET, b"{}", "garbage")
