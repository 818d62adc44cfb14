"""The emulated callers of the load benchmark (bench/load.py): calls placed through the emulator's
dialplan at a steady rate, silent, or saying a Piper sentence every 6-10 s."""
from __future__ import annotations

import random
import time
from typing import Any, List, Optional

SENTENCES = ["Hello, I would like to know your opening hours.", "Can you tell me where the nearest pharmacy is?",
             "Is the restaurant open on Sunday evening?", "How much does a monthly subscription cost?",
             "Do you have parking near the building?", "What time is it?"]


class Callers:
    """The emulated callers: channels placed through the emulator's dialplan, talking or silent."""

    def __init__(self, emu, speech: Optional[List[Any]], seed: int = 1) -> None:
        self.emu = emu
        self.speech = speech
        self.rnd = random.Random(seed)
        self.channels: List[Any] = []
        self.said = 0

    def place(self, n: int, rate: float) -> None:
        import gevent

        from voiceagent.emulator.stack import AGENT_NUMBER

        t0 = time.monotonic()
        for k in range(n):
            gevent.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            ch = self.emu.place_call(destination=AGENT_NUMBER, caller=f"+1555{len(self.channels):07d}")
            self.channels.append(ch)
            if self.speech:
                gevent.spawn(self._talk, ch)

    def _talk(self, ch) -> None:
        import gevent

        if not ch.wait_answered(60):
            return
        gevent.sleep(self.rnd.uniform(2.0, 8.0))
        while not ch.hangup_cause:
            pcm, seconds = self.rnd.choice(self.speech)
            ch.say(pcm)
            self.said += 1
            gevent.sleep(seconds + self.rnd.uniform(6.0, 10.0))

    def settled(self) -> bool:
        """Every call answered (or over) and its fork streaming."""
        return all(ch.hangup_cause or (ch.answered and ch.fork is not None and ch.fork.connected)
                   for ch in self.channels)

    def live(self) -> int:
        return sum(1 for ch in self.channels if not ch.hangup_cause)

    def failed(self) -> int:
        return sum(1 for ch in self.channels if ch.hangup_cause)

    def frames_sent(self) -> int:
        return sum(ch.fork.frames_sent for ch in self.channels if ch.fork is not None)

    def hangup_all(self) -> None:
        for ch in self.channels:
            if not ch.hangup_cause:
                ch.hangup()
        for ch in self.channels:
            ch.wait_hangup(10)


def caller_speech() -> List[Any]:
    """The six sentences as Piper says them (noise 0: the same samples every run), 16 kHz, with seconds."""
    from voiceagent.config import load_settings
    from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float, resample
    from voiceagent.speech.inference import InferencePool
    from voiceagent.speech.tts import make_tts

    tts = make_tts(load_settings(tts_noise_scale=0, tts_noise_w=0), InferencePool(1, model_threads=1))
    out = []
    for text in SENTENCES:
        pcm, rate = tts.synthesize(text)
        pcm16 = float_to_pcm16(resample(pcm16_to_float(pcm), rate, 16000))
        out.append(((pcm16, 16000), len(pcm16) / 2 / 16000))
    return out
