"""Latency benchmark of one voice turn, end to end, in real time (not a test).

    .venv/bin/python bench/latency.py [--turns N] [--llm auto|scripted|local|URL] [--out DIR]
    voiceagent bench latency ...            (same code)

One process: the FreeSWITCH emulator (speed 1.0), a voice worker running the voice dialog
(Whisper base, Piper, Silero, the configured END_OF_TURN_MS) and an LLM.  The caller says N varied
sentences (synthesized with Piper); every turn's stage timings come from the dialog's ``Turn``
objects.  Then a few barge-in turns: the caller asks for a long answer and talks over it.

LLMs: ``scripted`` answers instantly with one short sentence (no tool call: the LLM adds ~0 ms);
``local`` is the embedded llama.cpp server (skipped with a message when llama-cpp-python is not
importable); a URL is any OpenAI-compatible endpoint; ``auto`` (default) = scripted, then local.

Output: a p50/p90 table against the targets, ``<out>/latency-<llm>.json`` (raw numbers) and
``<out>/latency-<llm>.png`` (waterfall from the caller's last speech sample).
"""
from __future__ import annotations

if __name__ == "__main__":  # before anything imports socket/threading (the CLI patches itself)
    from gevent import monkey

    monkey.patch_all()

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import requests  # noqa: E402,F401 - the HTTP library, before bench/ is on the path (bench/requests.py would shadow it)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/ is not a package: its sibling modules

import numpy as np  # noqa: E402
from latency_report import summarize, table, waterfall  # noqa: E402

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
SHORT_ANSWER = "Sure, I can help you with that."
LONG_REQUEST = "Please tell me a long story about the sea."
LONG_ANSWER = ("Once upon a time, a small boat sailed far away from the harbour. "
               "The sailors watched the waves grow taller every hour. "
               "At night the stars were so bright that they could read their maps without a lamp. "
               "On the third day a storm came from the west and the wind tore at the sails. "
               "When the storm was over, they found an island that was not on any chart. "
               "They stayed there for a week, fishing and mending the boat, before they went home.")
INTERRUPTIONS = ["Sorry, stop, I have another question.", "Wait, wait, can I ask something else?",
                 "Excuse me, that is enough, thank you.", "Hold on, I need to check something first."]

