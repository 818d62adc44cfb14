"""``voiceagent bench turns``: how semantic end-of-turn (SMART_TURN) waits and cuts, vs silence alone.

Utterances are Piper speech (deterministic), some with a mid-sentence pause of 0.7-1.0 s.  Each is fed
through the endpointer on the audio clock, once with the fixed END_OF_TURN_MS and once with the
smart-turn policy (real model, real Whisper base transcripts).  At each pause the feed waits for the
decision before going on, so the waits are the policy's own; how long a decision took on this machine
(model + speculative STT, wall time) is reported beside them: a decision later than its hold ends the
turn that much later in a live call.  Reported: the end-of-turn wait after the caller's last word, and
how often a turn was cut while the caller had more to say.
"""
from __future__ import annotations

import statistics
import time
from typing import List, Optional, Tuple

import gevent
import numpy as np

from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float
from voiceagent.speech.end_of_turn import EndOfTurnPolicy, TurnEnder
from voiceagent.speech.inference import InferencePool
from voiceagent.speech.stt import Transcriber
from voiceagent.speech.tts import PiperTTS
from voiceagent.speech.turn_model import TurnModel
from voiceagent.speech.vad import EndOfTurn, Endpointer, Pause

COMPLETE = ["What time is it?", "Could you move my appointment to Tuesday?", "Thank you, goodbye.",
            "I'd like to book a table for two.", "What's the weather like tomorrow?", "Yes, that's right.",
            "No thanks.", "Can I speak to a person?", "Please cancel my order.", "Do you open on Sundays?"]
PAUSED: List[Tuple[str, float, str]] = [
    ("I'd like to book, um", 0.9, "a table for two."), ("My name is John and", 0.8, "I live in Boston."),
    ("Can you tell me", 0.8, "the weather tomorrow?"), ("I want to move my appointment to", 1.0, "next Tuesday."),
    ("So", 0.7, "what time do you close?"), ("I was wondering if", 0.9, "you have any rooms tonight."),
    ("The order number is", 1.0, "four five six."), ("I need a taxi because", 0.8, "my car broke down."),
]


class _Spec:
    """The speculative transcript the dialog would start at the pause (same pool)."""

    def __init__(self, stt: Transcriber, audio: np.ndarray) -> None:
        self.greenlet = gevent.spawn(lambda: (stt.transcribe(audio), 0.0))


def _gap(s: float) -> np.ndarray:
    return np.zeros(int(s * 16000), dtype=np.float32)


def _run(audio: np.ndarray, ep: Endpointer, ender: Optional[TurnEnder], stt: Transcriber, took: List[float]):
    decided: list = []
    if ender is not None:
        ender._emit = decided.append
    ends = []
    pcm = float_to_pcm16(audio)
    for i in range(0, len(pcm), 640):
        for ev in ep.feed(pcm[i:i + 640]):
            if isinstance(ev, EndOfTurn):
                ends.append(ev)
            elif isinstance(ev, Pause) and ender is not None:
                n, t0 = len(decided), time.perf_counter()
                ender.pause(ev.audio, lambda a=ev.audio: _Spec(stt, a))
                with gevent.Timeout(30, False):
                    while len(decided) == n:
                        gevent.sleep(0.005)
                took.append((time.perf_counter() - t0) * 1000)
    return ends


def _pct(xs: List[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run_turns(end_of_turn_ms: int = 600, complete_ms: int = 250, max_wait_ms: int = 1200,
              threshold: float = 0.5) -> int:
    pool = InferencePool(1)
    tts = PiperTTS(pool=pool, noise_scale=0, noise_w=0)
    stt = Transcriber("base", "en", pool=pool)
    model = TurnModel(pool=pool)
    say = {t: pcm16_to_float(tts.synthesize(t, 16000)[0]) for t in COMPLETE + [p for a, _, b in PAUSED for p in (a, b)]}
    policy = EndOfTurnPolicy(threshold=threshold, complete_ms=complete_ms, max_wait_ms=max_wait_ms)
    items = [(t, np.concatenate([_gap(0.3), say[t], _gap(2.5)]), False) for t in COMPLETE]
    items += [(f"{a} ({g:.1f} s) {b}", np.concatenate([_gap(0.3), say[a], _gap(g), say[b], _gap(2.5)]), True)
              for a, g, b in PAUSED]
    rows = []
    took: List[float] = []
    for mode in ("fixed", "smart"):
        waits, cuts, paused_n, split = [], 0, 0, 0
        for name, audio, has_pause in items:
            eot = end_of_turn_ms if mode == "fixed" else max(end_of_turn_ms, max_wait_ms)
            ep = Endpointer(16000, end_of_turn_ms=eot, pause_ms=120)
            ender = TurnEnder(policy, model, ep, gevent.spawn, fallback_ms=end_of_turn_ms) if mode == "smart" else None
            ends = _run(audio, ep, ender, stt, took)
            if ends:
                waits.append(ends[-1].silence_ms)
            paused_n += has_pause
            cuts += has_pause and len(ends) > 1
            split += not has_pause and len(ends) > 1  # a complete utterance split at a comma
            wait = ends[-1].silence_ms if ends else -1
            print(f"  {mode:5s} {'cut ' if len(ends) > 1 else 'ok  '} wait {wait:5.0f} ms  {name}")
        rows.append((mode, waits, cuts, paused_n, split))
    print()
    print(f"{len(COMPLETE)} complete utterances + {len(PAUSED)} with a mid-sentence pause (0.7-1.0 s); Piper speech, "
          f"Whisper base transcripts; END_OF_TURN_MS {end_of_turn_ms}, SMART_TURN_COMPLETE_MS {complete_ms}, "
          f"SMART_TURN_MAX_WAIT_MS {max_wait_ms}, threshold {threshold}")
    print("| policy | end-of-turn wait p50 | p90 | max | cut mid-sentence | complete ones split |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, waits, cuts, n, split in rows:
        label = f"silence only (END_OF_TURN_MS {end_of_turn_ms})" if mode == "fixed" else "smart-turn + transcript"
        print(f"| {label} | {statistics.median(waits):.0f} ms | {_pct(waits, 0.9):.0f} ms | {max(waits):.0f} ms "
              f"| {cuts}/{n} | {split}/{len(COMPLETE)} |")
    print("decision time per pause (model + speculative Whisper base, wall, this machine): "
          f"p50 {_pct(took, 0.5):.0f} ms, "
          f"p90 {_pct(took, 0.9):.0f} ms over {len(took)} pauses")
    pool.close()
    return 0
