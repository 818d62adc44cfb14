"""Latency benchmark of turn-taking, end to end, in real time (not a test).

    .venv/bin/python bench/latency.py [--modes old,new] [--stt tiny.en,base] [--llm scripted|local|URL] ...
    voiceagent bench latency ...            (same code)

One process: the FreeSWITCH emulator (speed 1.0), a voice worker running the voice dialog (Whisper,
Piper, Silero, smart-turn) and an LLM.  For each Whisper model and each mode one call, in which the
caller (Piper speech) says complete sentences, sentences with a hesitation in the middle, and
talks over the agent's long answer: a backchannel ("mm-hm", "okay"), then an interruption ("Wait,
stop, I have another question for you").  Modes (bench/latency_script.py):

- ``old``: the defaults before the turn-taking work: END_OF_TURN_MS 600 of silence alone,
  BARGE_IN_MODE=stop, no preemptive LLM, 200 ms pre-roll;
- ``new``: today's shipped defaults (smart-turn, pause-then-decide barge-in, answers started at the
  first pause, 600 ms pre-roll).

LLMs: ``scripted`` (default) answers instantly with one short sentence, a long one when asked for a
story (no tool call: the LLM adds ~0 ms); ``local`` is the embedded llama.cpp server (skipped with a
message when llama-cpp-python is not importable); a URL is any OpenAI-compatible endpoint; ``auto``
= scripted, then local.

Output per Whisper model and LLM: a markdown table (p50/p90 per mode, the targets, each mode's
verdict), ``<out>/latency-<llm>-<stt>.json`` (raw numbers) and ``.png`` (the table as bars).
"""
from __future__ import annotations

if __name__ == "__main__":  # before anything imports socket/threading (the CLI patches itself)
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))  # bench/queue.py would shadow the stdlib's queue
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
    from gevent import monkey

    monkey.patch_all()

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, ".."))
sys.path.insert(0, _HERE)  # bench/ is not a package: its sibling modules
from latency_calls import run_mode  # noqa: E402
from latency_report import plot, summarize, table  # noqa: E402
from latency_script import MODES, caller_audio, describe, scripted_handler  # noqa: E402

sys.path.remove(_HERE)  # bench/requests.py and bench/queue.py must not shadow the real ones (litellm imports requests)


def _say(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- LLMs

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
        why = (f"the llama.cpp server exited with {code}" + (" (SIGSEGV)" if code == -11 else "")
               if code is not None else str(exc))
        return (f"first completion failed: {why}; the llama-cpp-python build in this venv is broken "
                f"(it is being rebuilt), so there is no local-LLM run")


def start_llm(mode: str, out: str, local_model: str, llm_model: str):
    """(server or None, base URL, model, label, why skipped)."""
    from voiceagent.testing.llm_server import ScriptedLlmServer

    if mode == "scripted":
        server = ScriptedLlmServer(handler=scripted_handler).start()
        return server, server.base_url, "scripted", "scripted (zero latency)", None
    if mode != "local":
        return None, mode, llm_model, mode, None
    problem = local_llm_problem()
    if problem:
        return None, "", "", "", problem
    from voiceagent.dialog.local_llm import LocalLlmServer, LocalLlmUnavailable

    try:
        t1 = time.monotonic()
        server = LocalLlmServer(local_model, log_path=os.path.join(out, "llama-server.log")).start()
        _say(f"[local] llama.cpp server ({local_model}) ready in {time.monotonic() - t1:.1f}s")
    except LocalLlmUnavailable as exc:
        return None, "", "", "", str(exc)
    problem = probe_completion(server)
    if problem:
        server.stop()
        return None, "", "", "", problem
    return server, server.base_url, "local", f"local llama.cpp {local_model}", None


# --------------------------------------------------------------------------- entry

def run_latency(turns: int = 20, llm: str = "scripted", out: str = "out/bench", barge_ins: int = 8,
                local_model: str = "qwen2.5-coder-1.5b", modes: str = "old,new", stt: str = "base",
                pauses: int = 10, speed: float = 1.0, overrides: Optional[Dict[str, Any]] = None,
                speech: str = "local") -> int:
    from voiceagent.config import load_settings
    from voiceagent.emulator.stack import stack_settings
    from voiceagent.observability.logs import setup_logging
    from voiceagent.speech.inference import InferencePool
    from voiceagent.speech.stt import Transcriber
    from voiceagent.speech.tts import make_tts
    from voiceagent.speech.turn_model import TurnModel, smart_turn_path

    mode_names = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in mode_names if m not in MODES]
    if unknown or not mode_names:
        _say(f"unknown mode(s) {unknown or modes!r}: choose from {', '.join(MODES)}")
        return 2
    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    base = load_settings()
    t0 = time.monotonic()
    pool = InferencePool(base.inference_threads or None, model_threads=base.stt_threads)
    tts = make_tts(base, pool)
    models: Dict[str, Any] = {"pool": pool, "tts": tts,
                              "turn": TurnModel(smart_turn_path(base.smart_turn_model), pool=pool)}
    plan = {"turns": turns, "pauses": pauses, "barge_ins": barge_ins}
    audio = caller_audio(tts, turns, pauses, barge_ins)
    _say(f"models loaded and caller speech synthesized in {time.monotonic() - t0:.1f}s")
    llms = ["scripted", "local"] if llm == "auto" else [llm]
    rc = 0
    speech_server = None
    if speech == "remote":  # the worker's STT/TTS on a speech server on loopback (bench/latency_remote.py)
        from latency_remote import remote_models

        speech_server, remote = remote_models(models, out)
        _say(f"speech: remote, {speech_server.base_url} (the server's STT_MODEL {base.stt_model}; --stt is ignored)")
        stt, out = base.stt_model, os.path.join(out, "remote-speech")
        os.makedirs(out, exist_ok=True)
    for llm_mode in llms:
        server, url, model, label, skipped = start_llm(llm_mode, out, local_model, base.llm_model)
        if skipped:
            _say(f"[{llm_mode}] skipped: {skipped}")
            rc = rc or (1 if llm == "local" else 0)
            continue
        try:
            for stt_model in [m.strip() for m in stt.split(",") if m.strip()]:
                if speech_server is not None:
                    models = remote
                else:
                    models["stt"] = Transcriber(stt_model, base.stt_language, base.stt_device,
                                                base.stt_compute_type, base.stt_threads, base.stt_beam_size,
                                                cache_dir=str(base.model_cache_dir), pool=pool)
                load_before = os.getloadavg()
                runs, settings = [], []
                for mode in mode_names:
                    s = stack_settings("bench", llm_base_url=url, llm_model=model, log_level="WARNING",
                                       log_format="text", stt_model=stt_model, idle_reprompt_s=0,
                                       **{**MODES[mode], **(overrides or {})})
                    settings.append(s)
                    runs.append(run_mode(mode, s, models, audio, plan, speed))
                _report(runs, settings, stt_model, label, llm_mode, out, plan, speed, load_before)
        finally:
            if server is not None:
                server.stop()
    if speech_server is not None:
        speech_server.stop()
    return rc


