"""The voice worker ``bench/load.py`` measures, as its own process (not a test).

    python bench/load_worker.py --models stub|real      (settings from the environment, as ``voiceagent voice``)

The real ``VoiceWorker`` and ``VoiceDialog`` (fork server, ESL, sessions, endpointer, barge-in, the
rule-based LLM in process), with Whisper and Piper either real (``--models real``: VoiceServices as
``voiceagent voice`` builds it) or stubbed (``--models stub``: a transcript and a short tone at once,
so only the edge and the dialog plumbing cost CPU).  Once a second it prints one JSON line on stdout:
audio received (the sessions' samples, ended calls included), turns completed, live calls, calls
refused, the event loop's lateness samples since the last line (a greenlet asks to wake every 10 ms),
and the batched VAD's and the inference pool's counters.  The first line is ``{"ready": ...}``.
"""
from __future__ import annotations

if __name__ == "__main__":  # before anything imports socket/threading
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))  # bench/queue.py must not shadow the stdlib's queue
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
    from gevent import monkey

    monkey.patch_all()

import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from voiceagent.speech.stt import Transcript  # noqa: E402
from voiceagent.speech.tts import _Engine  # noqa: E402

STUB_TEXT = "What time is it?"
LAG_INTERVAL = 0.010  # s between the lag sampler's wake-ups


class StubTranscriber:
    """Whisper's interface (speech/seams.py), answering at once: the edge is measured, not the model."""

    name = "stub"
    uses_pool = False

    def transcribe(self, audio: np.ndarray, *, initial_prompt: Optional[str] = None) -> Transcript:
        return Transcript(text=STUB_TEXT, duration=len(audio) / 16000, no_speech_prob=0.0, raw_text=STUB_TEXT)

    transcribe_blocking = transcribe


class StubTTS(_Engine):
    """Piper's interface: 60 ms of a quiet 440 Hz tone per word, at once."""

    voice_id = "stub"
    sample_rate = 16000

    def _synth_float(self, text: str) -> np.ndarray:
        n = int(0.06 * self.sample_rate) * max(1, len(text.split()))
        return (0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / self.sample_rate)).astype(np.float32)


class LoadProbe:
    """What the bench reads from this worker once a second."""

    def __init__(self, worker, services) -> None:
        self.worker = worker
        self.services = services
        self.sessions: List[Any] = []
        self.ended_samples = 0
        self.turns = 0
        self.lag: List[float] = []

    def dialog(self, sess):
        self.sessions.append(sess)
        return self.services.dialog(sess)

    def on_event(self, kind: str, call: Any, data: Any) -> None:
        if kind == "turn":
            self.turns += 1

    def sample_lag(self) -> None:
        import gevent

        while True:
            t0 = time.monotonic()
            gevent.sleep(LAG_INTERVAL)
            self.lag.append(max(0.0, time.monotonic() - t0 - LAG_INTERVAL) * 1000.0)

    def snapshot(self) -> Dict[str, Any]:
        live = []
        for sess in self.sessions:
            if sess.ended.is_set():
                self.ended_samples += sess.samples_received
            else:
                live.append(sess)
        self.sessions = live
        lag, self.lag = self.lag, []
        from voiceagent.observability import metrics

        refused = sum(s.value for m in metrics.CALLS_REFUSED.collect() for s in m.samples
                      if s.name.endswith("_total"))
        batcher = self.services.vad_batcher
        return {"t": time.monotonic(), "samples": self.ended_samples + sum(s.samples_received for s in live),
                "turns": self.turns, "calls": self.worker.live_calls(), "refused": refused,
                "lag_ms": [round(v, 2) for v in lag], "vad": batcher.stats() if batcher is not None else None,
                "pool": self.services.pool.stats()}


def build_services(settings, models: str):
    from voiceagent.calls.voice_services import VoiceServices
    from voiceagent.speech.inference import InferencePool

    if models == "real":
        return VoiceServices(settings)
    pool = InferencePool(1, model_threads=1)
    return VoiceServices(settings, transcriber=StubTranscriber(), tts=StubTTS(), pool=pool)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    import gevent

    from voiceagent.calls.worker import VoiceWorker
    from voiceagent.config import load_settings
    from voiceagent.observability.logs import setup_logging

    p = argparse.ArgumentParser(description="the voice worker bench/load.py measures")
    p.add_argument("--models", choices=["stub", "real"], default="stub")
    p.add_argument("--profile", default="", help="write cProfile stats of the loop thread here at exit")
    a = p.parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    t0 = time.monotonic()
    services = build_services(settings, a.models)
    warm = services.warm()
    worker = VoiceWorker(settings, dialog_factory=None)
    probe = LoadProbe(worker, services)
    worker.dialog_factory = probe.dialog
    worker.admission_check = services.overloaded
    services.listeners.append(probe.on_event)
    worker.install_signal_handlers()
    worker.start()
    if not all(n.esl.wait_connected(30) for n in worker.nodes.values()):
        print(json.dumps({"error": "no ESL connection"}), flush=True)
        return 1
    gevent.spawn(probe.sample_lag)
    print(json.dumps({"ready": True, "pid": os.getpid(), "start_s": round(time.monotonic() - t0, 1),
                      "warm_turn_found": bool(warm.get("turn_found"))}), flush=True)
    profiler = None
    if a.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    while not worker.stopped.wait(1.0):
        print(json.dumps(probe.snapshot()), flush=True)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(a.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
