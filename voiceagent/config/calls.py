"""The voice worker's own sections: calls and their limits, outbound defaults, Redis, logs and metrics."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from .base import Section, default_worker_id, mask_url


class CallSettings(Section):
    title = "calls: limits, admission, the dialog, worker liveness (calls/worker.py, calls/recovery.py)"

    worker_id: str = Field(default_factory=default_worker_id, description="Unique name of this voice worker (default host-pid).")
    max_calls: int = Field(default=20, ge=1, description="Concurrent calls per worker; more are refused with USER_BUSY before answer.")
    max_call_seconds: float = Field(default=1800.0, gt=0, description="Hard limit on a call's length.")
    audio_idle_seconds: float = Field(default=10.0, gt=0, description="No audio for this long = fork died: restart it once, then hang up.")
    drain_seconds: float = Field(default=300.0, ge=0, description="On SIGTERM, how long live calls may continue before they are hung up.")
    answer_inbound: bool = Field(default=True, description="The owning worker answers parked inbound calls (the dialplan parks without answering).")
    dialog: Literal["conversation", "greeting"] = Field(default="conversation", description="What answers calls: 'conversation' (VAD + Whisper + LLM + TTS) or 'greeting' (play GREETING_FILE and hang up: a plumbing check).")
    greeting_file: str = Field(default="", description="WAV the built-in greeting dialog plays (default: a packaged greeting).")
    admission_max_wait_s: float = Field(default=2.0, gt=0, description="Refuse new calls when the expected inference queue wait exceeds this, s.")
    admission_max_loop_lag_ms: int = Field(default=500, ge=0, description="Refuse new calls (USER_BUSY) while the event loop runs late by more than this (median of the last second), ms; 0 = off.")
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0, description="How often a worker writes its heartbeat and rewrites its live call records.")
    worker_heartbeat_ttl: float = Field(default=15.0, gt=0, description="A worker without a heartbeat this long counts as dead: its calls are swept, its inbox expires (must exceed WORKER_HEARTBEAT_SECONDS).")
    orphan_sweep_seconds: float = Field(default=30.0, gt=0, description="How often a worker looks for calls of dead workers (hangs them up, closes their records) and stale playback WAVs.")
    session_reap_seconds: float = Field(default=60.0, gt=0, description="A session still open this long after its hangup is force-closed (logged as an error).")

    @field_validator("worker_heartbeat_ttl")
    @classmethod
    def _ttl_exceeds_interval(cls, v: float, info: ValidationInfo) -> float:
        every = info.data.get("worker_heartbeat_seconds")
        if every is not None and v <= every:
            raise ValueError(f"must be greater than WORKER_HEARTBEAT_SECONDS ({every:g})")
        return v


class OutboundSettings(Section):
    title = "outbound: defaults of the calls the agent places (telephony/commands.py originate)"

    originate_gateway: str = Field(default="", description="Default SIP gateway for outbound calls (sofia/gateway/<name>/<number>).")
    originate_timeout: int = Field(default=30, ge=1, le=600, description="Ring timeout for outbound calls, seconds.")
    caller_id_number: str = Field(default="", description="Default caller id number for outbound calls.")
    caller_id_name: str = Field(default="voiceagent", description="Default caller id name for outbound calls.")
    take_requests: bool = Field(default=True, description="This worker takes outbound call requests from Redis (placed through the call client, API or CLI) while it has room.")


class RecordsSettings(Section):
    title = "records: call records and the call-event stream (records/)"

    call_retention_days: float = Field(default=30.0, gt=0, le=3650, description="How long a call's record (transcript, outcome, timings) is kept after the call.")
    call_events_maxlen: int = Field(default=100_000, ge=1000, description="Length the call-event stream is trimmed to (approximately); a consumer group further behind loses the oldest.")
    record_calls: bool = Field(default=False, description="FreeSWITCH records every answered call (uuid_record: both legs mixed, <call id>.wav in RECORDINGS_DIR); the call page plays it.")
    recordings_dir: Path = Field(default=Path("/tmp/voiceagent-recordings"), description="Where FreeSWITCH writes the recordings; the API serves them from the same path, so it must be shared by both (as PLAYBACK_DIR is).")


class RedisSettings(Section):
    title = "redis: live call state, command inboxes, queues (calls/inbox.py)"

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for live call state, command inboxes and queues.")
    redis_prefix: str = Field(default="voiceagent", description="Key prefix, so several deployments or test runs can share one Redis.")
    redis_max_connections: int = Field(default=50, ge=2, le=10000, description="Size of the worker's Redis connection pool (a blocking pool: callers wait for a free connection instead of failing).")
    redis_pool_timeout: float = Field(default=5.0, gt=0, description="Seconds a Redis operation waits for a free pooled connection before it fails (and is queued for replay).")
    redis_socket_timeout: float = Field(default=5.0, gt=0, description="Seconds any Redis command or connect may take (an unreachable Redis must not freeze calls).")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"expected redis://[:password@]host[:port][/db], rediss://... or unix:///path, got {mask_url(v)!r}")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"no host in {mask_url(v)!r}")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"no socket path in {mask_url(v)!r}")
        try:
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"bad port in {mask_url(v)!r}") from None
        return v


class LoggingSettings(Section):
    title = "logging: log lines and the Prometheus endpoint (observability/)"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field(default="json", description="JSON lines (default) or human-readable text.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Port of the voice worker's Prometheus /metrics endpoint (0 = off).")
    metrics_host: str = Field(default="127.0.0.1", description="Address the metrics endpoint binds (the RQ workers' JOBS_METRICS_PORT too).")
    log_mask_numbers: bool = Field(default=True, description="Mask phone numbers in log lines (all but the last 4 digits: +*******0001); off shows them whole, for debugging.")



def _csv(v: str) -> List[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


class DialSettings(Section):
    title = "dial policy: which numbers and gateways any placed call may use (records/dial_policy.py)"

    dial_default_region: str = Field(default="US", description="Region (ISO 3166 code) national numbers without + are read in, and the home region when DIAL_HOME_REGIONS is empty.")
    dial_home_regions: str = Field(default="", description="Comma-separated regions whose numbers are domestic; others are international (empty = DIAL_DEFAULT_REGION).")
    dial_allow_international: bool = Field(default=False, description="Allow numbers outside DIAL_HOME_REGIONS (including +numbers of an unknown or foreign country code).")
    dial_allow_premium: bool = Field(default=False, description="Allow premium-rate, shared-cost, UAN and personal numbers (e.g. US 900).")
    dial_validate_e164: bool = Field(default=False, description="Refuse numbers phonenumbers does not know as valid (off by default: fictional 555 numbers pass; premium and international checks apply either way). Turn on in production.")
    dial_extension_max_digits: int = Field(default=6, ge=0, le=15, description="Numbers without + of at most this many digits are internal extensions (no number checks).")
    dial_allow_sip_uris: bool = Field(default=True, description="Allow sip:/sips: URIs as the destination (on by default: requests have always accepted them).")
    dial_allowed_patterns: str = Field(default="", description="Comma-separated regexes; when set, a destination must fullmatch one of them (in addition to the other rules).")
    dial_allowed_gateways: str = Field(default="", description="Comma-separated gateway names a request may name; empty = any. A request without a gateway uses ORIGINATE_GATEWAY.")

    @field_validator("dial_default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        regions = _regions(v)
        if len(regions) != 1:
            raise ValueError("must be one region, e.g. US")
        return regions[0]

    @field_validator("dial_home_regions")
    @classmethod
    def _home(cls, v: str) -> str:
        return ",".join(_regions(v)) if v.strip() else ""

    @field_validator("dial_allowed_patterns")
    @classmethod
    def _patterns(cls, v: str) -> str:
        for p in _csv(v):
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a regular expression: {exc}") from None
        return v


def _regions(v: str) -> List[str]:
    import phonenumbers

    out = [x.upper() for x in _csv(v)]
    bad = [x for x in out if x not in phonenumbers.SUPPORTED_REGIONS] or ([] if out else [v])
    if bad:
        raise ValueError(f"unknown region {', '.join(bad)!s} (expected ISO 3166 codes such as US, GB, DE)")
    return out
