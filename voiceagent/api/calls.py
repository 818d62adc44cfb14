"""The calls resource: place, list, read, cancel and command calls through the call client.

``POST /calls`` queues a request (a voice worker with room dials it); every other operation reads
the record or sends a command to the worker that owns the call.  Nothing here talks to FreeSWITCH.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, List, Optional, Tuple, Type

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from ..calls.inbox import CallNotFound, WorkerGone
from ..calls.inbox_commands import HangupCommand, SayCommand, TransferCommand
from ..jobs.dispatch import Dispatcher, QueueFull
from ..records.client import CallClient
from ..records.dial_policy import DialRefused
from ..records.models import CallRecord
from ..webhooks.guard import TargetRefused, check_target
from .errors import ApiError, invalid
from .inputs import body, query
from .models import Accepted, CallPage, CallQuery, CommandAccepted, Hangup, PlaceCall, Say, Transfer
from .openapi import operation
from .recordings import send_recording

bp = Blueprint("calls", __name__)

SCAN_BATCH = 200        # ids read from the index per round while filtering a page
SCAN_ROUNDS = 10        # rounds per request: a sparse filter returns a short page and a cursor
RETRY_AFTER_SECONDS = 30  # what a 429 (queue full) tells the client to wait


def client() -> CallClient:
    c: CallClient = current_app.extensions["voiceagent.client"]
    return c


def dispatcher() -> Dispatcher:
    d: Dispatcher = current_app.extensions["voiceagent.dispatcher"]
    return d


def _record_json(rec: CallRecord) -> Dict[str, Any]:
    out: Dict[str, Any] = rec.model_dump(mode="json", by_alias=True)
    return out


def _api_state(rec: Optional[CallRecord]) -> str:
    return "queued" if rec is None or rec.state in ("queued", "requested") else rec.state


def _found(call_id: str) -> CallRecord:
    rec = client().get(call_id)
    if rec is None:
        raise ApiError(404, f"no call {call_id}")
    return rec


@bp.post("/calls")
@operation("Place an outbound call (queued; dialed when a slot of CALL_CONCURRENCY_LIMIT is free; 429 when "
           "the queue holds QUEUE_MAX_DEPTH calls)", body=PlaceCall, responses={202: Accepted}, errors=(429,))
def place() -> Tuple[Response, int, Dict[str, str]]:
    wanted = body(PlaceCall)
    key = request.headers.get("Idempotency-Key")
    try:
        req = wanted.to_request(key)
    except ValidationError as exc:
        raise invalid(exc, rename={"idempotency_key": "Idempotency-Key"}) from None
    if req.webhook_url:
        allow = bool(getattr(current_app.extensions["voiceagent.settings"], "webhook_allow_private", False))
        try:
            check_target(req.webhook_url, allow_private=allow)
        except TargetRefused as exc:
            raise ApiError(422, "webhook_url refused", [{"field": "webhook_url", "message": str(exc)}]) from None
    try:
        call_id = dispatcher().submit(req, priority="high")
    except DialRefused as exc:
        raise ApiError(422, f"{exc.field} refused by the dial policy",
                       [{"field": exc.field, "message": exc.message}]) from None
    except QueueFull as exc:
        raise ApiError(429, f"{exc} (QUEUE_MAX_DEPTH={dispatcher().max_depth}): try again later",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    return jsonify(Accepted(id=call_id, state=_api_state(client().get(call_id))).model_dump()), 202, \
        {"Location": f"/calls/{call_id}"}


# ---------------------------------------------------------------------- listing
def _encode_cursor(pos: Tuple[float, str]) -> str:
    raw = json.dumps(list(pos), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Tuple[float, str]:
    try:
        t, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(t), str(last)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(422, "cursor is not one this API gave out",
                       [{"field": "cursor", "message": "not a cursor from next_cursor"}]) from None


def _matches(rec: CallRecord, q: CallQuery) -> bool:
    return ((q.state is None or rec.state == q.state) and (q.direction is None or rec.direction == q.direction)
            and (q.outcome is None or rec.outcome == q.outcome)
            and (q.number is None or q.number in (rec.to, rec.from_)))


def page(q: CallQuery) -> Tuple[List[CallRecord], Optional[str]]:
    """Records newest first from the creation index; the cursor is the last record looked at.

    Records created at the same instant are ordered by id (descending, as ZREVRANGEBYSCORE does),
    so a cursor (created, id) resumes exactly after the last one whether or not it matched."""
    since = 0.0 if q.since is None else q.since
    until = float("inf") if q.until is None else q.until
    after: Optional[Tuple[float, str]] = _decode_cursor(q.cursor) if q.cursor else None
    store = client().records
    out: List[CallRecord] = []
    for _ in range(SCAN_ROUNDS):
        hi = min(until, after[0]) if after else until
        ids = store.ids_between(since, hi, limit=SCAN_BATCH)
        recs = store.get_many(ids)
        if after:
            recs = [r for r in recs if not (r.created == after[0] and r.id >= after[1])]
        if not recs:
            return out, None
        for rec in recs:
            after = (rec.created, rec.id)
            if _matches(rec, q):
                out.append(rec)
                if len(out) == q.limit:
                    return out, _encode_cursor(after)
        if len(ids) < SCAN_BATCH:
            return out, None
    return out, (_encode_cursor(after) if after else None)


@bp.get("/calls")
@operation("List calls, newest first (filters; cursor paging)", query=CallQuery, responses={200: CallPage})
def list_calls() -> Response:
    recs, cursor = page(query(CallQuery))
    return jsonify({"calls": [_record_json(r) for r in recs], "next_cursor": cursor})


# ---------------------------------------------------------------------- one call
@bp.get("/calls/<call_id>")
@operation("A call's record: state history, outcome, duration, transcript, choice answer",
           responses={200: CallRecord}, errors=(404,))
def get_call(call_id: str) -> Response:
    return jsonify(_record_json(_found(call_id)))


@bp.get("/calls/<call_id>/recording")
@operation("The call's recording (RECORD_CALLS): a WAV of both legs as FreeSWITCH recorded them",
           responses={200: None}, errors=(404,), content_type="audio/wav")
def get_recording(call_id: str) -> Response:
    return send_recording(_found(call_id))


@bp.delete("/calls/<call_id>")
@operation("Cancel a call: a queued one ends at once, a live one is hung up by its worker",
           responses={202: Accepted}, errors=(404, 409))
def cancel(call_id: str) -> Tuple[Response, int]:
    if _found(call_id).ended:
        raise ApiError(409, f"call {call_id} has already ended")
    try:
        rec = client().cancel(call_id)
    except CallNotFound:
        raise ApiError(404, f"no call {call_id}") from None
    return jsonify(Accepted(id=call_id, state=_api_state(rec)).model_dump()), 202


def _command(call_id: str, model: Type[BaseModel], data: BaseModel, kind: str) -> Tuple[Response, int]:
    try:
        cmd = model.model_validate({"type": kind, **data.model_dump(exclude_unset=True)})
    except ValidationError as exc:
        raise invalid(exc) from None
    rec = _found(call_id)
    if rec.ended:
        raise ApiError(404, f"call {call_id} has ended")
    try:
        client().send(call_id, cmd)
    except WorkerGone as exc:
        raise ApiError(409, str(exc)) from None
    except CallNotFound:
        raise ApiError(409, f"call {call_id} is not live ({_api_state(rec)}): nobody to give the command to") from None
    return jsonify(CommandAccepted(id=call_id, command=kind).model_dump()), 202


@bp.post("/calls/<call_id>/say")
@operation("Say words into a live call", body=Say, responses={202: CommandAccepted}, errors=(404, 409))
def say(call_id: str) -> Tuple[Response, int]:
    return _command(call_id, SayCommand, body(Say), "say")


@bp.post("/calls/<call_id>/hangup")
@operation("Hang up a live call", body=Hangup, responses={202: CommandAccepted}, errors=(404, 409))
def hangup(call_id: str) -> Tuple[Response, int]:
    return _command(call_id, HangupCommand, body(Hangup), "hangup")


@bp.post("/calls/<call_id>/transfer")
@operation("Transfer a live call to a dialplan extension", body=Transfer, responses={202: CommandAccepted},
           errors=(404, 409))
def transfer(call_id: str) -> Tuple[Response, int]:
    return _command(call_id, TransferCommand, body(Transfer), "transfer")