def _say(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- caller audio

def trimmed_16k(tts, text: str, threshold_dbfs: float = -45.0) -> Tuple[bytes, int]:
    """Piper speech at 16 kHz with leading/trailing silence cut, so the first/last sample the
    emulator streams is speech: the bench then knows when the caller starts and stops talking."""
    from voiceagent.speech.audio import pcm16_to_float, float_to_pcm16, resample

    pcm, rate = tts.synthesize(text)
    x = resample(pcm16_to_float(pcm), rate, 16000)
    loud = np.flatnonzero(np.abs(x) > 10 ** (threshold_dbfs / 20))
    if loud.size:
        x = x[loud[0]:loud[-1] + 1]
    return float_to_pcm16(x), 16000


# --------------------------------------------------------------------------- LLM modes

def scripted_handler(body: dict):
    """Zero latency, no tool call: a long answer when asked for a story, else one short sentence."""
    from voiceagent.testing.llm_server import text

    user = ""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            user = str(m.get("content") or "").lower()
            break
    return text(LONG_ANSWER if "story" in user else SHORT_ANSWER)


def local_llm_problem(timeout: float = 120.0) -> Optional[str]:
    """None when llama-cpp-python's server imports in this venv, else why not (it may be mid-rebuild)."""
    try:
        r = subprocess.run([sys.executable, "-c", "import llama_cpp, llama_cpp.server.app"], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "importing llama_cpp timed out"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"llama-cpp-python is not importable ({last})"
    return None


def probe_completion(server) -> Optional[str]:
    """One tiny completion: a llama-cpp-python build can import and serve /models yet crash on inference."""
    import urllib.request

    body = json.dumps({"model": "local", "max_tokens": 4,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    req = urllib.request.Request(server.base_url + "/chat/completions", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
        return None
    except OSError as exc:
        time.sleep(0.5)
        code = server.proc.poll() if server.proc is not None else None
        why = f"the llama.cpp server exited with {code}" + (" (SIGSEGV)" if code == -11 else "") if code is not None else str(exc)
        return (f"first completion failed: {why}; the llama-cpp-python build in this venv is broken "
                f"(it is being rebuilt), so there is no local-LLM run")


# --------------------------------------------------------------------------- one run

def run_once(label: str, llm_url: str, llm_model: str, turns: int, barge_ins: int, models: Dict[str, Any],
             caller_audio: Dict[str, Tuple[bytes, int]]) -> Dict[str, Any]:
    import gevent
    import gevent.event

    from voiceagent.calls.voice_dialog import VoiceServices
    from voiceagent.emulator.stack import EmulatedStack, stack_settings

    settings = stack_settings("bench", llm_base_url=llm_url, llm_model=llm_model, log_level="WARNING",
                              log_format="text")
    services = VoiceServices(settings, transcriber=models["stt"], tts=models["tts"], pool=models["pool"])
    services.warm()
    events: List[Tuple[str, Any]] = []
    turn_done = gevent.event.Event()
    barged = gevent.event.Event()

    def listener(kind, call, data):
        events.append((kind, data))
        if kind == "turn":
            turn_done.set()
        elif kind == "barge_in":
            barged.set()

    services.listeners.append(listener)
    stack = EmulatedStack(settings, dialog_factory=services.dialog, speed=1.0)
    rows: List[Dict[str, Any]] = []
    barges: List[Dict[str, Any]] = []
    try:
        stack.start()
        settings = stack.settings
        ch = stack.call()
        if not ch.wait_answered(15):
            raise RuntimeError("the call was not answered")
        sess = stack.session(ch, 10)
        _wait(lambda: ch.fork is not None and getattr(ch.fork, "audio", None) is not None, 10)
        stack.wait_quiet(ch)
        caller = ch.fork.audio

        def one_turn(i: int, text: str, wait_reply: bool = True) -> Optional[Dict[str, Any]]:
            pcm, rate = caller_audio[text]
            n_pb = len(sess.playbacks)
            n_ev = len(events)
            turn_done.clear()
            gevent.sleep(0.3)  # a gap, so successive turns do not share VAD state
            t_say = time.monotonic()
            ch.say((pcm, rate))
            caller.wait_idle(30)
            t_last = time.monotonic()  # the buffer's last (speech) sample was just read for sending
            if not turn_done.wait(120):
                _say(f"  turn {i}: no answer within 120 s")
                return None
            turn = next(d for k, d in events[n_ev:] if k == "turn")
            tm = dict(turn.timings)
            first = sess.playbacks[n_pb] if len(sess.playbacks) > n_pb else None
            row = {"turn": i, "caller": text, "heard": turn.heard, "said": turn.said, "tools": [t["name"] for t in turn.tools],
                   "speculative_hit": turn.speculative_hit, "interrupted": turn.interrupted,
                   "caller_speech_s": len(pcm) / 2 / rate, **{k: v for k, v in tm.items() if not k.startswith("_")}}
            if first is not None and first.handed_at:
                row["true_v2v_ms"] = (first.handed_at - t_last) * 1000
            need = ("answer_to_voice_ms", "endpoint_wait_ms", "stt_wait_ms", "llm_first_sentence_ms", "tts_first_ms")
            if all(isinstance(row.get(k), (int, float)) for k in need):
                row["overhead_ms"] = (row["answer_to_voice_ms"] - row["endpoint_wait_ms"] - row["stt_wait_ms"]
                                      - row["llm_first_sentence_ms"] - row["tts_first_ms"])
            row["_t_say"] = t_say
            return row

        _say(f"[{label}] {turns} turns at real time ...")
        for i in range(turns):
            text = CALLER_SENTENCES[i % len(CALLER_SENTENCES)]
            row = one_turn(i + 1, text)
            if row is None:
                break
            row.pop("_t_say", None)
            rows.append(row)
            _say(f"  {i + 1:2d} heard {row['heard']!r:60.60} v2v {row.get('voice_to_voice_ms', float('nan')):6.0f} ms"
                 f"  stt {row.get('stt_ms', float('nan')):4.0f}/{row.get('stt_wait_ms', float('nan')):4.0f} ms"
                 f"  spec {'hit' if row['speculative_hit'] else 'MISS'}")
            stack.wait_quiet(ch)

        _say(f"[{label}] {barge_ins} barge-in turns ...")
        for j in range(barge_ins):
            pcm, rate = caller_audio[LONG_REQUEST]
            n_pb = len(sess.playbacks)
            n_ev = len(events)
            barged.clear()
            turn_done.clear()
            gevent.sleep(0.3)
            ch.say((pcm, rate))
            first = _wait(lambda: sess.playbacks[n_pb] if len(sess.playbacks) > n_pb else None, 60)
            if first is None or not first.started.wait(30):
                _say("  the long answer never started playing")
                continue
            gevent.sleep(0.6 + 0.4 * j)  # talk over it at different points
            interruption = INTERRUPTIONS[j % len(INTERRUPTIONS)]
            n_breaks = len(sess.barge_ins)
            t_onset = time.monotonic()  # the first (speech) sample goes out with the next 20 ms frame
            ch.say(caller_audio[interruption])
            if not barged.wait(10):
                _say(f"  barge-in {j + 1}: no barge-in detected (playback status {first.status})")
                continue
            data = next(d for k, d in events[n_ev:] if k == "barge_in")
            b = {"barge": j + 1, "interruption": interruption, **data}
            if len(sess.barge_ins) > n_breaks:
                # +10 ms: on average the say() lands half a frame before the sender reads it
                b["true_onset_to_break_ms"] = (sess.barge_ins[n_breaks] - t_onset) * 1000 - 10
            barges.append(b)
            _say(f"  barge-in {j + 1}: VAD onset->break {b['onset_to_break_ms']:.0f} ms, decision->break "
                 f"{b.get('decided_to_break_ms', float('nan')):.0f} ms, true onset->break "
                 f"{b.get('true_onset_to_break_ms', float('nan')):.0f} ms")
            # the interruption itself becomes a turn; let it finish
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sum(1 for k, _ in events[n_ev:] if k == "turn") < 2:
                gevent.sleep(0.05)
            stack.wait_quiet(ch)
        ch.hangup()
        ch.wait_hangup(5)
    finally:
        stack.stop()
        services.kit.close()
    return {"label": label, "llm_url": llm_url, "settings": {
        "end_of_turn_ms": settings.end_of_turn_ms, "pause_ms": settings.pause_ms,
        "barge_in_min_ms": settings.barge_in_min_ms, "stt_model": settings.stt_model, "stt_threads": settings.stt_threads,
        "tts_voice": settings.tts_voice, "vad_engine": settings.vad_engine, "playback_mode": settings.playback_mode,
        "emulator_speed": 1.0}, "turns": rows, "barge_ins": barges}


def _wait(fn, timeout: float):
    import gevent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        gevent.sleep(0.02)
    return None


# --------------------------------------------------------------------------- entry

def run_latency(turns: int = 20, llm: str = "auto", out: str = "out/bench", barge_ins: int = 4,
                local_model: str = "qwen2.5-coder-1.5b", speech: str = "local") -> int:
    from voiceagent.config import load_settings
    from voiceagent.observability.logs import setup_logging
    from voiceagent.speech.inference import InferencePool
    from voiceagent.speech.stt import Transcriber
    from voiceagent.speech.tts import make_tts
    from voiceagent.testing.llm_server import ScriptedLlmServer

    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    base = load_settings()
    t0 = time.monotonic()
    pool = InferencePool(base.inference_threads or None, model_threads=base.stt_threads)
    models = {"pool": pool, "tts": make_tts(base, pool),
              "stt": Transcriber(base.stt_model, base.stt_language, base.stt_device, base.stt_compute_type,
                                 base.stt_threads, base.stt_beam_size, cache_dir=str(base.model_cache_dir), pool=pool)}
    caller_audio = {t: trimmed_16k(models["tts"], t) for t in CALLER_SENTENCES + [LONG_REQUEST] + INTERRUPTIONS}
    _say(f"models loaded and caller speech synthesized in {time.monotonic() - t0:.1f}s")
    speech_server = None
    if speech == "remote":  # the worker's STT/TTS on a speech server on loopback (bench/latency_remote.py)
        from latency_remote import remote_models

        speech_server, models = remote_models(models, out)
        _say(f"speech: remote, {speech_server.base_url}")

    modes: List[str] = ["scripted", "local"] if llm == "auto" else [llm]
    rc = 0
    for mode in modes:
        local = scripted = None
        try:
            if mode == "scripted":
                scripted = ScriptedLlmServer(handler=scripted_handler).start()
                url, model, label = scripted.base_url, "scripted", "scripted (zero latency)"
            elif mode == "local":
                problem = local_llm_problem()
                if problem:
                    _say(f"[local] skipped: {problem}")
                    if llm == "local":
                        rc = 1
                    continue
                from voiceagent.dialog.local_llm import LocalLlmServer, LocalLlmUnavailable

                try:
                    t1 = time.monotonic()
                    local = LocalLlmServer(local_model, log_path=os.path.join(out, "llama-server.log")).start()
                    _say(f"[local] llama.cpp server ({local_model}) ready in {time.monotonic() - t1:.1f}s")
                except LocalLlmUnavailable as exc:
                    _say(f"[local] skipped: {exc}")
                    if llm == "local":
                        rc = 1
                    continue
                problem = probe_completion(local)
                if problem:
                    _say(f"[local] skipped: {problem}")
                    if llm == "local":
                        rc = 1
                    continue
                url, model, label = local.base_url, "local", f"local llama.cpp {local_model}"
            else:
                url, model, label = mode, base.llm_model, mode
            run = run_once(label, url, model, turns, barge_ins, models, caller_audio)
        finally:
            if scripted is not None:
                scripted.stop()
            if local is not None:
                local.stop()
        summary = summarize(run)
        name = "scripted" if mode == "scripted" else ("local" if mode == "local" else "url")
        name += "-remote-speech" if speech == "remote" else ""
        run["summary"] = summary
        run["load_avg"] = os.getloadavg()
        json_path = os.path.join(out, f"latency-{name}.json")
        png_path = os.path.join(out, f"latency-{name}.png")
        with open(json_path, "w") as f:
            json.dump(run, f, indent=1, default=str)
        waterfall(run, summary, png_path)
        _say("")
        _say(table(run, summary))
        _say(f"load average after the run: {' '.join(f'{x:.2f}' for x in run['load_avg'])}")
        _say(f"raw numbers: {json_path}\nwaterfall:   {png_path}\n")
    if speech_server is not None:
        speech_server.stop()
    return rc


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=20, help="caller turns per LLM (default 20)")
    p.add_argument("--llm", default="auto", help="auto (scripted, then local if importable), scripted, local, or a base URL")
    p.add_argument("--out", default="out/bench", help="directory for the JSON and PNG (default out/bench)")
    p.add_argument("--barge-ins", type=int, default=4, help="extra barge-in turns (default 4)")
    p.add_argument("--local-model", default="qwen2.5-coder-1.5b")
    p.add_argument("--speech", choices=["local", "remote"], default="local", help="remote: STT/TTS on a speech server")
    a = p.parse_args(argv)
    return run_latency(a.turns, a.llm, a.out, a.barge_ins, a.local_model, a.speech)


if __name__ == "__main__":
    sys.exit(main())
