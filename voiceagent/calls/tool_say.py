"""``ctx.say(text)`` in a call: a running tool speaks now ("one moment, I am looking that up").

The words are synthesized and handed to FreeSWITCH from the tool's own greenlet (the reply's), so
they play while the tool goes on; they belong to the turn being answered (``Turn.said``, what the
caller heard of it) and the conversation records them in the LLM's history after the tool's result.
Nothing here may fail the tool: a call that has ended or a synthesis error is logged and ignored.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)


def say_now(dialog: "VoiceDialog", text: str) -> None:
    from ..dialog.sentences import normalize_for_speech

    call = dialog.call
    if call.ended.is_set() or not any(ch.isalnum() for ch in text):
        return
    try:
        pcm, rate = dialog.svc.tts.synthesize(normalize_for_speech(text))
        pb = call.play(pcm, rate, text=text)
    except Exception:
        log.exception("ctx.say: could not say %r", text[:80])
        return
    current = dialog._current
    if current is None:  # a tool run outside a reply: said, reported as its own turn by the caller of the tool
        return
    turn, played = current
    if not played:
        played.first = pb
    played.add(text, pb)
    turn.said.append(text)
