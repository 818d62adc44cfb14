"""From a sender's payload to call requests: Grafana alerting, Alertmanager, generic JSON.

The alert payloads are the senders' own shapes (Grafana's unified-alerting webhook contact point,
Alertmanager's ``webhook_config`` version 4): both are a *group* of alerts with a group
``status``, a ``groupKey`` and per-alert labels, annotations and fingerprint.  One delivery makes
one call per configured number; its message is the source's template rendered over the payload
plus ``alert`` (the first alert of the group's status), ``firing``/``resolved`` (counts) and
``others`` (a sentence about the rest).  The generic ``call`` payload (n8n, Home Assistant's
``rest_command``, scripts) says whom to call and what to say itself, or feeds a template.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Type, Union

from pydantic import BaseModel, ConfigDict, Field

from ..records.models import ChoiceQuestion, ToolRun
from .sources import Source
from .template import Template

DEFAULT_ALERT_MESSAGE = ('Alert {{ alert.labels.alertname | default("without a name") }} is {{ status }}. '
                         '{{ alert.annotations.summary | default("") }} {{ others }}')


class MappingFailed(ValueError):
    """The payload does not make a call; ``field`` names what is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Lenient(BaseModel):
    """Senders add fields between versions: unknown ones are kept (templates may read them)."""

    model_config = ConfigDict(extra="allow")


class Alert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: Dict[str, str] = Field(default_factory=dict)
    annotations: Dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class AlertGroup(_Lenient):
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    alerts: List[Alert] = Field(max_length=1000)
    groupLabels: Dict[str, str] = Field(default_factory=dict)
    commonLabels: Dict[str, str] = Field(default_factory=dict)
    commonAnnotations: Dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0


class GrafanaAlert(Alert):
    values: Optional[Dict[str, Any]] = None
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""


class GrafanaPayload(AlertGroup):
    """Grafana alerting's webhook contact point (unified alerting, version "1")."""

    alerts: List[GrafanaAlert] = Field(max_length=1000)  # type: ignore[assignment]
    orgId: Optional[int] = None
    title: str = ""
    message: str = ""
    state: str = ""
    version: str = ""


class AlertmanagerPayload(AlertGroup):
    """Prometheus Alertmanager's webhook_config notification (version "4")."""

    version: str = "4"


class CallPayload(_Lenient):
    """Generic JSON (n8n, Home Assistant rest_command, scripts): whom to call and what to say; any
    other fields are there for the source's templates."""

    to: Optional[Union[str, List[str]]] = Field(default=None,
                                                description="Number(s) to call, unless the source fixes them.")
    message: Optional[str] = Field(default=None, max_length=2000,
                                   description="What to say (unless the source has a template).")
    instructions: Optional[str] = Field(default=None, max_length=4000)
    choice: Optional[ChoiceQuestion] = None
    tool: Optional[ToolRun] = None


@dataclass
class Plan:
    """What one delivery asks for: the requests' fields (one per number) and its dedup fingerprint."""

    requests: List[Dict[str, Any]] = field(default_factory=list)
    fingerprint: Optional[str] = None
    ignored: str = ""


PAYLOADS: Dict[str, Type[BaseModel]] = {"grafana": GrafanaPayload, "alertmanager": AlertmanagerPayload,
                                        "call": CallPayload}


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:40]


def plan(source: Source, payload: BaseModel, raw: Dict[str, Any], delivery_id: Optional[str]) -> Plan:
    if isinstance(payload, AlertGroup):
        return _alerts(source, payload, raw, delivery_id)
    assert isinstance(payload, CallPayload)
    return _call(source, payload, raw, delivery_id)


def _alerts(source: Source, group: AlertGroup, raw: Dict[str, Any], delivery_id: Optional[str]) -> Plan:
    if not group.alerts:
        raise MappingFailed("alerts", "the notification holds no alerts")
    if group.status == "resolved" and not source.call_resolved:
        return Plan(ignored="resolved notifications do not call (call_resolved is off for this source)")
    mine = [a for a in group.alerts if a.status == group.status] or list(group.alerts)
    idx = group.alerts.index(mine[0])
    firing = sum(a.status == "firing" for a in group.alerts)
    rest = len(mine) - 1 + group.truncatedAlerts
    others = f"{rest} more {'alert is' if rest == 1 else 'alerts are'} {group.status}." if rest > 0 else ""
    context = {**raw, "alert": raw["alerts"][idx], "firing": firing, "resolved": len(group.alerts) - firing,
               "others": others}
    fps = sorted(a.fingerprint or digest(a.labels) for a in group.alerts)
    fingerprint = digest(source.name, "id", delivery_id) if delivery_id else \
        digest(source.name, group.groupKey, group.status, fps)
    message = Template(source.message or DEFAULT_ALERT_MESSAGE).render(context)
    return Plan(requests=_requests(source, source.to, message, context), fingerprint=fingerprint)


def _call(source: Source, body: CallPayload, raw: Dict[str, Any], delivery_id: Optional[str]) -> Plan:
    numbers = source.to or ([body.to] if isinstance(body.to, str) else list(body.to or []))
    if not numbers:
        raise MappingFailed("to", "no number to call: the source has none and the payload gives none")
    if len(numbers) > 10:
        raise MappingFailed("to", "at most 10 numbers")
    if source.message is not None:
        message: Optional[str] = Template(source.message).render(raw)
    else:
        message = body.message
    if not message and body.tool is None and source.tool is None:
        raise MappingFailed("message", "nothing to say: give a message or a tool (or configure a template)")
    fields = _requests(source, numbers, message, raw)
    for f in fields:
        if body.instructions and "instructions" not in f:
            f["instructions"] = body.instructions
        if body.choice is not None and "choice" not in f:
            f["choice"] = body.choice.model_dump()
        if body.tool is not None and "tool" not in f:
            f["tool"] = body.tool.model_dump()
    return Plan(requests=fields, fingerprint=digest(source.name, "id", delivery_id) if delivery_id else None)


def _requests(source: Source, numbers: List[str], message: Optional[str],
              context: Dict[str, Any]) -> List[Dict[str, Any]]:
    base = source.request_fields()
    if message:
        base["message"] = message
    if source.instructions is not None:
        base["instructions"] = Template(source.instructions).render(context, limit=4000)
    out = []
    for n in numbers:
        to = Template(n).render(context, limit=64) if "{{" in n else n
        if not to:
            raise MappingFailed("to", f"the number template {n!r} renders empty")
        out.append({**base, "to": to})
    return out
