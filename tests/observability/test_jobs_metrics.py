"""The RQ side's metrics: a ``voiceagent jobs worker --metrics-port`` serves its own /metrics with the
queue wait of the calls it handed over; webhook deliveries and failures by result."""
import uuid

import pytest
import redis

from tests.jobs.conftest import procs, queue  # noqa: F401 - fixtures
from tests.webhooks.conftest import Receiver
from voiceagent.records.models import Outcome
from voiceagent.webhooks import delivery

from .conftest import free_port, sample, scrape
from .test_metric_units import value


def test_a_job_worker_serves_metrics_with_the_queue_wait_of_the_call_it_handed_over(
        make_emulator, make_worker, procs, queue):  # noqa: F811
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550501", outcome="answer", ring_seconds=0.2)
    make_worker([emu], originate_gateway="carrier1")
    port = free_port()
    procs.rq_worker("--without-scheduler", "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    assert sample(scrape(url), "voiceagent_queue_wait_seconds_count", priority="high") == 0.0
    q = queue(limit=2)
    call_id = q.dispatcher.submit({"to": "+15550501", "message": "Hello"}, priority="high")
    rec = q.client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED, rec
    samples = scrape(url)
    assert sample(samples, "voiceagent_queue_wait_seconds_count", priority="high") == 1.0
    assert 0 < sample(samples, "voiceagent_queue_wait_seconds_sum", priority="high") < 40
    assert sample(samples, "voiceagent_queue_retries_total", priority="high") == 0.0


@pytest.fixture
def receiver():
    r = Receiver(script=[503, 404, 200])
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_webhook_deliveries_count_by_result_and_failures_by_finality(receiver, redis_prefix, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    delivery._settings.cache_clear()
    conn = redis.Redis()
    before = {r: value("voiceagent_webhook_deliveries_total", result=r) for r in ("retry", "final", "delivered")}
    failed = {f: value("voiceagent_webhook_failures_total", final=f) for f in ("true", "false")}
    try:
        def send():
            data = {"id": uuid.uuid4().hex, "url": receiver.url, "body": "{}", "prefix": redis_prefix}
            return delivery.deliver(data, connection=conn)

        with pytest.raises(delivery.DeliveryFailed):
            send()                                   # 503: retried later
        assert send().startswith("failed: HTTP 404")  # 4xx: final
        assert send().startswith("delivered")
    finally:
        delivery._settings.cache_clear()
    for result in ("retry", "final", "delivered"):
        assert value("voiceagent_webhook_deliveries_total", result=result) == before[result] + 1, result
    assert value("voiceagent_webhook_failures_total", final="false") == failed["false"] + 1
    assert value("voiceagent_webhook_failures_total", final="true") == failed["true"] + 1
