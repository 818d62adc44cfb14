"""An outbound call's request inside the voice dialog: what the conversation is told, what it says
first, and the choice question's turns (matched by words or keys, never by the LLM)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Union

from ..dialog.events import HangupRequested, Say
from ..dialog.purpose import CallPurpose, ChoiceTracker, Step
from ..records.models import CallRequest
from .turns import Turn


class PurposeTurns:
    """Built from ``call.request`` (None for inbound calls and requests of another kind)."""

    def __init__(self, request: Optional[object]) -> None:
        self.purpose = CallPurpose(request) if isinstance(request, CallRequest) else None
        self.choice: Optional[ChoiceTracker] = self.purpose.choice if self.purpose is not None else None

    def conversation_kwargs(self) -> Dict[str, Any]:
        if self.purpose is None:
            return {}
        return {"instructions": self.purpose.instructions(), "opening": self.purpose.opening()}

    @property
    def asking(self) -> bool:
        """A choice question is open: the caller's next turn answers it."""
        return self.choice is not None and not self.choice.done

    def answer(self, turn: Turn, said: str = "", digit: str = "") -> Iterator[Union[Say, HangupRequested]]:
        """The agent's side of a choice turn: confirm and hang up, ask again, or give up."""
        assert self.choice is not None
        reply = self.choice.press(digit) if digit else self.choice.hear(said)
        turn.kind = "choice"
        if reply.step != Step.ASK_AGAIN:
            turn.choice = self.choice.answer
        yield Say(reply.say)
        if reply.step != Step.ASK_AGAIN:
            yield HangupRequested("choice settled")
