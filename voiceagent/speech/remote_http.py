"""HTTP to a remote speech server: one ``requests`` session per backend, timeouts, retries, metrics.

``requests`` (already a dependency) runs on the voice worker's monkey-patched sockets, so a
request waits in its greenlet and the hub keeps serving audio.  A timeout, a refused or dropped
connection and a 5xx are retried (``retries`` times, a short pause between); a 4xx is the
request's own fault and is not.  Whatever still fails raises ``SpeechUnavailable`` with the reason,
for the fallback (speech/fallback.py) to act on.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, TypeVar

import gevent
import requests
from prometheus_client import Counter, Histogram

from .seams import SpeechUnavailable

__all__ = ["RemoteEndpoint", "REMOTE_SECONDS", "REMOTE_FAILURES", "error_message"]

log = logging.getLogger(__name__)

REMOTE_SECONDS = Histogram("voiceagent_remote_speech_seconds", "Remote STT/TTS requests: time to the first byte "
                           "of the answer and to its end", ["kind", "stage"],
                           buckets=(.025, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10))
REMOTE_FAILURES = Counter("voiceagent_remote_speech_failures_total", "Failed remote STT/TTS attempts by reason "
                          "(each retry counts)", ["kind", "reason"])

T = TypeVar("T")

RETRY_PAUSE_S = 0.2


class _Retryable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def error_message(resp: requests.Response) -> str:
    """The message of an OpenAI-style error body, else the start of the body."""
    try:
        body = resp.json()
        return str(body["error"]["message"])[:300]
    except Exception:  # noqa: BLE001 - any body at all
        return resp.text[:300]


class RemoteEndpoint:
    """One remote endpoint (``base_url`` + ``path``) with its key, timeout and retries."""

    def __init__(self, kind: str, base_url: str, path: str, *, api_key: str = "", timeout: float = 10.0,
                 retries: int = 1) -> None:
        self.kind = kind
        self.url = base_url.rstrip("/") + path
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not sit between worker and server
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def call(self, read: Callable[[requests.Response, float], T], **request: Any) -> T:
        """POST ``request`` and hand the (streamed) 2xx response to ``read(resp, deadline)``; retried as
        the module says.  ``read`` raises TimeoutError past the deadline."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                gevent.sleep(RETRY_PAUSE_S * attempt)
            try:
                return self._once(read, request)
            except _Retryable as exc:
                REMOTE_FAILURES.labels(self.kind, exc.reason).inc()
                last = f"{exc.reason}: {exc}"
                log.warning("remote %s attempt %d/%d failed (%s)", self.kind, attempt + 1, self.retries + 1, last)
        raise SpeechUnavailable(f"remote {self.kind} at {self.url} failed: {last}")

    def _once(self, read: Callable[[requests.Response, float], T], request: dict) -> T:
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        try:
            resp = self.session.post(self.url, timeout=(min(self.timeout, 3.0), self.timeout), stream=True, **request)
        except requests.Timeout as exc:
            raise _Retryable("timeout", str(exc)) from None
        except requests.ConnectionError as exc:
            raise _Retryable("connection", str(exc)[:200]) from None
        with resp:
            REMOTE_SECONDS.labels(self.kind, "first_byte").observe(time.monotonic() - t0)
            if resp.status_code >= 500:
                raise _Retryable(f"http_{resp.status_code}", error_message(resp))
            if resp.status_code >= 400:
                REMOTE_FAILURES.labels(self.kind, f"http_{resp.status_code}").inc()
                raise SpeechUnavailable(f"remote {self.kind} refused the request ({resp.status_code}): "
                                        f"{error_message(resp)}")
            try:
                out = read(resp, deadline)
            except (requests.Timeout, TimeoutError) as exc:
                raise _Retryable("timeout", str(exc) or "the answer took too long") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retryable("connection", str(exc)[:200]) from None
            except (ValueError, KeyError, TypeError) as exc:  # a 2xx whose body is not what the API says
                REMOTE_FAILURES.labels(self.kind, "bad_answer").inc()
                raise SpeechUnavailable(f"remote {self.kind} answered something unreadable: {exc}") from None
        REMOTE_SECONDS.labels(self.kind, "total").observe(time.monotonic() - t0)
        return out

    def close(self) -> None:
        self.session.close()


def past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() > deadline