def _report(runs: List[Dict[str, Any]], settings: List[Any], stt_model: str, label: str, llm_mode: str, out: str,
            plan: Dict[str, int], speed: float, load_before) -> None:
    summaries = [summarize(r, stt_model) for r in runs]
    load_after = os.getloadavg()
    s0 = settings[0]
    name = llm_mode if llm_mode in ("scripted", "local") else "url"
    stem = os.path.join(out, f"latency-{name}-{stt_model.replace('/', '_')}")
    head = [f"LLM {label}, Whisper {stt_model} ({s0.stt_threads} threads), Piper {s0.tts_voice}, VAD {s0.vad_engine}, "
            f"emulator x{speed:g}, playback {s0.playback_mode}; per mode one call: {plan['turns']} complete sentences, "
            f"{plan['pauses']} with a hesitation, {plan['barge_ins']} x (a backchannel, then an interruption) over "
            f"the agent"]
    head += [describe(r["mode"], s) for r, s in zip(runs, settings, strict=False)]
    head.append("load average (1/5/15 min) before: " + " ".join(f"{x:.2f}" for x in load_before)
                + ", after: " + " ".join(f"{x:.2f}" for x in load_after))
    text = "\n".join(head) + "\n\n" + table(runs, summaries, stt_model)
    with open(stem + ".json", "w") as f:
        json.dump({"stt_model": stt_model, "llm": label, "speed": speed, "plan": plan, "load_before": load_before,
                   "load_after": load_after, "runs": runs, "summaries": summaries, "table": text,
                   "settings": [s.model_dump(mode="json", include=_KEYS) for s in settings]}, f, indent=1, default=str)
    plot(runs, summaries, stt_model, stem + ".png")
    _say("")
    _say(text)
    _say(f"\nraw numbers: {stem}.json\nplot:        {stem}.png\n")


_KEYS = {"end_of_turn_ms", "pause_ms", "smart_turn", "smart_turn_threshold", "smart_turn_complete_ms",
         "smart_turn_max_wait_ms", "barge_in_mode", "barge_in_min_ms", "barge_in_pause_ms", "barge_in_window_ms",
         "barge_in_confirm_ms", "barge_in_stop_ms", "preemptive_llm", "speech_preroll_ms", "stt_model", "stt_threads"}


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="old,new", help="modes side by side: old, new (default old,new)")
    p.add_argument("--stt", default="base", help="Whisper model(s), comma-separated: tiny.en, base (default base)")
    p.add_argument("--turns", type=int, default=20, help="complete sentences per mode (default 20)")
    p.add_argument("--pauses", type=int, default=10, help="sentences with a hesitation per mode (default 10, the most)")
    p.add_argument("--barge-ins", type=int, default=8, help="backchannel + interruption rounds per mode (default 8)")
    p.add_argument("--llm", default="scripted", help="scripted (default), local, auto (both) or a base URL")
    p.add_argument("--out", default="out/bench", help="directory for the JSON and PNG (default out/bench)")
    p.add_argument("--local-model", default="qwen2.5-coder-1.5b")
    p.add_argument("--speed", type=float, default=1.0, help="emulator speed (> 1 only to smoke-test: not real time)")
    p.add_argument("--speech", choices=["local", "remote"], default="local", help="remote: STT/TTS on a speech server")
    a = p.parse_args(argv)
    return run_latency(a.turns, a.llm, a.out, a.barge_ins, a.local_model, a.modes, a.stt, a.pauses, a.speed,
                       speech=a.speech)


if __name__ == "__main__":
    sys.exit(main())
