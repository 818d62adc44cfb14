"""Backchannels: "mm-hm", "yeah", "okay" said to show the caller is listening, not to take a turn.

One list, BACKCHANNEL_WORDS, for both places they matter: said over the agent, a paused agent
resumes (calls/barge_in.py, ``is_false_alarm``); alone in a turn, the rule below.

The rule (a turn whose whole transcript is only backchannel phrases):

- while the agent talks or prepares a reply: never a turn (the caller is listening to it);
- after the agent asked something (its last sentence ends with "?"): a turn — "yeah" is the answer;
- after a statement: not a turn ("Your table is booked." — "Okay."): nothing is answered, and if
  the caller says nothing more the idle reprompt (calls/idle.py) asks whether they are still there;
- while an outbound call's purpose question waits for its answer (calls/call_purpose.py): a turn.

Anything else in the transcript ("yeah, and what about Sunday?") makes it an ordinary turn.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, FrozenSet, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog


def normalised(text: str) -> str:
    """Letters, digits and spaces only: Whisper writes "Mm-hmm.", "mm hmm", "Mhm." for the same sound."""
    return " ".join(re.sub(r"[^a-z0-9\s]", " ", (text or "").lower().replace("-", " ")).split())


@lru_cache(maxsize=8)
def _phrases(words: str) -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """(whole phrases, single words) of a BACKCHANNEL_WORDS value."""
    phrases = frozenset(k for k in (normalised(p) for p in words.split(",")) if k)
    return phrases, frozenset(p for p in phrases if " " not in p)


def is_backchannel(text: str, words: str) -> bool:
    """The whole transcript is backchannel phrases (at most three, e.g. "yeah, yeah, okay")."""
    key = normalised(text)
    if not key:
        return False
    phrases, singles = _phrases(words)
    if key in phrases:
        return True
    rest = key
    count = 0
    while rest and count < 3:  # strip known phrases from the front, longest first
        for p in sorted(phrases, key=len, reverse=True):
            if rest == p or rest.startswith(p + " "):
                rest = rest[len(p):].strip()
                count += 1
                break
        else:
            return False
    return not rest and count > 0 and (count > 1 or key in singles)


def is_false_alarm(text: str, words: str) -> bool:
    """Speech over the agent that should not stop it: nothing Whisper kept (a cough, noise) or only
    backchannels."""
    return not normalised(text) or is_backchannel(text, words)


def agent_asked(dialog: "VoiceDialog") -> bool:
    """The agent's last words were a question."""
    for turn in reversed(dialog.turns):
        if turn.said:
            return turn.said[-1].rstrip().rstrip("\"')”’").endswith("?")
    return False


def is_ignored_backchannel(dialog: "VoiceDialog", text: str) -> bool:
    """This transcript is a backchannel that must not become a turn (the rule above)."""
    words = getattr(dialog.s, "backchannel_words", "")
    if not words or dialog.purpose.asking or not is_backchannel(text, words):
        return False
    return dialog._agent_talking() or not agent_asked(dialog)
