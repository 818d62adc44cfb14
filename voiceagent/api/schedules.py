"""The schedules resource: one-time and recurring calls (``voiceagent/schedules/``).

``POST /schedules`` checks the timing and the dial policy before anything is stored and arms the
first run; ``PATCH`` pauses, resumes or edits and re-arms; ``DELETE`` cancels the pending run.
The runs themselves are placed by ``voiceagent jobs worker``.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Dict, Optional, Tuple

from flask import Blueprint, Response, current_app, jsonify
from pydantic import ValidationError

from ..jobs.dispatch import Dispatcher
from ..records.dial_policy import DialRefused
from ..schedules.models import ScheduleEdit, SchedulePage, ScheduleQuery, ScheduleSpec, ScheduleView, ViewQuery
from ..schedules.service import Schedules
from ..schedules.store import ScheduleGone
from ..schedules.timing import TimingError
from .errors import ApiError, invalid
from .inputs import body, query
from .openapi import operation

bp = Blueprint("schedules", __name__)


def schedules() -> Schedules:
    """One per app, on the app's call client and dispatcher (built on first use)."""
    ext = current_app.extensions
    sv: Optional[Schedules] = ext.get("voiceagent.schedules")
    if sv is None:
        d: Dispatcher = ext["voiceagent.dispatcher"]
        sv = ext["voiceagent.schedules"] = Schedules.from_settings(ext["voiceagent.settings"], dispatcher=d)
    return sv


def _refused(exc: DialRefused) -> ApiError:
    return ApiError(422, f"call.{exc.field} refused by the dial policy",
                    [{"field": f"call.{exc.field}", "message": exc.message}])


def _timing(exc: TimingError) -> ApiError:
    return ApiError(422, f"invalid {exc.field}", [{"field": exc.field, "message": exc.message}])


def _view(sv: Schedules, schedule_id: str, next_count: int = 5, history: int = 50) -> Dict[str, Any]:
    try:
        view = sv.view(schedule_id, now=time.time(), next_count=next_count, history=history)
    except ScheduleGone:
        raise ApiError(404, f"no schedule {schedule_id}") from None
    out: Dict[str, Any] = view.model_dump(mode="json", exclude_none=False)
    return out


@bp.post("/schedules")
@operation("Create a one-time or recurring scheduled call; answers it with its next runs", body=ScheduleSpec,
           responses={201: ScheduleView})
def create() -> Tuple[Response, int, Dict[str, str]]:
    spec = body(ScheduleSpec)
    sv = schedules()
    try:
        sched = sv.create(spec, time.time())
    except DialRefused as exc:
        raise _refused(exc) from None
    except TimingError as exc:
        raise _timing(exc) from None
    return jsonify(_view(sv, sched.id)), 201, {"Location": f"/schedules/{sched.id}"}


def _encode(pos: Tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(pos)).encode()).decode().rstrip("=")


def _decode(cursor: str) -> Tuple[float, str]:
    try:
        t, sid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(t), str(sid)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(422, "cursor is not one this API gave out",
                       [{"field": "cursor", "message": "not a cursor from next_cursor"}]) from None


@bp.get("/schedules")
@operation("List schedules, oldest first (cursor paging)", query=ScheduleQuery, responses={200: SchedulePage})
def list_schedules() -> Response:
    q = query(ScheduleQuery)
    found, nxt = schedules().page(_decode(q.cursor) if q.cursor else None, q.limit)
    page = SchedulePage(schedules=found, next_cursor=_encode(nxt) if nxt else None)
    return jsonify(page.model_dump(mode="json"))


@bp.get("/schedules/<schedule_id>")
@operation("A schedule, its next runs (?next=N) and its run history with each run's call and outcome",
           query=ViewQuery, responses={200: ScheduleView}, errors=(404,))
def get_schedule(schedule_id: str) -> Response:
    q = query(ViewQuery)
    return jsonify(_view(schedules(), schedule_id, q.next, q.history))


@bp.patch("/schedules/<schedule_id>")
@operation("Pause, resume or edit a schedule (re-arms its next run)", body=ScheduleEdit,
           responses={200: ScheduleView}, errors=(404,))
def edit(schedule_id: str) -> Response:
    changes = body(ScheduleEdit)
    sv = schedules()
    try:
        sv.edit(schedule_id, changes, time.time())
    except ScheduleGone:
        raise ApiError(404, f"no schedule {schedule_id}") from None
    except ValidationError as exc:
        raise invalid(exc) from None
    except DialRefused as exc:
        raise _refused(exc) from None
    except TimingError as exc:
        raise _timing(exc) from None
    return jsonify(_view(sv, schedule_id))


@bp.delete("/schedules/<schedule_id>")
@operation("Delete a schedule; its pending run is cancelled and never fires", responses={204: None},
           errors=(404,), content_type="text/plain")
def delete(schedule_id: str) -> Tuple[str, int]:
    if not schedules().delete(schedule_id):
        raise ApiError(404, f"no schedule {schedule_id}")
    return "", 204
