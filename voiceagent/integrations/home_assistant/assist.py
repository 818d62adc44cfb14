"""Assist delegation: the caller's request goes to ``POST /api/conversation/process`` and Assist's own words
(``response.speech.plain.speech``) are spoken back; its ``conversation_id`` is kept for the call so a follow-up
("and the kitchen too?") continues the same conversation.  Only what the user exposed to Assist is reachable.

``response_type`` is ``action_done``, ``query_answer`` or ``error`` (``data.code``: ``no_intent_match``,
``no_valid_targets``, ``failed_to_handle``, ``unknown``); an answer without speech gets a sentence of ours.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voiceagent.dialog.tool_support import ToolReply

from .client import UNREACHABLE, HaClient, Unavailable

CONVERSATION_KEY = "home_assistant.conversation_id"  # in ctx.extra: the call's Assist conversation

ERROR_WORDS = {
    "no_intent_match": "Sorry, Home Assistant didn't understand that request.",
    "no_valid_targets": "Sorry, Home Assistant couldn't find a device by that name, or it isn't shared with me.",
    "failed_to_handle": "Sorry, Home Assistant ran into a problem doing that.",
    "unknown": "Sorry, something went wrong in Home Assistant.",
}
DONE_WORDS = "Done."
ANSWER_WORDS = "Home Assistant had no answer to that."


class _Plain(BaseModel):
    model_config = ConfigDict(extra="ignore")
    speech: str = ""


class _Speech(BaseModel):
    model_config = ConfigDict(extra="ignore")
    plain: Optional[_Plain] = None


class AssistResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    response_type: str = "error"
    language: str = ""
    speech: _Speech = Field(default_factory=_Speech)
    data: Dict[str, Any] = Field(default_factory=dict)


class AssistAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    response: AssistResponse
    conversation_id: Optional[str] = None
    continue_conversation: bool = False


def ask(client: HaClient, ctx: Any, request: str, language: str) -> ToolReply:
    """One request to Assist in this call's conversation, as a reply spoken word for word."""
    try:
        raw = client.converse(request, language, ctx.extra.get(CONVERSATION_KEY))
        answer = AssistAnswer.model_validate(raw)
    except Unavailable as exc:
        return ToolReply(text=f"Home Assistant was not asked: {exc.why}.", speak=exc.spoken,
                         data={"error": exc.why, "mode": "assist"})
    except ValidationError as exc:
        why = f"Assist's answer is not a conversation response ({exc.error_count()} problem(s))"
        return ToolReply(text=f"No answer: {why}.", speak=UNREACHABLE, data={"error": why, "mode": "assist"})
    if answer.conversation_id:
        ctx.extra[CONVERSATION_KEY] = answer.conversation_id
    resp = answer.response
    said = resp.speech.plain.speech.strip() if resp.speech.plain else ""
    code = str(resp.data.get("code") or "") if resp.response_type == "error" else ""
    if resp.response_type == "error":
        speak = said or ERROR_WORDS.get(code, ERROR_WORDS["unknown"])
        text = f"Home Assistant could not do it ({code or 'error'}); the caller heard why."
    elif resp.response_type == "query_answer":
        speak = said or ANSWER_WORDS
        text = "Home Assistant answered the question; the caller heard the answer."
    else:
        speak = said or DONE_WORDS
        text = "Home Assistant did it; the caller heard the confirmation."
    data: Dict[str, Any] = {"mode": "assist", "request": request, "response_type": resp.response_type,
                            "speech": said, "conversation_id": answer.conversation_id}
    if code:
        data["code"] = code
    for key in ("success", "failed"):
        items = resp.data.get(key)
        if isinstance(items, list):
            data[key] = [i.get("id") for i in items if isinstance(i, dict)]
    return ToolReply(text=text, speak=speak, data=data)
