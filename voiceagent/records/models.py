"""The call request and the call record: pydantic models shared by every process.

A request is what a caller of :meth:`client.CallClient.place` asks for; the record is what
happened, written by the voice worker that took the call and kept after hangup for
``CALL_RETENTION_DAYS``.  Both are validated strictly (unknown fields are errors), because
requests come from the API and webhooks and records are read back from Redis.
"""
from __future__ import annotations

import enum
import re
import uuid as uuidlib
from typing import Any, Dict, List, Literal, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# numbers, extensions or SIP URIs a gateway can dial; no spaces, quotes or FreeSWITCH syntax ({}[],|)
_DIALABLE = re.compile(r"^(\+?[0-9*#]{1,32}|sips?:[A-Za-z0-9_.!~*'()&=+$;?/%-]+@[A-Za-z0-9.:\[\]-]+)$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DIGITS = "0123456789*#"


class Outcome(str, enum.Enum):
    """How an attempt ended; the same words as telephony's hangup-cause table."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def of(cls, value: str) -> "Outcome":
        """The outcome a word names; anything unknown is ``failed`` (never mistaken for a person's answer)."""
        return cls(value) if value in cls._value2member_map_ else cls.FAILED


#: A record's state: the worker's call states plus those a request has before a worker takes it
#: (``queued``: in the RQ queue, waiting for a slot of CALL_CONCURRENCY_LIMIT; ``requested``: handed to
#: the voice workers).
RecordState = Literal["queued", "requested", "claimed", "dialing", "ringing", "answered", "offered", "confirmed",
                      "answering", "active", "ending", "ended"]
TERMINAL = "ended"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ChoiceOption(_Strict):
    """One answer to a choice question: said as one of ``words`` or pressed as ``digit``."""

    value: str = Field(min_length=1, max_length=64, description="What lands in the record, e.g. 'yes'.")
    words: List[str] = Field(default_factory=list, max_length=20,
                             description="Spoken forms that mean this option (the value itself always counts).")
    digit: Optional[str] = Field(default=None, description="DTMF key for this option (0-9, * or #).")

    @field_validator("digit")
    @classmethod
    def _digit(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (len(v) != 1 or v not in _DIGITS):
            raise ValueError("must be one DTMF key: 0-9, * or #")
        return v

    @field_validator("words")
    @classmethod
    def _words(cls, v: List[str]) -> List[str]:
        out = [w.strip().lower() for w in v if w.strip()]
        if any(len(w) > 64 for w in out):
            raise ValueError("each word must be at most 64 characters")
        return out


class ChoiceQuestion(_Strict):
    """A multiple-choice question the call asks and records the answer to (voice or DTMF)."""

    question: str = Field(min_length=1, max_length=500,
                          description="Spoken as is, e.g. 'Will you come? Say yes or press 1.'")
    options: List[ChoiceOption] = Field(min_length=2, max_length=9)
    attempts: int = Field(default=3, ge=1, le=5, description="How many times the question is asked before giving up.")
    reprompt: str = Field(default="Sorry, I didn't get that.", max_length=300, description="Said before asking again.")
    confirmation: str = Field(default="Thank you, I have noted: {value}. Goodbye.", max_length=300,
                              description="Said once answered; {value} is the chosen option's value.")

    @model_validator(mode="after")
    def _distinct(self) -> "ChoiceQuestion":
        values = [o.value.lower() for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError("option values must be distinct")
        digits = [o.digit for o in self.options if o.digit]
        if len(set(digits)) != len(digits):
            raise ValueError("option digits must be distinct")
        return self


class ToolRun(_Strict):
    """A tool the call runs once it is answered; what it returns is said between ``before`` and ``after``
    (a weather briefing: the ``get_weather`` tool, "Good morning." before, "Have a nice day." after)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="A tool of the registry (GET /tools).")
    arguments: Dict[str, Any] = Field(default_factory=dict, description="The tool's arguments (its JSON schema).")
    before: str = Field(default="", max_length=1000, description="Said before the tool's result.")
    after: str = Field(default="", max_length=1000, description="Said after the tool's result.")


class RetryRule(_Strict):
    """Try again after an attempt ended with one outcome."""

    attempts: int = Field(ge=1, le=10, description="Retries after this outcome: attempt n (1-based) that ended "
                          "so is followed by another while n <= attempts.")
    delay_seconds: float = Field(default=60.0, ge=1, le=6 * 3600, description="Wait before the next attempt.")


class RetryPolicy(_Strict):
    """Per outcome, whether a queued call is tried again (answered, invalid_number, canceled never are)."""

    busy: Optional[RetryRule] = None
    no_answer: Optional[RetryRule] = None
    rejected: Optional[RetryRule] = None
    failed: Optional[RetryRule] = None

    def rule(self, outcome: "Outcome") -> Optional[RetryRule]:
        r: Optional[RetryRule] = getattr(self, outcome.value, None) if outcome.value in type(self).model_fields \
            else None
        return r


class CallRequest(_Strict):
    """An outbound call any process may ask for; exactly one voice worker dials it."""

    to: str = Field(description="Number, extension or SIP URI to dial (through GATEWAY unless a URI).")
    caller_id_number: Optional[str] = Field(default=None, description="Default: CALLER_ID_NUMBER.")
    caller_id_name: Optional[str] = Field(default=None, max_length=64, description="Default: CALLER_ID_NAME.")
    gateway: Optional[str] = Field(default=None, description="SIP gateway name; default ORIGINATE_GATEWAY.")
    node: Optional[str] = Field(default=None, description="FreeSWITCH node to dial from; default any the worker has.")
    profile: Optional[str] = Field(default=None, description="Dialog profile for the conversation.")
    message: Optional[str] = Field(default=None, max_length=2000, description="Opening message, said when answered.")
    instructions: Optional[str] = Field(default=None, max_length=4000,
                                        description="What the call is for: added to the conversation's prompt.")
    choice: Optional[ChoiceQuestion] = Field(default=None, description="A question whose answer is recorded.")
    tool: Optional[ToolRun] = Field(default=None, description="A tool run when the call is answered; its result "
                                    "is said after the opening message.")
    variables: Dict[str, str] = Field(default_factory=dict, description="Values for {name} placeholders in "
                                      "message, instructions and the choice question.")
    ring_timeout: int = Field(default=30, ge=5, le=300, description="Seconds to ring before no_answer.")
    max_duration: Optional[float] = Field(default=None, gt=0, le=4 * 3600,
                                          description="Longest the call may last, ringing included; "
                                                      "default MAX_CALL_SECONDS.")
    deadline_seconds: float = Field(default=120.0, gt=0, le=86400,
                                    description="A request no worker has taken after this long fails.")
    idempotency_key: Optional[str] = Field(default=None, min_length=1, max_length=128,
                                           description="Placing the same key again returns the first call's id.")
    retry: Optional[RetryPolicy] = Field(default=None, description="Queued calls only: try again after busy, "
                                         "no_answer, rejected or failed, each attempt a new call linked to the last.")
    webhook_url: Optional[str] = Field(default=None, max_length=2000,
                                       description="http(s) URL this call's status events are POSTed to "
                                                   "(queued, dialing, ringing, answered, ended).")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError("must be an http or https URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in v):
            raise ValueError("must be an http or https URL with a host")
        return v

    @field_validator("to", "caller_id_number")
    @classmethod
    def _dialable(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _DIALABLE.match(v):
            raise ValueError("must be digits (optionally +, *, #) or a sip: URI")
        return v

    @field_validator("gateway", "node", "profile")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _NAME.match(v):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
        return v

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: Dict[str, str]) -> Dict[str, str]:
        if len(v) > 50:
            raise ValueError("at most 50 variables")
        for name, value in v.items():
            if not _VARIABLE.match(name):
                raise ValueError(f"variable name {name!r} must be an identifier")
            if len(value) > 1000:
                raise ValueError(f"variable {name!r} is longer than 1000 characters")
        return v

    def fill(self, text: str) -> str:
        """``text`` with {name} replaced by the request's variables (unknown names stay as written)."""
        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: self.variables.get(m.group(1), m.group(0)), text)


class StateChange(_Strict):
    state: str
    at: float = Field(description="Wall-clock seconds.")


class DtmfRecord(_Strict):
    digit: str
    at: float


class ToolCallRecord(_Strict):
    name: str
    arguments: Dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    ok: bool = True


class TurnRecord(_Strict):
    """One turn of the transcript."""

    index: int
    kind: str = "speech"                                   # speech | dtmf | greeting | command | choice
    at: float = 0.0                                        # wall-clock end of the turn
    caller_text: str = ""                                  # what the caller said (normalised)
    caller_raw: str = ""                                   # Whisper's raw text
    agent_text: List[str] = Field(default_factory=list)    # sentences the agent said (handed to FreeSWITCH)
    heard: List[str] = Field(default_factory=list)         # what the caller actually heard; a cut one ends in ' —'
    interrupted: bool = False
    ack: str = ""
    tools: List[ToolCallRecord] = Field(default_factory=list)
    timings: Dict[str, float] = Field(default_factory=dict)


class ChoiceAnswer(_Strict):
    value: Optional[str] = Field(default=None, description="The chosen option; None if never answered.")
    raw: str = Field(default="", description="What the caller said or pressed.")
    via: Optional[Literal["voice", "dtmf"]] = None
    attempts: int = 0


class CallRecord(_Strict):
    """Everything known about one call, inbound or outbound."""

    id: str
    direction: Literal["inbound", "outbound"]
    state: str = "requested"
    from_: str = Field(default="", alias="from")
    to: str = ""
    node: str = ""
    worker: str = ""
    profile: Optional[str] = None
    request: Optional[CallRequest] = None
    created: float = 0.0
    history: List[StateChange] = Field(default_factory=list)
    outcome: Optional[Outcome] = None
    reason: str = ""                   # why it failed (no worker, worker died, originate error ...)
    hangup_cause: str = ""
    ended_by: str = ""                 # caller | agent | system
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    duration: Optional[float] = None   # seconds from answer to hangup (0 when never answered)
    turns: List[TurnRecord] = Field(default_factory=list)
    dtmf: List[DtmfRecord] = Field(default_factory=list)
    barge_ins: List[float] = Field(default_factory=list)
    choice: Optional[ChoiceAnswer] = None
    recording: Optional[str] = None    # file name in RECORDINGS_DIR when RECORD_CALLS had FreeSWITCH record it
    cancel_requested: bool = False
    # the queue (jobs/): priority, when the attempt may be dialed, the attempts of one request
    priority: Optional[Literal["high", "bulk"]] = None
    due: Optional[float] = None        # a retry waits until then; deadlines count from it (else from created)
    attempt: int = 1
    first_attempt: Optional[str] = None
    previous_attempt: Optional[str] = None
    next_attempt: Optional[str] = None
    traceparent: str = ""              # W3C trace context of what placed it, then of the job that handed it over

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @property
    def ended(self) -> bool:
        return self.state == TERMINAL

    @property
    def deadline(self) -> float:
        """When a request nobody dialed fails (counted from ``due`` for a retry waiting to be dialed)."""
        start = self.due if self.due is not None else self.created
        return start + (self.request.deadline_seconds if self.request is not None else 0.0)

    def reached(self, state: str) -> bool:
        return any(h.state == state for h in self.history)

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True)


def new_call_id() -> str:
    """A call id is the FreeSWITCH channel uuid, chosen before dialing (origination_uuid)."""
    return str(uuidlib.uuid4())
