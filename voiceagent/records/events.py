"""The call events: one typed model per lifecycle step, all on one Redis Stream.

The API, status webhooks, schedules, metrics and logs read the same facts from the stream.
Every event carries ``type`` (a literal), ``v`` (the schema version), ``call_id`` and ``at``
(wall-clock seconds); :func:`parse` turns a stream entry back into its model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .models import ChoiceAnswer, Outcome, ToolCallRecord

VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = VERSION
    call_id: str
    at: float
    worker: str = ""
    if TYPE_CHECKING:  # each event's own Literal field; declared for the type checker only (field order is the wire's)
        type: str


class CallRequested(_Event):
    type: Literal["call.requested"] = "call.requested"
    to: str
    request_deadline: float


class CallQueued(_Event):
    """In the RQ queue: dialed when a slot of CALL_CONCURRENCY_LIMIT is free (then ``call.requested``)."""

    type: Literal["call.queued"] = "call.queued"
    to: str
    priority: Literal["high", "bulk"]
    request_deadline: float
    attempt: int = 1
    previous_attempt: Optional[str] = None


class CallDialing(_Event):
    type: Literal["call.dialing"] = "call.dialing"
    to: str = ""
    node: str = ""


class CallRinging(_Event):
    type: Literal["call.ringing"] = "call.ringing"


class CallAnswered(_Event):
    type: Literal["call.answered"] = "call.answered"
    direction: Literal["inbound", "outbound"]
    from_: str = Field(default="", alias="from")
    to: str = ""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CallRefused(_Event):
    """An inbound call this worker did not take (busy, draining, overloaded, unconfirmed)."""

    type: Literal["call.refused"] = "call.refused"
    reason: str


class CallTurn(_Event):
    type: Literal["call.turn"] = "call.turn"
    index: int
    kind: str
    caller_text: str = ""
    agent_text: List[str] = Field(default_factory=list)
    interrupted: bool = False
    timings: Dict[str, float] = Field(default_factory=dict)


class CallTool(_Event):
    type: Literal["call.tool"] = "call.tool"
    tool: ToolCallRecord


class CallBargeIn(_Event):
    type: Literal["call.barge_in"] = "call.barge_in"


class CallDtmf(_Event):
    type: Literal["call.dtmf"] = "call.dtmf"
    digit: str


class CallChoice(_Event):
    type: Literal["call.choice"] = "call.choice"
    answer: ChoiceAnswer


class CallEnded(_Event):
    type: Literal["call.ended"] = "call.ended"
    outcome: Outcome
    duration: float = 0.0
    hangup_cause: str = ""
    ended_by: str = ""
    reason: str = ""


_MODELS = (CallQueued, CallRequested, CallDialing, CallRinging, CallAnswered, CallRefused, CallTurn, CallTool,
           CallBargeIn, CallDtmf, CallChoice, CallEnded)
CallEvent = Annotated[Union[CallQueued, CallRequested, CallDialing, CallRinging, CallAnswered, CallRefused, CallTurn,
                            CallTool, CallBargeIn, CallDtmf, CallChoice, CallEnded], Field(discriminator="type")]
_adapter: TypeAdapter[Any] = TypeAdapter(CallEvent)
TYPES = sorted(m.model_fields["type"].default for m in _MODELS)


def encode(event: _Event) -> Dict[str, str]:
    """Stream fields: the type (for cheap filtering) and the JSON of the whole event."""
    return {"type": event.type, "data": event.model_dump_json(by_alias=True)}


def parse(fields: Dict[Any, Any]) -> Optional[Any]:
    """A stream entry's event, or None for an entry this version cannot read (logged by the reader)."""
    raw = fields.get(b"data", fields.get("data"))
    if raw is None:
        return None
    try:
        return _adapter.validate_json(raw)
    except ValueError:
        return None
