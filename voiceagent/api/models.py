"""The API's own request and response models, mapped onto the records and command models.

Each body model takes its fields' definitions (types, bounds, descriptions) from the model it
maps onto (``records.models.CallRequest``, ``calls.inbox_commands``), so the OpenAPI document
and the validation of the request the client finally builds cannot disagree.  The body model
checks the shape (unknown fields are errors); the target model's validators run after it.
"""
from __future__ import annotations

import copy
from datetime import datetime
from typing import Annotated, Any, Dict, List, Literal, Optional, Type

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.fields import FieldInfo

from ..calls.inbox_commands import HangupCommand, SayCommand, TransferCommand
from ..records.models import CallRequest, ChoiceQuestion, Outcome, RecordState, RetryPolicy

MAX_PAGE = 100


def _like(model: Type[BaseModel], name: str) -> Any:
    """The definition of ``model``'s field ``name`` (a copy: pydantic may complete it in place)."""
    info: FieldInfo = copy.copy(model.model_fields[name])
    return info


def _seconds(v: Any) -> Any:
    """Unix seconds from a number or an ISO 8601 time with a zone (a zoneless time would be a guess)."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("expected Unix seconds or an ISO 8601 time with zone") from None
        if t.tzinfo is None:
            raise ValueError("an ISO 8601 time needs a zone (Z or +hh:mm)")
        return t.timestamp()
    return v


#: A moment as Unix seconds (the query string may give it as an ISO 8601 time with zone).
Instant = Annotated[float, BeforeValidator(_seconds)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlaceCall(_Body):
    """POST /calls: an outbound call (the Idempotency-Key header makes a retry safe)."""

    to: str = _like(CallRequest, "to")
    caller_id_number: Optional[str] = _like(CallRequest, "caller_id_number")
    caller_id_name: Optional[str] = _like(CallRequest, "caller_id_name")
    profile: Optional[str] = _like(CallRequest, "profile")
    message: Optional[str] = _like(CallRequest, "message")
    instructions: Optional[str] = _like(CallRequest, "instructions")
    choice: Optional[ChoiceQuestion] = _like(CallRequest, "choice")
    variables: Dict[str, str] = _like(CallRequest, "variables")
    ring_timeout: int = _like(CallRequest, "ring_timeout")
    max_duration: Optional[float] = _like(CallRequest, "max_duration")
    webhook_url: Optional[str] = _like(CallRequest, "webhook_url")
    retry: Optional[RetryPolicy] = _like(CallRequest, "retry")

    def to_request(self, idempotency_key: Optional[str]) -> CallRequest:
        """The records request (its validators run here: raises pydantic.ValidationError)."""
        data = self.model_dump(exclude_unset=True)
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        return CallRequest.model_validate(data)


class Say(_Body):
    """POST /calls/{id}/say: words the agent says into the live call."""

    text: str = _like(SayCommand, "text")


class Hangup(_Body):
    """POST /calls/{id}/hangup."""

    cause: str = _like(HangupCommand, "cause")


class Transfer(_Body):
    """POST /calls/{id}/transfer: to an extension of the dialplan."""

    destination: str = _like(TransferCommand, "destination")


class CallQuery(_Body):
    """GET /calls: filters and the page."""

    state: Optional[RecordState] = Field(default=None, description="Only calls in this state.")
    direction: Optional[Literal["inbound", "outbound"]] = None
    outcome: Optional[Outcome] = None
    number: Optional[str] = Field(default=None, max_length=128, description="Only calls to or from this number.")
    since: Optional[Instant] = Field(default=None, description="Created at or after: Unix seconds or an ISO 8601 "
                                     "time with zone (e.g. 2025-03-01T08:00:00Z).")
    until: Optional[Instant] = Field(default=None, description="Created at or before (as since).")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")
    cursor: Optional[str] = Field(default=None, max_length=200, description="next_cursor of the previous page.")


class Accepted(BaseModel):
    """A call placed (202): its id is the FreeSWITCH channel uuid it will have."""

    id: str
    state: str = Field(description="'queued' until a voice worker takes it, then the record's state.")


class CommandAccepted(BaseModel):
    """A command queued for the call's worker (202)."""

    id: str
    command: str


class CallPage(BaseModel):
    """GET /calls: records newest first; ``next_cursor`` is null on the last page."""

    calls: List[Dict[str, Any]] = Field(description="CallRecord objects (see GET /calls/{id}).")
    next_cursor: Optional[str] = None


#: An ESL link's state as the voice worker's heartbeat reports it (calls/node_link.NodeLink.status).
LinkState = Literal["connected", "reconnecting", "down"]


class NodeLinkHealth(BaseModel):
    node: str
    state: LinkState = Field(description="down: never connected since the worker started (or stopped); "
                                         "reconnecting: the connection was lost and is being retried.")
    since: float = Field(description="Wall-clock seconds the link has been in this state.")


class WorkerHealth(BaseModel):
    id: str
    calls: int
    max_calls: int
    room: int
    draining: bool
    seen: float = Field(description="Wall-clock seconds of its last heartbeat.")
    nodes: List[NodeLinkHealth] = Field(default_factory=list, description="Its ESL link to each FreeSWITCH node.")


class NodeHealth(BaseModel):
    """A FreeSWITCH node across the live workers: connected while at least one of them is."""

    name: str
    state: LinkState = Field(description="connected if any live worker is; else reconnecting if any worker "
                                         "is retrying; else down.")
    since: float = Field(description="The earliest 'since' of the workers in that state.")
    workers: Dict[str, LinkState] = Field(description="Each live worker's link to it.")


class Health(BaseModel):
    """GET /health: 200 while Redis answers, 503 otherwise."""

    status: Literal["ok", "no_workers", "down"]
    redis: bool
    workers: List[WorkerHealth] = Field(default_factory=list)
    nodes: List[NodeHealth] = Field(default_factory=list, description="Every node a live worker serves, with "
                                    "its state; one no live worker is connected to is reconnecting or down.")
    pending_requests: Optional[int] = None
    queued: Dict[str, int] = Field(default_factory=dict, description="Calls waiting in the queue for a call slot, "
                                   "per priority (high, bulk).")
    error: str = ""


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: List[FieldProblem] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail
