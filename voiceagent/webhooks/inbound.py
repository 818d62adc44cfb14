"""``POST /webhooks/<kind>/<source>``: a configured sender places calls (Grafana, Alertmanager, JSON).

The API's bearer token does not apply here (the operations are public); each source's own auth
does, checked over the raw body before it is parsed.  An unknown source is 404, a bad token or
signature 401, a payload that makes no call 422 naming what is missing, and a call the dial
policy refuses 422.  A repeated delivery (Alertmanager re-sends a firing group every
repeat_interval; senders retry) is recognised by its fingerprint (SET NX for
WEBHOOK_DEDUP_SECONDS) and answered 200 with the first delivery's call ids; it dials nothing.
Every call is submitted through the Dispatcher.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, Field, ValidationError

from ..api.errors import ApiError, invalid
from ..api.inputs import parse_json, raw_body
from ..api.openapi import operation
from ..config import ConfigError
from ..jobs.dispatch import Dispatcher
from ..records.client import CallClient
from ..records.dial_policy import DialRefused
from ..records.models import CallRequest
from .adapters import PAYLOADS, AlertmanagerPayload, CallPayload, GrafanaPayload, MappingFailed, plan
from .sources import AuthFailed, Source, SourceAuth, SourceError, load_sources
from .template import MissingField

bp = Blueprint("webhooks", __name__)

DELIVERY_HEADERS = ("Idempotency-Key", "X-Delivery-Id")
DEFAULT_DEDUP_SECONDS = 21600


class WebhookAccepted(BaseModel):
    """The calls a delivery placed (202), or a repeat's first calls / an ignored notification (200)."""

    source: str
    ids: List[str] = Field(description="Call ids (GET /calls/{id}).")
    duplicate: bool = Field(default=False, description="A repeat of an earlier delivery: nothing was dialed.")
    ignored: str = Field(default="", description="Why this notification places no call (e.g. resolved).")


@bp.record_once
def _load_sources(state: BlueprintSetupState) -> None:
    """Read WEBHOOKS_FILE when the app is built: a bad file stops the API at start, not at 3 a.m."""
    settings = state.app.extensions.get("voiceagent.settings")
    try:
        state.app.extensions["voiceagent.webhooks"] = load_sources(getattr(settings, "webhooks_file", "") or "")
    except SourceError as exc:
        raise ConfigError(f"invalid configuration: WEBHOOKS_FILE: {exc}") from None


def _source(kind: str, name: str) -> Source:
    sources: Dict[str, Source] = current_app.extensions.get("voiceagent.webhooks", {})
    src = sources.get(name)
    if src is None or src.kind != kind:
        raise ApiError(404, f"no {kind} webhook source {name!r} (see WEBHOOKS_FILE)")
    return src


def _payload(kind: str, raw: bytes) -> Tuple[BaseModel, Dict[str, Any]]:
    data = parse_json(raw) if raw.strip() else None
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object", [{"field": "(body)", "message": "must be an object"}])
    try:
        return PAYLOADS[kind].model_validate(data), data
    except ValidationError as exc:
        raise invalid(exc) from None


def _delivery_id() -> Optional[str]:
    for name in DELIVERY_HEADERS:
        value = request.headers.get(name, "").strip()
        if value:
            if len(value) > 128:
                raise ApiError(422, f"{name} is too long", [{"field": name, "message": "at most 128 characters"}])
            return value
    return None


def _requests(src: Source, fields: List[Dict[str, Any]], fingerprint: Optional[str]) -> List[CallRequest]:
    out = []
    for i, f in enumerate(fields):
        if fingerprint:  # a racing repeat lands on the same call (the records' idempotency key)
            f = {**f, "idempotency_key": f"webhook:{fingerprint}:{i}"}
        try:
            out.append(CallRequest.model_validate(f))
        except ValidationError as exc:
            raise invalid(exc) from None
    return out


