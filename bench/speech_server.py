"""Speech-to-text throughput: utterances per second per core for 1, 4 and 8 concurrent calls, Whisper in the
worker's process vs through the speech server (``voiceagent speech-server``) with batching on and off.

Each "call" is a greenlet that transcribes phone-length questions (Piper, 16 kHz) one after another, as a call
does at each end of turn.  In process: the worker's inference pool (cores // STT_THREADS threads).  Through the
server: the same Whisper in its own process, reached over loopback HTTP by the remote backend the voice worker
uses; with batching, concurrent requests share one encoder pass (speech/stt_batch.py).  All three are loaded
at once and take turns, round after round, so a change in the machine's load falls on each alike.  The
machine's load is recorded (``uptime``) before and after: on a shared box the numbers move with it.
Run: ``voiceagent bench speech`` (or ``python bench/speech_server.py``).
"""
from __future__ import annotations

if __name__ == "__main__":  # before anything imports socket/threading
    from gevent import monkey

    monkey.patch_all()

import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

QUESTIONS = [
    "What time is it?",
    "Is the pharmacy on Main Street open on Sunday?",
    "Please turn on the kitchen lights.",
    "Set a timer for ten minutes.",
    "What is the weather like tomorrow?",
    "Can you call me back in an hour?",
    "I would like to book a table for two people.",
    "Cancel my last timer please.",
]


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def utterances() -> List[np.ndarray]:
    from voiceagent.speech.audio import pcm16_to_float
    from voiceagent.speech.tts import PiperTTS

    tts = PiperTTS(noise_scale=0, noise_w=0)
    return [pcm16_to_float(tts.synthesize(q, 16000)[0]) for q in QUESTIONS]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(transcribe: Callable[[np.ndarray], Any], audio: Sequence[np.ndarray], calls: int,
          per_call: int, cpu_s: Callable[[], float]) -> Dict[str, Any]:
    """``calls`` greenlets, each transcribing ``per_call`` utterances back to back; wall time, the CPU time the
    model's process used (on a shared machine the fair measure of cost: it does not grow with other people's
    load the way wall time does) and latencies."""
    import gevent

    latencies: List[float] = []
    texts: List[str] = []

    def call(i: int) -> None:
        for k in range(per_call):
            t0 = time.monotonic()
            tr = transcribe(audio[(i + k) % len(audio)])
            latencies.append(time.monotonic() - t0)
            texts.append(tr.text)

    t0, c0 = time.monotonic(), cpu_s()
    gevent.joinall([gevent.spawn(call, i) for i in range(calls)], raise_error=True)
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    n = calls * per_call
    cores = os.cpu_count() or 1
    lat = sorted(latencies)
    return {"calls": calls, "utterances": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "utt_per_s_per_core": round(n / wall / cores, 3), "p50_s": round(lat[len(lat) // 2], 2),
            "max_s": round(lat[-1], 2), "empty": sum(1 for t in texts if not t), "latencies": lat}


Engine = Tuple[Callable[[np.ndarray], Any], Callable[[], None], Callable[[], float]]  # transcribe, stop, cpu s


def _local(s: Any) -> Engine:
    from voiceagent.speech.backends import local_stt
    from voiceagent.speech.inference import InferencePool

    pool = InferencePool(s.inference_threads or None, model_threads=s.stt_threads)
    pid = os.getpid()
    return local_stt(s, pool).transcribe, pool.close, lambda: process_cpu_s(pid)


def _server(out: str, batch: bool) -> Engine:
    from latency_remote import SpeechServer

    from voiceagent.speech.remote_stt import RemoteTranscriber

    server = SpeechServer(os.path.join(out, f"speech-server-batch-{'on' if batch else 'off'}.log"), batch).wait_ready()
    pid = server.proc.pid
    stt = RemoteTranscriber(server.base_url, timeout=300, retries=0)
    return stt.transcribe, server.stop, lambda: process_cpu_s(pid)


MODES = {"local": "in process", "batch": "speech server, batching on", "nobatch": "speech server, batching off"}


def measure(audio: Sequence[np.ndarray], concurrency: Sequence[int], per_call: int, rounds: int, modes: Sequence[str],
            out: str) -> List[Dict[str, Any]]:
    """Every mode loaded at once (an idle one costs no CPU), then run in turn, round after round, so a change in
    the machine's load lands on all of them alike; each row sums its rounds."""
    from voiceagent.config import load_settings

    s = load_settings()
    engines: Dict[str, Engine] = {}
    try:
        for mode in modes:
            engines[mode] = _local(s) if mode == "local" else _server(out, batch=mode == "batch")
            engines[mode][0](audio[0])  # the first run is the slow one
        runs: Dict[Tuple[str, int], List[Dict[str, Any]]] = {}
        for r in range(rounds):
            for c in concurrency:
                for mode in modes:
                    run = drive(engines[mode][0], audio, c, per_call, engines[mode][2])
                    runs.setdefault((mode, c), []).append(run)
                    _say(f"round {r + 1}/{rounds}, {c} calls, {MODES[mode]}: {run['utt_per_s_per_core']} utt/s/core "
                         f"by the clock, {run['cpu_s'] / run['utterances']:.2f} CPU s/utt (p50 {run['p50_s']} s)")
    finally:
        for engine in engines.values():
            engine[1]()
    rows = []
    cores = os.cpu_count() or 1
    for (mode, c), rs in runs.items():
        n, wall, cpu = sum(r["utterances"] for r in rs), sum(r["wall_s"] for r in rs), sum(r["cpu_s"] for r in rs)
        lat = sorted(x for r in rs for x in r["latencies"])
        rows.append({"mode": MODES[mode], "calls": c, "utterances": n, "wall_s": round(wall, 1),
                     "utt_per_s_per_core": round(n / wall / cores, 3), "cpu_s": round(cpu, 1),
                     "utt_per_cpu_s": round(n / cpu, 3), "p50_s": round(lat[len(lat) // 2], 2),
                     "max_s": round(lat[-1], 2), "empty": sum(r["empty"] for r in rs)})
    return sorted(rows, key=lambda r: (list(MODES.values()).index(r["mode"]), r["calls"]))


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| STT | concurrent calls | utterances | utterances per CPU-second (= per core, busy) | CPU s | wall s "
             "| utterances/s/core by the clock | p50 latency s | max s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['calls']} | {r['utterances']} | {r.get('utt_per_cpu_s', '-')} "
                     f"| {r.get('cpu_s', '-')} | {r['wall_s']} | {r['utt_per_s_per_core']} | {r['p50_s']} "
                     f"| {r['max_s']} |")
    return "\n".join(lines)


def chart(rows: List[Dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r["mode"] for r in rows))
    conc = sorted({r["calls"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        vals = [next((r["utt_per_cpu_s"] for r in rows if r["mode"] == mode and r["calls"] == c), 0) for c in conc]
        ax.bar([x + i * width for x in range(len(conc))], vals, width, label=mode)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(conc))])
    ax.set_xticklabels([f"{c} call{'s' if c > 1 else ''}" for c in conc])
    ax.set_ylabel("utterances per CPU-second")
    ax.set_title(f"Whisper throughput on {os.cpu_count()} cores")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(modes), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_speech_bench(concurrency: Sequence[int] = (1, 4, 8), per_call: int = 3, out: str = "out/bench",
                     modes: Sequence[str] = ("local", "batch", "nobatch"), rounds: int = 2) -> int:
    from voiceagent.observability.logs import setup_logging

    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        _say(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODES)}")
        return 2
    before = uptime()
    _say(f"before: {before}")
    rows = measure(utterances(), concurrency, per_call, rounds, modes, out)
    after = uptime()
    result = {"rows": rows, "uptime_before": before, "uptime_after": after, "cores": os.cpu_count(),
              "per_call": per_call, "rounds": rounds}
    with open(os.path.join(out, "speech-server.json"), "w") as f:
        json.dump(result, f, indent=1)
    chart(rows, os.path.join(out, "speech-server.png"))
    _say("")
    _say(table(rows))
    _say(f"\nbefore: {before}\nafter:  {after}")
    _say(f"raw numbers: {os.path.join(out, 'speech-server.json')}")
    _say(f"chart:       {os.path.join(out, 'speech-server.png')}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", default="1,4,8", help="concurrent calls, comma-separated (default 1,4,8)")
    p.add_argument("--per-call", type=int, default=3, help="utterances each call transcribes (default 3)")
    p.add_argument("--modes", default="local,batch,nobatch", help="local, batch, nobatch (comma-separated)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, the modes taking turns in each (default 2)")
    p.add_argument("--out", default="out/bench")
    a = p.parse_args(argv)
    return run_speech_bench([int(c) for c in a.concurrency.split(",")], a.per_call, a.out, a.modes.split(","),
                            a.rounds)


if __name__ == "__main__":
    sys.exit(main())
