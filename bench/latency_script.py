"""What the latency benchmark's caller says, what its zero-latency LLM answers, and the two modes
it compares (bench/latency.py runs them; bench/latency_calls.py places the calls)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

CALLER_SENTENCES = [
    "Hello, I would like to know your opening hours.",
    "Can you tell me where the nearest pharmacy is?",
    "I need to change my appointment to next Tuesday.",
    "Is the restaurant open on Sunday evening?",
    "My package has not arrived yet.",
    "How much does a monthly subscription cost?",
    "Could you send me the invoice by email, please?",
    "I forgot my password and cannot log in.",
    "What is the address of your main office?",
    "Do you have parking near the building?",
    "I would like to book a table for four people.",
    "The heating in my apartment is broken.",
    "Can I pay with a credit card?",
    "Please cancel my order from last week.",
    "Is there a discount for students?",
    "My name is Anna and I am calling about my bill.",
    "When will the technician come to my house?",
    "Do you deliver to the city center?",
    "I want to speak about my insurance contract.",
    "Thanks, that sounds good to me.",
]
#: sentences with a hesitation in the middle: (first part, silence in s, the rest)
PAUSED: List[Tuple[str, float, str]] = [
    ("I'd like to book, um", 0.9, "a table for two."),
    ("My name is John and", 0.8, "I live in Boston."),
    ("I want to move my appointment to", 1.0, "next Tuesday."),
    ("So", 0.7, "what time do you close?"),
    ("I was wondering if", 0.9, "you have any rooms tonight."),
    ("I need a taxi because", 0.8, "my car broke down."),
    ("Could you check, uh", 0.9, "whether my order has shipped?"),
    ("The problem is that", 0.8, "the internet keeps dropping."),
    ("I'm calling about the, um", 1.0, "the bill from March."),
    ("Can you tell me", 0.8, "the weather tomorrow?"),
]
SHORT_ANSWER = "Sure, I can help you with that."
LONG_REQUEST = "Please tell me a long story about the sea."
LONG_ANSWER = ("Once upon a time, a small boat sailed far away from the harbour. "
               "The sailors watched the waves grow taller every hour. "
               "At night the stars were so bright that they could read their maps without a lamp. "
               "On the third day a storm came from the west and the wind tore at the sails. "
               "When the storm was over, they found an island that was not on any chart. "
               "They stayed there for a week, fishing and mending the boat, before they went home.")
#: said over the agent to stop it; the first is the issue's slow case (short words, pauses between them)
INTERRUPTIONS = ["Wait, stop, I have another question for you.", "Hold on a second please.",
                 "Excuse me, I have another question.", "Sorry, stop, I have another question."]
#: said over the agent to show the caller is listening: the agent should go on
BACKCHANNELS = ["Mm-hm.", "Okay.", "Yeah.", "Uh-huh."]

#: old = the defaults before the turn-taking work; new = today's shipped defaults (no overrides)
MODES: Dict[str, Dict[str, Any]] = {
    "old": {"end_of_turn_ms": 600, "smart_turn": False, "barge_in_mode": "stop", "preemptive_llm": False,
            "speech_preroll_ms": 200},
    "new": {},
}


def describe(mode: str, s: Any) -> str:
    """The settings that differ between the modes, as one line."""
    if not s.smart_turn:
        eot = f"END_OF_TURN_MS {s.end_of_turn_ms} (silence only)"
    else:
        eot = (f"SMART_TURN (threshold {s.smart_turn_threshold}, COMPLETE_MS {s.smart_turn_complete_ms}, "
               f"MAX_WAIT_MS {s.smart_turn_max_wait_ms})")
    if s.barge_in_mode == "stop":
        barge = f"BARGE_IN_MODE stop (BARGE_IN_MIN_MS {s.barge_in_min_ms})"
    else:
        barge = (f"BARGE_IN_MODE pause (PAUSE_MS {s.barge_in_pause_ms}, CONFIRM_MS {s.barge_in_confirm_ms}, "
                 f"STOP_MS {s.barge_in_stop_ms})")
    early = "PREEMPTIVE_LLM on" if s.preemptive_llm else "PREEMPTIVE_LLM off"
    return f"{mode} = {eot}, {barge}, {early}, SPEECH_PREROLL_MS {s.speech_preroll_ms}"


def scripted_handler(body: dict):
    """Zero latency, no tool call: a long answer when asked for a story, else one short sentence."""
    from voiceagent.testing.llm_server import text

    user = ""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            user = str(m.get("content") or "").lower()
            break
    return text(LONG_ANSWER if "story" in user else SHORT_ANSWER)


def trimmed_16k(tts, text: str, threshold_dbfs: float = -45.0) -> Tuple[bytes, int]:
    """Piper speech at 16 kHz with leading/trailing silence cut, so the first/last sample the
    emulator streams is speech: the bench then knows when the caller starts and stops talking."""
    from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float, resample

    pcm, rate = tts.synthesize(text)
    x = resample(pcm16_to_float(pcm), rate, 16000)
    loud = np.flatnonzero(np.abs(x) > 10 ** (threshold_dbfs / 20))
    if loud.size:
        x = x[loud[0]:loud[-1] + 1]
    return float_to_pcm16(x), 16000


def paused_16k(tts, first: str, gap_s: float, rest: str) -> Tuple[bytes, int]:
    """One buffer: the first part, ``gap_s`` of silence, the rest (streamed as one, the gap exact)."""
    a, _ = trimmed_16k(tts, first)
    b, _ = trimmed_16k(tts, rest)
    return a + b"\x00\x00" * int(gap_s * 16000) + b, 16000


def caller_audio(tts, turns: int, pauses: int, barge_ins: int) -> Dict[str, Tuple[bytes, int]]:
    """The speech each step needs, keyed by text (a paused sentence by ``paused_key``)."""
    texts = [CALLER_SENTENCES[i % len(CALLER_SENTENCES)] for i in range(turns)]
    if barge_ins:
        texts += [LONG_REQUEST] + INTERRUPTIONS[:barge_ins] + BACKCHANNELS[:barge_ins]
    out = {t: trimmed_16k(tts, t) for t in dict.fromkeys(texts)}
    for first, gap, rest in PAUSED[:pauses]:
        out[paused_key(first, gap, rest)] = paused_16k(tts, first, gap, rest)
    return out


def paused_key(first: str, gap_s: float, rest: str) -> str:
    return f"{first} ({gap_s:.1f} s) {rest}"