def receive(kind: str, name: str, src: Optional[Source] = None) -> Tuple[Response, int]:
    """One delivery; ``src`` given = the built-in ``api`` source, already authenticated by the API token."""
    raw = raw_body()
    if src is None:
        src = _source(kind, name)
        try:
            src.auth.check(dict(request.headers), raw)
        except AuthFailed as exc:
            raise ApiError(401, str(exc)) from None
    payload, data = _payload(kind, raw)
    if src is API_SOURCE and isinstance(data.get("message"), str):
        src = src.model_copy(update={"message": data["message"]})  # the token holder's message is a template
    try:
        p = plan(src, payload, data, _delivery_id())
    except MappingFailed as exc:
        raise ApiError(422, f"the payload makes no call: {exc}",
                       [{"field": exc.field, "message": exc.message}]) from None
    except MissingField as exc:
        raise ApiError(422, f"the message template reads {exc.path}: {exc.message}",
                       [{"field": exc.path, "message": exc.message}]) from None
    if p.ignored:
        return jsonify(WebhookAccepted(source=name, ids=[], ignored=p.ignored).model_dump()), 200
    reqs = _requests(src, p.requests, p.fingerprint)
    c: CallClient = current_app.extensions["voiceagent.client"]
    d: Dispatcher = current_app.extensions["voiceagent.dispatcher"]
    seen = c.keys.webhook_seen(p.fingerprint) if p.fingerprint else None
    if seen is not None:
        ttl = getattr(current_app.extensions["voiceagent.settings"], "webhook_dedup_seconds", DEFAULT_DEDUP_SECONDS)
        if not c.r.set(seen, "[]", nx=True, ex=int(ttl)):
            first = c.r.get(seen)
            return jsonify(WebhookAccepted(source=name, ids=json.loads(first) if first else [],
                                           duplicate=True).model_dump()), 200
    ids: List[str] = []
    try:
        for req in reqs:  # every number checked before any is dialed: all or none
            c.policy.check(req)
        for req in reqs:
            ids.append(d.submit(req, priority=src.priority))
    except DialRefused as exc:
        if seen is not None and not ids:
            c.r.delete(seen)  # nothing placed: a corrected retry must not count as a repeat
        raise ApiError(422, f"{exc.field} refused by the dial policy",
                       [{"field": exc.field, "message": exc.message}]) from None
    except BaseException:
        if seen is not None and not ids:
            c.r.delete(seen)
        raise
    finally:
        if seen is not None and ids:
            c.r.set(seen, json.dumps(ids), xx=True, keepttl=True)
    return jsonify(WebhookAccepted(source=name, ids=ids).model_dump()), 202


_ERRORS = (401, 404)

#: ``POST /webhooks/call``: the generic endpoint for whoever holds API_TOKEN (checked by the app like every
#: non-public operation), so a script or n8n needs no WEBHOOKS_FILE entry; its ``message`` is a template over
#: the payload ("{{ order.customer.name }}").  Never validated as a file source (it has no secret of its own).
API_SOURCE = Source.model_construct(name="api", kind="call", auth=SourceAuth.model_construct(type="bearer"))


@bp.post("/webhooks/call")
@operation("Generic JSON with the API token: whom to call, a message templated from the payload's fields, or a "
           "tool", body=CallPayload, responses={202: WebhookAccepted, 200: WebhookAccepted}, errors=(401,))
def call_with_token() -> Tuple[Response, int]:
    return receive("call", "api", API_SOURCE)


@bp.post("/webhooks/grafana/<source>")
@operation("Grafana alerting webhook contact point: call the source's numbers and read the alert",
           body=GrafanaPayload, responses={202: WebhookAccepted, 200: WebhookAccepted}, public=True, errors=_ERRORS)
def grafana(source: str) -> Tuple[Response, int]:
    return receive("grafana", source)


@bp.post("/webhooks/alertmanager/<source>")
@operation("Prometheus Alertmanager webhook_config receiver: call the source's numbers and read the alert",
           body=AlertmanagerPayload, responses={202: WebhookAccepted, 200: WebhookAccepted}, public=True,
           errors=_ERRORS)
def alertmanager(source: str) -> Tuple[Response, int]:
    return receive("alertmanager", source)


@bp.post("/webhooks/call/<source>")
@operation("Generic JSON (n8n, Home Assistant rest_command, scripts): whom to call, what to say or which tool",
           body=CallPayload, responses={202: WebhookAccepted, 200: WebhookAccepted}, public=True, errors=_ERRORS)
def call(source: str) -> Tuple[Response, int]:
    return receive("call", source)
