"""Tracing: where each process's OpenTelemetry spans go (observability/tracing.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section, check_url


class TracingSettings(Section):
    title = "tracing: OpenTelemetry spans of calls, turns, API requests and jobs (observability/tracing.py)"

    otel_exporter: Literal["none", "otlp", "console"] = Field(default="none", description="Where spans go: 'none' (tracing off, the default), 'otlp' (OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT) or 'console' (one JSON span per finished span on stdout, for debugging).")
    otel_exporter_otlp_endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", description="The OTLP/HTTP traces endpoint of the collector (OTEL_EXPORTER=otlp).")
    otel_service_name: str = Field(default="", description="service.name of this process's spans (default by process: voiceagent-voice, voiceagent-api, voiceagent-jobs, voiceagent-follow).")

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        return check_url(v, ("http", "https"), "http://collector:4318/v1/traces")
