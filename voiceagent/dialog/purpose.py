"""Why an outbound call was placed: its opening, its instructions, and a choice question.

The request (``records.models.CallRequest``) reaches the conversation through this module:
``opening()`` is said when the callee answers, ``instructions()`` joins the system prompt, and
a :class:`ChoiceTracker` asks a multiple-choice question, matches what the callee says or
presses, and re-asks up to the question's ``attempts``.  Matching is by words, not by the LLM,
so the recorded answer is exactly what was said or pressed.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..records.models import CallRequest, ChoiceAnswer, ChoiceOption, ChoiceQuestion

# spoken forms that mean the usual values, besides the value itself and the option's own words
_SYNONYMS: Dict[str, List[str]] = {
    "yes": ["yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "i will", "of course",
            "absolutely", "definitely", "confirm", "confirmed"],
    "no": ["no", "nope", "nah", "not", "never", "cancel", "i won't", "i can't", "i cannot", "decline"],
}
_DIGIT_WORDS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
                "7": "seven", "8": "eight", "9": "nine", "*": "star", "#": "pound"}


def _norm(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("’", "'")).strip() + " "


def _forms(opt: ChoiceOption) -> List[str]:
    forms = [opt.value.lower(), *opt.words, *_SYNONYMS.get(opt.value.lower(), [])]
    if opt.digit:
        forms += [opt.digit, _DIGIT_WORDS[opt.digit], f"press {_DIGIT_WORDS[opt.digit]}"]
    return sorted({f for f in forms if f}, key=len, reverse=True)


class Step(str, enum.Enum):
    ANSWERED = "answered"   # say the confirmation, then hang up
    ASK_AGAIN = "ask_again"  # say the reprompt and the question
    GAVE_UP = "gave_up"     # no usable answer after every attempt: say goodbye, hang up


@dataclass
class Reply:
    step: Step
    say: str


class ChoiceTracker:
    """The question's state on one call: attempts so far and the answer, once there is one."""

    GOODBYE = "I'm sorry, I could not get an answer. Goodbye."

    def __init__(self, question: ChoiceQuestion, request: Optional[CallRequest] = None) -> None:
        self.q = question
        self._fill = request.fill if request is not None else (lambda s: s)
        self.attempts = 1  # the question is asked once with the opening
        self.answer = ChoiceAnswer(attempts=1)
        self._forms = [(opt, _forms(opt)) for opt in question.options]

    @property
    def question(self) -> str:
        return self._fill(self.q.question)

    @property
    def done(self) -> bool:
        return self.answer.value is not None or self.attempts > self.q.attempts

    def match(self, text: str) -> Optional[ChoiceOption]:
        """The one option ``text`` names (None when none or several do)."""
        said = _norm(text)
        hits = {opt.value for opt, forms in self._forms if any(f" {f} " in said for f in forms)}
        if len(hits) != 1:
            return None
        return next(opt for opt in self.q.options if opt.value in hits)

    def hear(self, text: str) -> Reply:
        return self._settle(self.match(text), text, "voice")

    def press(self, digit: str) -> Reply:
        opt = next((o for o in self.q.options if o.digit == digit), None)
        return self._settle(opt, digit, "dtmf")

    def _settle(self, opt: Optional[ChoiceOption], raw: str, via: str) -> Reply:
        if opt is not None:
            self.answer = ChoiceAnswer(value=opt.value, raw=raw, via=via, attempts=self.attempts)
            return Reply(Step.ANSWERED, self._fill(self.q.confirmation.replace("{value}", opt.value)))
        self.answer = ChoiceAnswer(value=None, raw=raw, via=via, attempts=self.attempts)
        if self.attempts >= self.q.attempts:
            self.attempts += 1
            return Reply(Step.GAVE_UP, self.GOODBYE)
        self.attempts += 1
        return Reply(Step.ASK_AGAIN, f"{self._fill(self.q.reprompt)} {self.question}")


class CallPurpose:
    """The parts of a request the conversation uses."""

    def __init__(self, request: CallRequest) -> None:
        self.request = request
        self.choice = ChoiceTracker(request.choice, request) if request.choice is not None else None

    def opening(self) -> Optional[str]:
        """Said first when the callee answers: the message, then the question (either may be absent)."""
        parts = [self.request.fill(self.request.message)] if self.request.message else []
        if self.choice is not None:
            parts.append(self.choice.question)
        return " ".join(parts) or None

    @property
    def briefing(self) -> bool:
        """A call placed to say a tool's result and nothing else (no choice, no instructions):
        it hangs up once the opening has been heard."""
        r = self.request
        return r.tool is not None and r.choice is None and not r.instructions

    def tool_opening(self, result_speech: str) -> Tuple[str, str]:
        """The opening of a call with a tool at answer, in two parts: what is said while the tool runs
        (the message, then ``before``) and what follows (the result, ``after``, then the question)."""
        r = self.request
        head = [r.fill(r.message)] if r.message else []
        tail = [result_speech]
        if r.tool is not None:
            head.append(r.fill(r.tool.before))
            tail.append(r.fill(r.tool.after))
        if self.choice is not None:
            tail.append(self.choice.question)
        return (" ".join(p.strip() for p in head if p.strip()), " ".join(p.strip() for p in tail if p.strip()))

    def instructions(self) -> str:
        """Added to the system prompt: what this call is for, with its variables."""
        lines = []
        if self.request.instructions:
            lines.append("This is an outbound call you placed. Its purpose: "
                         + self.request.fill(self.request.instructions))
        if self.request.message:
            lines.append("You opened the call by saying: " + self.request.fill(self.request.message))
        if self.request.variables:
            lines.append("Facts for this call: " + "; ".join(f"{k} = {v}" for k, v in self.request.variables.items()))
        return "\n".join(lines)
