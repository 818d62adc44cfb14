"""Delivering one status event: the RQ job on the ``webhooks`` queue (``voiceagent jobs worker``).

A 2xx is delivered; a 5xx, 408, 429, timeout or connection error raises, so RQ retries the job
with the backoff the notifier gave it (RQ's scheduler moves a delayed retry back onto the queue);
any other answer (3xx: redirects are not followed; 4xx) is final.  Each delivery id is sent at
most once: a ``sent`` key is SET after a 2xx and checked first, and a short ``sending`` lock keeps
two workers from sending one id at the same time.  The secret is read from the worker's own
settings when the request is sent (never stored in the job), and the timestamp is signed then.

The connection goes to the address the SSRF guard checked (urllib3 is told the IP to connect to,
and the host name for the Host header, TLS SNI and certificate check), so a DNS answer that
changes between the check and the connect cannot steer it.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import certifi
import urllib3
from pydantic import BaseModel, ConfigDict

from ..observability.ops_metrics import WEBHOOK_DELIVERIES, WEBHOOK_FAILURES
from ..records.keys import Keys
from .guard import TargetRefused, Unresolvable, checked_addresses, split
from .signing import DELIVERY_HEADER, HEADER, sign

log = logging.getLogger(__name__)

SENT_TTL_SECONDS = 7 * 86400   # how long a delivered id is remembered (a re-handled event is not re-sent)
READ_LIMIT = 4096              # bytes of the receiver's answer read (then the connection is dropped)
RETRY_STATUSES = {408, 429}


class Delivery(BaseModel):
    """A job's argument: which event body goes where."""

    model_config = ConfigDict(extra="forbid")

    id: str
    url: str
    body: str
    prefix: str


class DeliveryFailed(Exception):
    """A retryable failure (RQ retries the job while retries are left)."""


@lru_cache(maxsize=1)
def _settings() -> Any:
    from ..config import RedisSettings, WebhookSettings, load_sections

    return load_sections(RedisSettings, WebhookSettings)


def post(url: str, body: bytes, headers: Dict[str, str], *, timeout: float, allow_private: bool) -> int:
    """POST ``body`` to ``url`` on the checked address; the HTTP status.  Raises TargetRefused
    (final), Unresolvable or urllib3/OS errors (retryable)."""
    scheme, host, port = split(url)
    address = checked_addresses(url, allow_private=allow_private)[0]
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t = urllib3.Timeout(connect=timeout, read=timeout, total=2 * timeout)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=t, retries=False, maxsize=1,
                                           server_hostname=host, assert_hostname=host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=t, retries=False, maxsize=1)
    host_header = parts.netloc.rsplit("@", 1)[-1]
    with pool:
        resp = pool.urlopen("POST", target, body=body, headers={**headers, "Host": host_header}, redirect=False,
                            retries=False, assert_same_host=False, preload_content=False)
        try:
            resp.read(READ_LIMIT)
        finally:
            resp.release_conn()
        return int(resp.status)


def deliver(data: Dict[str, Any], *, connection: Optional[Any] = None) -> str:
    """The job: send one delivery once.  Returns what happened (kept as the job's result); counted in
    ``voiceagent_webhook_deliveries_total{result}`` and, when it failed, ``voiceagent_webhook_failures_total``."""
    try:
        done = _deliver(data, connection=connection)
    except DeliveryFailed:
        WEBHOOK_DELIVERIES.labels(result="retry").inc()
        WEBHOOK_FAILURES.labels(final="false").inc()
        raise
    result = done.split(":", 1)[0]  # delivered | refused | failed (final) | already delivered
    if result != "already delivered":
        WEBHOOK_DELIVERIES.labels(result="final" if result == "failed" else result).inc()
    if result in ("refused", "failed"):
        WEBHOOK_FAILURES.labels(final="true").inc()
    return done


def _deliver(data: Dict[str, Any], *, connection: Optional[Any] = None) -> str:
    d = Delivery.model_validate(data)
    s = _settings()
    if connection is None:
        from rq import get_current_job

        job = get_current_job()
        connection = job.connection if job is not None else None
    assert connection is not None, "deliver runs as an RQ job (or is given a Redis connection)"
    keys = Keys(d.prefix)
    if connection.exists(keys.webhook_sent(d.id)):
        return "already delivered"
    lock = keys.webhook_sending(d.id)
    if not connection.set(lock, "1", nx=True, ex=int(3 * s.webhook_timeout) + 5):
        raise DeliveryFailed(f"delivery {d.id} is being sent by another worker")
    body = d.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "voiceagent-webhooks/1", DELIVERY_HEADER: d.id}
    secret = s.webhook_secret.get_secret_value()
    if secret:
        headers[HEADER] = sign(secret, body)
    try:
        status = post(d.url, body, headers, timeout=s.webhook_timeout, allow_private=s.webhook_allow_private)
    except TargetRefused as exc:
        log.warning("webhook %s to %s refused: %s", d.id, _where(d.url), exc)
        return f"refused: {exc}"
    except (Unresolvable, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DeliveryFailed(f"{_where(d.url)}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.delete(lock)
    if 200 <= status < 300:
        connection.set(keys.webhook_sent(d.id), "1", nx=True, ex=SENT_TTL_SECONDS)
        return f"delivered: HTTP {status}"
    if status >= 500 or status in RETRY_STATUSES:
        raise DeliveryFailed(f"{_where(d.url)} answered HTTP {status}")
    log.warning("webhook %s to %s: HTTP %s is final (not retried)", d.id, _where(d.url), status)
    return f"failed: HTTP {status} (final)"


def _where(url: str) -> str:
    """Scheme, host and port only: a URL's path or query may hold a token."""
    try:
        scheme, host, port = split(url)
    except TargetRefused:
        return "(bad url)"
    return f"{scheme}://{host}:{port}"
