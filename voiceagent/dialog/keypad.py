"""A tool may claim the keypad for a moment: the digits then go to it, not to the LLM or the profile's keys.

The Home Assistant plugin asks "Are you sure you want to unlock the front door? Press 1 for yes, 2 for no"
(or "enter your PIN, then pound"): the answer must reach the pending action itself, digit by digit, and a PIN
must never pass through the LLM.  ``ctx.claim_keypad(claim)`` hands the call's next digits to
``claim.press(digit) -> KeypadStep``; a step that is ``done`` gives the keypad back.  A step may report an
action the digits ran (recorded in the turn as a tool run) and words to say; what the history keeps is
``heard`` (never the digits) and the words.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Protocol

from .events import Event, Say, ToolFinished, ToolStarted

if TYPE_CHECKING:
    from .conversation import Conversation

log = logging.getLogger(__name__)


@dataclass
class KeypadStep:
    speak: str = ""                 # said now ('' while a PIN is being typed)
    done: bool = True               # the claim ends: the next digit is the profile's again
    heard: str = "The caller answered on the keypad."  # the user message the history keeps
    tool: Optional[str] = None      # an action the digits ran, recorded as this tool's run
    value: Any = None
    ok: bool = True


class KeypadClaim(Protocol):
    def press(self, digit: str) -> KeypadStep: ...


def keypad_events(conv: "Conversation", digit: str) -> Iterator[Event]:
    """The claimed keypad's answer to ``digit`` (a failing claim is released and apologised for)."""
    ctx = conv.ctx
    claim = ctx.keypad
    try:
        step = claim.press(digit)
    except Exception:  # noqa: BLE001 - a plugin's keypad handler must not end the call
        log.exception("keypad claim %r failed", claim)
        step = KeypadStep(speak=conv.profile.phrases.apology)
    if step.done and ctx.keypad is claim:
        ctx.keypad = None
    if step.tool:
        yield ToolStarted(step.tool, {"keypad": True})
        yield ToolFinished(step.tool, step.value, step.ok)
    if step.speak:
        conv._turns.append([{"role": "user", "content": step.heard},
                            {"role": "assistant", "content": step.speak}])
        yield Say(step.speak, kind="reply")
