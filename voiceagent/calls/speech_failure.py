"""When no speech engine answers (speech/seams.py ``SpeechUnavailable``: the speech server down after
retries and no usable local fallback), the call cannot go on: the caller hears the profile's
``failure_goodbye`` (from the phrase cache, synthesized at the warm start, or synthesized now if only
STT failed) and the call hangs up; with no TTS at all it hangs up without a word.  One log line with
the call id either way, never a dead dialog greenlet with a live call."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import gevent

from ..speech.seams import SpeechUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)


def apologise_and_hang_up(dialog: "VoiceDialog", exc: Exception) -> None:
    from ..dialog.sentences import normalize_for_speech

    call = dialog.call
    if dialog._hangup_requested or call.ended.is_set():
        return
    dialog._hangup_requested = True
    text = dialog.profile.phrases.failure_goodbye if dialog.profile is not None else ""
    speech = normalize_for_speech(text) if text else ""
    audio = dialog.svc.phrases.cached(speech) if speech else None
    if audio is None and speech:
        try:
            audio = dialog.svc.tts.synthesize(speech)
        except SpeechUnavailable:
            audio = None
    if audio is None:
        log.error("call %s: speech unavailable (%s); no TTS to apologise with: hanging up", call.id, exc)
    else:
        log.error("call %s: speech unavailable (%s); apologising and hanging up", call.id, exc)
        pb = call.play(audio[0], audio[1], text=text)
        dialog.svc.emit(call, "speech_failure", text)
        gevent.wait([pb.finished, call.ended], count=1, timeout=pb.duration + 10)
    call.hangup()
    dialog.inq.put(("wake", None))


def guarded(dialog: "VoiceDialog", fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a reply greenlet's body) with SpeechUnavailable turned into the apology and hang-up."""

    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        except SpeechUnavailable as exc:
            apologise_and_hang_up(dialog, exc)
            return None

    return run
