"""A tool run when an outbound call is answered (``CallRequest.tool``, e.g. a weather briefing).

The opening message and ``before`` are said at once, so the line is not silent while the tool runs;
the tool runs in the call's greenlet as the conversation runs its tools (the worker's registry,
TOOL_TIMEOUT, never raising); then its result as speech (dialog/tool_speech.py), ``after`` and the
choice question, if any.  A tool that fails or times out is logged once by the registry (with the
call id the log context binds) and a fixed apology is said instead; the call goes on.  The run is
in the record as the tool of the turn that said the result (so it is a ``call.tool`` event too),
and the whole opening is the conversation's greeting in the LLM's history.  A briefing (a tool, no
choice, no instructions) hangs up once the caller has heard it.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Optional

import gevent

from ..dialog.tool_speech import APOLOGY, spoken
from .playback import Playback
from .turns import Turn

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)


def open_with_tool(dialog: "VoiceDialog") -> Optional[Playback]:
    """Say the opening around the tool's result; the last playback (None if nothing was said)."""
    purpose = dialog.purpose.purpose
    conv = dialog.conv
    assert purpose is not None and purpose.request.tool is not None and conv is not None
    run = purpose.request.tool
    head, _ = purpose.tool_opening("")
    pb: Optional[Playback] = None
    if head:
        pb = dialog._say_fixed(head, kind="greeting", cache=False)  # plays while the tool runs
    # its own context: a hang-up or transfer the tool asks for here must not linger into the conversation
    ctx = dataclasses.replace(conv.ctx, on_hangup=None, on_transfer=None, hangup_reason=None, transfer_to=None,
                              extra={**conv.ctx.extra, "at_answer": True}, said=[])
    result = dialog.svc.kit.tools.run(run.name, run.arguments, ctx)
    speech = (result.speak or spoken(result.value)) if result.ok else APOLOGY  # a ToolReply's words verbatim
    if ctx.hangup_reason or ctx.transfer_to:
        log.info("tool %s asked to %s at answer: ignored (the call goes on as its request says)", run.name,
                 "hang up" if ctx.hangup_reason else "transfer")
    _, tail = purpose.tool_opening(speech)
    conv.opening = " ".join(p for p in (head, tail) if p)
    conv.greeting()  # the whole opening goes into the history, so the LLM knows what the caller heard
    if tail:
        pb = dialog._say_fixed(tail, kind="tool", cache=False)
        turn = dialog.turns[-1]  # reported once its playback is over, so the tool lands in the same record turn
        turn.tool_started(run.name, run.arguments)
        turn.tool_finished(run.name, result.value, result.ok)
    else:  # nothing to say (an empty result, no after, no question): the run is still recorded
        turn = Turn(index=len(dialog.turns) + 1, kind="tool")
        turn.tool_started(run.name, run.arguments)
        turn.tool_finished(run.name, result.value, result.ok)
        dialog.turns.append(turn)
        dialog.call.report_turn(turn)
    return pb


def hang_up_when_heard(dialog: "VoiceDialog", pb: Optional[Playback]) -> None:
    """A briefing is over once the caller has heard it."""
    call = dialog.call
    if pb is not None:
        gevent.wait([pb.finished, call.ended], count=1, timeout=pb.duration + 30)
    if not call.ended.is_set():
        log.info("briefing said: hanging up")
        dialog._hangup_requested = True
        call.hangup()
