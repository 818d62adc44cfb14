"""The tools resource: list the tool registry, run a tool here, or call someone with its result.

The registry is the voice worker's (``ToolRegistry.from_settings``: TOOLS_DIRS, TOOL_TIMEOUT), loaded
when the app is made and again after ``POST /tools/reload`` (here or in any process: the tools generation
in Redis, dialog/tool_reload.py). A tool TOOLS_DISABLED names is listed (``disabled``) but never run.
``execute`` runs the tool in the API process with a ToolContext that has no call: a tool that asks to
hang up or transfer is stopped and answered 409 (there is no call to act on), and one that cannot work
without a call's profile (``available(None)`` is false) is refused 409 before it runs. A tool that raises
or times out is a 200 with ``ok: false`` and its error: the request was fine, the tool's answer is the
data (as the LLM gets it), so a 5xx stays reserved for this API's own faults. ``call`` checks the tool
and its arguments (422) before anything is queued, then submits a ``CallRequest`` with
``tool=ToolRun(...)`` through the dispatcher; the voice worker runs the tool when the call is answered.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Tuple

import redis
from flask import Blueprint, Response, current_app, jsonify
from pydantic import ValidationError

from ..calls.inbox import CallNotFound, WorkerGone
from ..calls.inbox_commands import SAY_MAX_CHARS, SayCommand
from ..dialog.tool_reload import ReloadReport, ToolSet, bump_generation
from ..dialog.tool_speech import spoken
from ..dialog.tools import Tool, ToolContext, ToolRegistry
from ..records.dial_policy import DialRefused
from .calls import client, dispatcher
from .errors import ApiError, field_errors, invalid
from .inputs import body
from .models import Accepted
from .openapi import operation
from .tool_models import ExecuteTool, ToolCall, ToolExecution, ToolInfo, ToolList

bp = Blueprint("tools", __name__)
log = logging.getLogger(__name__)


class _NeedsCall(BaseException):
    """Raised inside a tool that asks the call to hang up or transfer.  A BaseException on purpose:
    the registry turns every Exception into a failed result, and this must stop the tool, not fail it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def tool_set() -> ToolSet:
    live: ToolSet = current_app.extensions["voiceagent.tools"]
    return live


def registry() -> ToolRegistry:
    """The current registry, reloaded first if another process asked for a reload (a Redis outage
    serves the one this process has)."""
    live = tool_set()
    try:
        live.follow(client().r, client().keys)
    except redis.RedisError as exc:
        log.warning("tools generation unreadable (%s): serving the tools loaded before", exc)
    return live.current


def _info(t: Tool, reg: ToolRegistry) -> ToolInfo:
    disabled = t.name in reg.disabled
    return ToolInfo(name=t.name, description=t.description, parameters=t.spec()["function"]["parameters"],
                    enabled=t.available(None) and not disabled, disabled=disabled, source=t.source, slow=t.slow)


def _known(name: str, status: int = 404) -> Tool:
    t = registry().get(name)
    if t is None:
        known = ", ".join(registry().names()) or "none"
        fields = [{"field": "name", "message": f"no such tool (known: {known})"}] if status == 422 else []
        raise ApiError(status, f"no tool {name!r} (known: {known})", fields)
    return t


def _check_arguments(t: Tool, arguments: Dict[str, Any]) -> None:
    """422 naming each bad argument as ``arguments.<field>``."""
    try:
        t.params.model_validate(arguments)
    except ValidationError as exc:
        fields = [{"field": "arguments" + ("." + f["field"] if f["field"] != "(body)" else ""),
                   "message": f["message"]} for f in field_errors(exc)]
        raise ApiError(422, f"invalid arguments for {t.name}: " + ", ".join(f["field"] for f in fields),
                       fields) from None


@bp.get("/tools")
@operation("The tool registry: each tool's description, argument schema and source, and plugin problems",
           responses={200: ToolList})
def list_tools() -> Response:
    reg = registry()
    tools: List[ToolInfo] = [_info(t, reg) for n in reg.names() if (t := reg.get(n)) is not None]
    return jsonify(ToolList(tools=tools, problems=list(reg.errors), generation=tool_set().generation).model_dump())


@bp.post("/tools/reload")
@operation("Reload the tool plugins from TOOLS_DIRS in every process (no restart: live calls go on, their next "
           "LLM turn sees the new tools); 202 with what changed here", responses={202: ReloadReport}, errors=(503,))
def reload_tools() -> Tuple[Response, int]:
    live = tool_set()
    try:
        generation = bump_generation(client().r, client().keys)
    except redis.RedisError as exc:
        raise ApiError(503, f"Redis is unavailable ({exc}): nothing was reloaded") from None
    report = live.reload(generation)
    return jsonify(report.model_dump()), 202


@bp.get("/tools/<name>")
@operation("One tool: description, argument schema, whether it can run here, where it was loaded from",
           responses={200: ToolInfo}, errors=(404,))
def get_tool(name: str) -> Response:
    return jsonify(_info(_known(name), registry()).model_dump())


def _live(call_id: str) -> None:
    rec = client().get(call_id)
    if rec is None or rec.ended:
        raise ApiError(404, f"no live call {call_id}", [{"field": "call_id", "message": "no such live call"}])


@bp.post("/tools/<name>/execute")
@operation("Run a tool in the API process (200 with ok=false when the tool fails); with call_id, "
           "also say its result into that live call", body=ExecuteTool, responses={200: ToolExecution},
           errors=(404, 409))
def execute(name: str) -> Response:
    t = _known(name)
    data = body(ExecuteTool)
    _check_arguments(t, data.arguments)
    if name in registry().disabled:
        raise ApiError(409, f"tool {name} is disabled (TOOLS_DISABLED): it was not run")
    if not t.available(None):
        raise ApiError(409, f"tool {name} needs a call's profile (it is only offered on lines where it works): "
                            "it cannot run from the API")
    if data.call_id is not None:
        _live(data.call_id)

    def refuse(what: str) -> None:
        raise _NeedsCall(what)

    ctx = ToolContext(call_id=data.call_id or "", direction="api", on_hangup=lambda reason: refuse("hang up"),
                      on_transfer=lambda dest: refuse(f"transfer to {dest}"))
    try:
        result = registry().run(name, data.arguments, ctx)
    except _NeedsCall as exc:
        raise ApiError(409, f"tool {name} needs a live call (it asked to {exc.what}); nothing was done") from None
    out = ToolExecution(name=name, ok=result.ok, seconds=round(result.seconds, 4), speech="")
    if not result.ok:
        error = result.value.get("error") if isinstance(result.value, dict) else result.value
        out.error = str(error)
        return jsonify(out.model_dump())
    out.result = json.loads(json.dumps(result.value, default=str))  # a datetime or an object in it: as its text
    out.speech = result.speak or spoken(result.value)  # a ToolReply's words as they are said in a call
    if data.call_id is not None and out.speech:
        _say(data.call_id, out.speech)
        out.said_into = data.call_id
    return jsonify(out.model_dump(mode="json"))


def _say(call_id: str, text: str) -> None:
    cmd = SayCommand(type="say", text=text[:SAY_MAX_CHARS])
    try:
        client().send(call_id, cmd)
    except WorkerGone as exc:
        raise ApiError(409, f"{exc}: the tool ran but its result was not said") from None
    except CallNotFound:
        raise ApiError(409, f"call {call_id} is not live: the tool ran but its result was not said") from None


@bp.post("/tools/<name>/call")
@operation("Call someone and say the tool's result (run when the call is answered) between before and after",
           body=ToolCall, responses={202: Accepted}, errors=())
def call_with(name: str) -> Tuple[Response, int, Dict[str, str]]:
    t = _known(name, status=422)
    if name in registry().disabled:
        raise ApiError(422, f"tool {name} is disabled (TOOLS_DISABLED)", [{"field": "name", "message": "disabled"}])
    wanted = body(ToolCall)
    _check_arguments(t, wanted.arguments)
    try:
        req = wanted.to_tool_request(t.name)
    except ValidationError as exc:
        raise invalid(exc) from None
    try:
        call_id = dispatcher().submit(req, priority="high")
    except DialRefused as exc:
        raise ApiError(422, f"{exc.field} refused by the dial policy",
                       [{"field": exc.field, "message": exc.message}]) from None
    rec = client().get(call_id)
    state = "queued" if rec is None or rec.state == "requested" else rec.state
    return jsonify(Accepted(id=call_id, state=state).model_dump()), 202, {"Location": f"/calls/{call_id}"}
