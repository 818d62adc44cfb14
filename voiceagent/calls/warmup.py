"""Warm start: one synthetic turn through every path a call uses, before the first call.

Each path has a one-time cost the first caller would otherwise pay in silence: litellm's import,
the Silero session, soxr's resampler set-up at each phone rate, Whisper's and Piper's first
inference in the native pool, the LLM client's first streamed request (and a local server's prompt
prefix), WAV and playAudio encoding, the fixed phrases.  ``warm_up`` runs a caller's question
through all of them and returns what each stage cost, so a worker can log it at start-up.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Dict, Union

import numpy as np

if TYPE_CHECKING:
    from .voice_services import VoiceServices

log = logging.getLogger(__name__)

QUESTION = "What time is it?"
PHONE_RATES = (8000, 16000)


def warm_up(svc: "VoiceServices") -> Dict[str, Union[float, str]]:
    """Run the synthetic turn; returns milliseconds per stage (and ``heard``/``said`` for checks)."""
    from ..dialog.conversation import Say
    from ..dialog.llm import litellm_module
    from ..dialog.sentences import normalize_for_speech
    from ..speech.audio import pcm16_to_float, resample_pcm16
    from ..speech.vad import EndOfTurn
    from ..telephony import forkwire

    report: Dict[str, Union[float, str]] = {}  # stage -> ms; then turn_found, heard and said
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        report[stage] = round((now - clock[0]) * 1000, 1)
        clock[0] = now

    litellm_module()
    lap("litellm_import")
    profile = svc.kit.profiles.select()
    for text in (profile.greeting, profile.phrases.apology, profile.phrases.goodbye, profile.phrases.failure_goodbye,
                 *profile.phrases.thinking):  # failure_goodbye: said when the speech server is gone
        if text:
            svc.phrases.get(normalize_for_speech(text))
    lap("fixed_phrases")
    pcm, rate = svc.tts.synthesize(QUESTION)  # the "caller", through the same pool
    lap("tts")
    turn_audio = None
    for call_rate in PHONE_RATES:
        at_rate = resample_pcm16(pcm, rate, call_rate)
        ep = svc.endpointer(call_rate)
        silence = b"\x00\x00" * int(call_rate * (ep.end_of_turn_ms + 200) / 1000)  # SMART_TURN: its cap
        frame = call_rate // 50 * 2  # 20 ms, as mod_audio_fork sends it
        stream = at_rate + silence
        for i in range(0, len(stream), frame):
            for ev in ep.feed(stream[i:i + frame]):
                if isinstance(ev, EndOfTurn) and call_rate == 16000:
                    turn_audio = ev.audio
    lap("vad_endpointer")
    report["turn_found"] = turn_audio is not None
    if turn_audio is None:  # the VAD heard nothing in clean synthetic speech: say so, but go on
        log.warning("warm start: the endpointer found no turn in the synthetic question")
        turn_audio = np.concatenate([pcm16_to_float(resample_pcm16(pcm, rate, 16000)), np.zeros(8000, np.float32)])
    heard = svc.transcriber.transcribe(turn_audio).text
    lap("stt")
    if getattr(svc, "turn_model", None) is not None:
        svc.turn_model.probability(turn_audio)  # the smart-turn session's first run is the slow one
        lap("turn_model")
    said = ""
    if svc.warms_llm_prefix or svc.kit.demo_server is not None:
        # A real turn, stopped after its first sentence (free: the server is on this machine).  A remote,
        # possibly billed API is not called; its client path is the litellm import above.
        conv = svc.kit.conversation()
        conv.greeting()
        events = conv.respond(heard or QUESTION)
        try:
            for ev in events:
                if isinstance(ev, Say):
                    said = ev.text
                    break
        finally:
            conv.cancel()
            events.close()
        lap("llm_turn")
        svc.warm_llm_prefix()  # leave the server holding the static prefix every call starts with
        lap("llm_prefix")
    reply, reply_rate = svc.tts.synthesize(normalize_for_speech(said or "It is nine o'clock."))
    lap("tts_reply")
    for call_rate in PHONE_RATES:
        at_rate = resample_pcm16(reply, reply_rate, call_rate)
        forkwire.play_audio_message(forkwire.wav_encode(at_rate, call_rate), sample_rate=call_rate, text=said)
    lap("encode_playback")
    log.info("warm start (ms): %s; heard %r, said %r",
             ", ".join(f"{k} {v:g}" for k, v in report.items()), heard, said)
    report["heard"] = heard
    report["said"] = said
    return report
