"""The tools resource's request and response models (``api/tools.py``).

``ToolCall`` is ``POST /calls``'s body (:class:`models.PlaceCall`) plus the tool's ``arguments`` and the
``before``/``after`` text, whose definitions come from ``records.models.ToolRun``, so the OpenAPI
document and the request the dispatcher finally gets cannot disagree.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, Field

from ..records.models import CallRequest, ToolRun
from .models import PlaceCall, _Body, _like


class ToolInfo(BaseModel):
    """One tool of the registry."""

    name: str
    description: str
    parameters: Dict[str, Any] = Field(description="JSON schema of the tool's arguments (what the LLM sees).")
    enabled: bool = Field(description="Whether it can run here: not disabled, and not needing a call's profile "
                                      "(a transfer needs the profile's transfer targets, so it is false here).")
    disabled: bool = Field(default=False, description="TOOLS_DISABLED names it: no call is offered it, whatever "
                                                      "the profiles enable, and execute refuses it.")
    source: str = Field(description="The plugin file it was loaded from ('' for a tool added in code).")
    slow: bool = Field(description="The conversation says a 'thinking' phrase before running it.")


class ToolList(BaseModel):
    """GET /tools: every loaded tool, and what went wrong loading the others."""

    tools: List[ToolInfo]
    problems: List[str] = Field(description="Plugin problems: a file that failed to import (with its error), "
                                            "a duplicate name, a missing directory.")
    generation: Optional[int] = Field(default=None, description="The tools generation (POST /tools/reload) this "
                                                                "registry reflects; null when unknown (no Redis).")


class ExecuteTool(_Body):
    """POST /tools/{name}/execute: run the tool here; with ``call_id`` its result is also said into that call."""

    arguments: Dict[str, Any] = _like(ToolRun, "arguments")
    call_id: Optional[str] = Field(default=None, min_length=1, max_length=64,
                                   description="A live call to say the result into (as POST /calls/{id}/say).")


class ToolExecution(BaseModel):
    """A tool's run (200 whether or not the tool succeeded: ``ok`` says which)."""

    name: str
    ok: bool = Field(description="False when the tool raised or timed out; ``error`` says why.")
    result: Any = Field(default=None, description="What the tool returned (a string, object or list).")
    error: str = ""
    seconds: float
    speech: str = Field(description="The result as it is said on the phone ('' when it failed).")
    said_into: Optional[str] = Field(default=None, description="The call the speech was sent to, if any.")


class ToolCall(PlaceCall):
    """POST /tools/{name}/call: call someone and say the tool's result between ``before`` and ``after``."""

    arguments: Dict[str, Any] = _like(ToolRun, "arguments")
    before: str = _like(ToolRun, "before")
    after: str = _like(ToolRun, "after")

    def to_tool_request(self, name: str) -> CallRequest:
        """The records request with ``tool`` set (its validators run here: raises pydantic.ValidationError)."""
        data = self.model_dump(exclude_unset=True, exclude={"arguments", "before", "after"})
        data["tool"] = ToolRun(name=name, arguments=self.arguments, before=self.before, after=self.after)
        return CallRequest.model_validate(data)
