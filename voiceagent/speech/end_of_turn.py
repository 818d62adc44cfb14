"""When to end the caller's turn: the smart-turn probability combined with the words heard so far.

Without it a turn ends after a fixed END_OF_TURN_MS of silence: too slow for "What time is it?",
too quick for "I'd like to book... um... a table for two".  With it, at each pause (PAUSE_MS of
silence, when the speculative transcription starts) the model hears the turn and:

* the speculative transcript is awaited (the reply needs it anyway: no voice-to-voice cost);
* complete (p >= SMART_TURN_THRESHOLD) -> end after SMART_TURN_COMPLETE_MS of silence, unless the
  words end on a filler/conjunction ("and", "um", "because"), an article or preposition, or an
  ellipsis: then wait;
* incomplete -> a question ("...?") ends after
  SMART_TURN_COMPLETE_MS (a flat-intoned question is still a question); anything else waits
  SMART_TURN_MAX_WAIT_MS: a full stop is not trusted, because Whisper puts one after fragments
  too ("I'd like to book."), and a trailing filler or function word ("so", "to", "the") says the
  caller is continuing even when the model heard a falling tone;
* whatever is decided, SMART_TURN_MAX_WAIT_MS caps the wait: a caller silent that long is done.

Waiting for the transcript costs nothing in voice-to-voice time: the reply needs it anyway.
``decide`` is pure (unit-tested with fixed numbers); ``TurnEnder`` runs it for one call.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Optional

from pydantic import BaseModel, Field

__all__ = ["Decision", "EndOfTurnPolicy", "TurnEnder", "text_cue"]

log = logging.getLogger(__name__)

#: words after which a caller is not done: conjunctions, fillers, articles, prepositions
TRAILING = frozenset("""
and or but so because um uh er erm hmm mm like that which who if then than when while although though
the a an my your our their his her its this these those some any to of for with at in on from by about
into onto as is are was were i'd i'll i'm we're you're it's let's can could would should will
""".split())
FILLERS = frozenset("um uh er erm hmm mm".split())
_WORDS = re.compile(r"[a-z']+")


def text_cue(text: Optional[str]) -> Optional[str]:
    """What the transcript so far says: "question", "sentence", "continuing" or None (no words)."""
    t = (text or "").strip().lower()
    words = _WORDS.findall(t)
    if not words:
        return None
    if t.endswith("?") and words[-1] not in FILLERS:  # "What's the weather like?" is a question
        return "question"
    if t.endswith(("...", "\u2026", ",", "-", "\u2014")) or words[-1] in TRAILING:
        return "continuing"
    if t.endswith((".", "!")):
        return "sentence"
    return None


class Decision(BaseModel):
    """How much silence ends this pause's turn, and why (emitted as the 'end_of_turn' event)."""

    hold_ms: float = Field(description="silence after the last word that ends the turn, ms")
    verdict: str = Field(description="complete | incomplete")
    reason: str = Field(description="model | question | continuing | no_words | error")
    probability: Optional[float] = Field(default=None, description="smart-turn P(complete)")
    text: Optional[str] = Field(default=None, description="the speculative transcript consulted, if any")
    applied: bool = Field(default=True, description="false when it came too late: the caller carried on, or "
                                                    "SMART_TURN_MAX_WAIT_MS had already ended the turn")


class EndOfTurnPolicy(BaseModel):
    """Thresholds (from the speech settings)."""

    threshold: float = 0.5
    complete_ms: float = 250.0
    max_wait_ms: float = 1200.0

    @classmethod
    def from_settings(cls, s: Any) -> "EndOfTurnPolicy":
        return cls(threshold=s.smart_turn_threshold, complete_ms=s.smart_turn_complete_ms,
                   max_wait_ms=s.smart_turn_max_wait_ms)

    def decide(self, probability: Optional[float], text: Optional[str] = None) -> Decision:
        cue = text_cue(text)

        def d(hold: float, verdict: str, reason: str) -> Decision:
            return Decision(hold_ms=min(hold, self.max_wait_ms), verdict=verdict, reason=reason,
                            probability=probability, text=text)

        if cue == "continuing":
            return d(self.max_wait_ms, "incomplete", "continuing")
        if probability is not None and probability >= self.threshold:
            return d(self.complete_ms, "complete", "model")
        if cue == "question":
            return d(self.complete_ms, "complete", "question")
        return d(self.max_wait_ms, "incomplete", "model" if _WORDS.search((text or "").lower()) else "no_words")


class TurnEnder:
    """One call's end-of-turn decisions: at each pause run the model (pool), consult the speculative
    transcript when the model says incomplete, and set the endpointer's ``hold_ms`` for that pause.

    A decision for a pause the caller has already talked through is dropped (``ep.pause_index``)."""

    def __init__(self, policy: EndOfTurnPolicy, model: Any, endpointer: Any, spawn: Callable[..., Any],
                 emit: Callable[[Decision], None] = lambda d: None, fallback_ms: float = 600.0) -> None:
        self.policy = policy
        self.model = model
        self.ep = endpointer
        self._spawn = spawn
        self._emit = emit
        self.fallback_ms = fallback_ms
        self.last: Optional[Decision] = None

    def pause(self, audio: Any, start_speculation: Callable[[], Any]) -> Any:
        """Call at a Pause event.  The model's job is queued before the speculative STT's (it is
        ~10x shorter), then the speculation is started and returned."""
        index = self.ep.pause_index
        prob_job = self._spawn(self._probability, audio)
        spec = start_speculation()
        self._spawn(self._decide, index, prob_job, spec)
        return spec

    def _probability(self, audio: Any) -> Optional[float]:
        from .inference import urgent

        try:
            with urgent():  # the pause's hold depends on it: before synthesis queued meanwhile
                return self.model.probability(audio)
        except Exception:  # a failing model must not end the call: fall back to the fixed wait
            log.exception("smart-turn inference failed")
            return None

    def _decide(self, index: int, prob_job: Any, spec: Any) -> None:
        p = prob_job.get()
        if p is None:
            decision = Decision(hold_ms=self.fallback_ms, verdict="incomplete", reason="error")
        else:
            # the words are awaited whatever the model said: the reply needs them anyway, so this
            # costs no voice-to-voice time, and it catches "I'd like to book a" said with a falling tone
            text = self._transcript(index, spec)
            decision = self.policy.decide(p, text)
        if self.ep.pause_index != index or not self.ep.paused:
            decision.applied = False  # the caller carried on (or the turn already ended): moot
        else:
            self.ep.hold_ms = decision.hold_ms
            self.last = decision
        self._emit(decision)

    def _transcript(self, index: int, spec: Any) -> Optional[str]:
        if spec is None:
            return None
        result = spec.greenlet.get()
        if result is None or self.ep.pause_index != index:
            return None
        return result[0].text
