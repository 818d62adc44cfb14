"""Concurrency benchmark: how many calls one voice worker holds (not a test).

    voiceagent bench load [--models stub|real] [--vad batched|inline|webrtc] [--callers silent|talking]
                          [--levels 25,50,100,200,300,400] [--window 15] [--out out/bench]
    python bench/load.py ...                                    (same code)

The voice worker is its own process (``bench/load_worker.py``: the real worker and conversation
dialog; Whisper and Piper real or stubbed), so its CPU and RSS are its own; this process runs the
FreeSWITCH emulator (speed 1.0, 20 ms L16 frames at 16 kHz over mod_audio_fork's WebSocket, as
FreeSWITCH sends them) and the callers.  Calls are ramped level by level (``--ramp`` new calls a
second, the earlier ones stay up); once a level's calls are all answered and ``--settle`` s (3) passed, a
``--window`` of seconds is measured: audio frames the emulator sent vs frames the worker received,
the worker's event-loop lag p50/p99 (its greenlet asking to wake every 10 ms: how late it woke),
CPU of the worker (all threads, and its loop thread alone) and of this process, the worker's RSS,
turns completed, and calls refused or not answered.  The run stops after the first level where lag
p99 exceeds ``--max-lag-ms`` (20) or frames were lost (received short of sent by over 1 % + 5/s, or
sent < 98 % of the 50 a second each live call should send: the emulator itself fell behind), or calls
failed.  Received is the worker's count interpolated to the window's ends (its lines carry the same
monotonic clock: Linux has one), so the two cover the same seconds.

``--callers talking``: every caller says one of six Piper sentences (synthesized here first) every
6-10 s, so turns run end to end (VAD, STT, the LLM, TTS, playback); ``silent`` callers send silence
(VAD on every frame, no turn).  ``--vad``: ``batched`` (VAD_BATCH=on, the default), ``inline``
(VAD_BATCH=off: each call's chunk in its own greenlet) or ``webrtc`` (VAD_ENGINE=webrtc).
Table on stdout, ``<out>/load-<label>.json`` and ``.png``; the exact command line is printed first.
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
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # its siblings (last: bench/queue.py is no stdlib)
from load_report import header, plot, row  # noqa: E402

SENTENCES = ["Hello, I would like to know your opening hours.", "Can you tell me where the nearest pharmacy is?",
             "Is the restaurant open on Sunday evening?", "How much does a monthly subscription cost?",
             "Do you have parking near the building?", "What time is it?"]
ESL_PASSWORD = "load-password"
FRAME_S = 0.020  # mod_audio_fork's frame
_CLK_TCK = os.sysconf("SC_CLK_TCK")
VADS = {"batched": {"VAD_ENGINE": "silero", "VAD_BATCH": "true"},
        "inline": {"VAD_ENGINE": "silero", "VAD_BATCH": "false"},
        "webrtc": {"VAD_ENGINE": "webrtc", "VAD_BATCH": "false"}}


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int, tid: Optional[int] = None) -> float:
    """utime + stime of a process (all its threads) or of one of its threads, from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / _CLK_TCK


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class WorkerProcess:
    """``bench/load_worker.py`` as a child process; a thread reads its JSON lines (one a second)."""

    def __init__(self, env: Dict[str, str], models: str, log_path: str) -> None:
        self.log = open(log_path, "wb")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_worker.py")
        self.proc = subprocess.Popen([sys.executable, script, "--models", models], env=env, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.lines: List[Dict[str, Any]] = []
        self.ready: Optional[Dict[str, Any]] = None
        self._lock = threading.Lock()

    def start_reader(self) -> None:
        import gevent

        gevent.spawn(self._read)  # the pipe is gevent's (monkey-patched subprocess): reading it yields

    def _read(self) -> None:
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if "ready" in msg or "error" in msg:
                    self.ready = msg
                else:
                    self.lines.append(msg)

    def since(self, t: float) -> List[Dict[str, Any]]:
        with self._lock:
            return [m for m in self.lines if m["t"] >= t]

    def last(self) -> Optional[Dict[str, Any]]:
        with self._lock:
            return self.lines[-1] if self.lines else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


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


def _speech() -> List[Any]:
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


def _at(lines: List[Dict[str, Any]], key: str, t: float) -> float:
    """The worker's counter ``key`` at time ``t`` (its lines are stamped on the same monotonic clock as
    ours: Linux has one), interpolated between the lines around it."""
    for a, b in zip(lines, lines[1:], strict=False):
        if a["t"] <= t <= b["t"]:
            return a[key] + (b[key] - a[key]) * (t - a["t"]) / max(1e-9, b["t"] - a["t"])
    return float(lines[0][key] if t < lines[0]["t"] else lines[-1][key])


def measure(worker: WorkerProcess, callers: Callers, window: float) -> Dict[str, Any]:
    """One window at the current level: what the worker and this process did in it."""
    import gevent
    from bench_stats import nearest_rank

    pid = worker.proc.pid
    sent0, t0 = callers.frames_sent(), time.monotonic()
    cpu0, main0, me0 = cpu_seconds(pid), cpu_seconds(pid, pid), cpu_seconds(os.getpid())
    said0 = callers.said
    gevent.sleep(window)
    sent1, t1 = callers.frames_sent(), time.monotonic()
    cpu1, main1, me1 = cpu_seconds(pid), cpu_seconds(pid, pid), cpu_seconds(os.getpid())
    deadline = time.monotonic() + 5
    while not worker.since(t1) and time.monotonic() < deadline:  # the worker's line after the window
        gevent.sleep(0.1)
    lines = worker.since(t0 - 2.0)
    if len(lines) < 2:
        raise RuntimeError("the worker stopped reporting (its loop is stuck, or it died)")
    inside = [m for m in lines if t0 < m["t"] <= t1 + 1.0]  # each line holds the lag since the one before
    lag = sorted(v for m in inside for v in m["lag_ms"])
    elapsed = t1 - t0
    recv = (_at(lines, "samples", t1) - _at(lines, "samples", t0)) / (16000 * FRAME_S)
    last = lines[-1]
    live = callers.live()
    return {"calls": live, "failed": callers.failed(), "refused": last["refused"],
            "sent_fps": (sent1 - sent0) / elapsed, "recv_fps": recv / elapsed, "expected_fps": live / FRAME_S,
            "lag_p50_ms": nearest_rank(lag, 0.5), "lag_p99_ms": nearest_rank(lag, 0.99),
            "lag_max_ms": lag[-1] if lag else float("nan"), "lag_samples": len(lag),
            "cpu_worker": 100 * (cpu1 - cpu0) / elapsed, "cpu_loop": 100 * (main1 - main0) / elapsed,
            "cpu_bench": 100 * (me1 - me0) / elapsed, "rss_mib": rss_mib(pid),
            "turns": round(_at(lines, "turns", t1) - _at(lines, "turns", t0)), "said": callers.said - said0,
            "vad": last.get("vad"), "pool": last.get("pool"), "load_avg": round(os.getloadavg()[0], 2),
            "window_s": round(elapsed, 1)}


def verdict(r: Dict[str, Any], level: int, max_lag_ms: float) -> str:
    """Why this level fails ('' = it holds)."""
    why = []
    if r["lag_p99_ms"] > max_lag_ms:
        why.append(f"lag p99 {r['lag_p99_ms']:.0f} ms > {max_lag_ms:g}")
    if r["sent_fps"] - r["recv_fps"] > 0.01 * r["sent_fps"] + 5:  # 5/s: the interpolation's slack
        why.append(f"frames lost: received {r['recv_fps']:.0f}/s of {r['sent_fps']:.0f}/s sent")
    if r["sent_fps"] < 0.98 * r["expected_fps"]:
        why.append(f"emulator behind: sent {r['sent_fps']:.0f}/s of {r['expected_fps']:.0f}/s")
    if r["failed"] or r["calls"] < level:
        why.append(f"{r['failed']} calls refused or dropped")
    return "; ".join(why)


def run_load(levels: List[int], models: str = "stub", vad: str = "batched", callers_mode: str = "silent",
             window: float = 15.0, ramp: float = 20.0, max_lag_ms: float = 20.0, out: str = "out/bench",
             stt_model: str = "base", settle: float = 3.0, argv: Optional[List[str]] = None) -> int:
    import gevent
    import redis

    from voiceagent.emulator.stack import start_emulator
    from voiceagent.observability.logs import setup_logging
    from voiceagent.records.keys import Keys

    label = f"{models}-{vad}-{callers_mode}"
    cmd = "voiceagent bench load " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    _say(f"command: {cmd}")
    _say(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    speech = _speech() if callers_mode == "talking" else None
    port = _free_port()
    emu = start_emulator(ESL_PASSWORD, speed=1.0, fork_url=f"ws://127.0.0.1:{port}")
    pid = os.getpid()
    prefix = f"voiceagent-load-{pid}"
    workdir = tempfile.mkdtemp(prefix="voiceagent-load-")
    env = dict(os.environ, ESL_NODES=f"fs1=127.0.0.1:{emu.port}", ESL_PASSWORD=ESL_PASSWORD, FORK_HOST="127.0.0.1",
               FORK_PORT=str(port), REDIS_PREFIX=prefix, WORKER_ID=f"load-{pid}", DIALOG="conversation",
               LLM_BASE_URL="rule-based", MAX_CALLS=str(max(levels) + 50), MAX_CALL_SECONDS="7200",
               IDLE_REPROMPT_S="0", PLAYBACK_DIR=os.path.join(workdir, "pb"), LOG_LEVEL="WARNING", LOG_FORMAT="text",
               WORKER_HEARTBEAT_SECONDS="2", STT_MODEL=stt_model, **VADS[vad])
    if models == "stub":
        env["SMART_TURN"] = "false"  # its model is one of the models stubbed out
    worker = WorkerProcess(env, models, os.path.join(out, f"load-{label}-worker.log"))
    worker.start_reader()
    callers = Callers(emu, speech)
    results: List[Dict[str, Any]] = []
    rc = 0
    try:
        t0 = time.monotonic()
        while worker.ready is None:
            if worker.proc.poll() is not None or time.monotonic() - t0 > 240:
                raise RuntimeError(f"the worker did not start (see {worker.log.name})")
            gevent.sleep(0.2)
        if "error" in worker.ready:
            raise RuntimeError(f"the worker failed: {worker.ready['error']}")
        _say(f"worker pid {worker.proc.pid} ready in {worker.ready['start_s']} s; models {models}, VAD {vad}, "
             f"callers {callers_mode}, window {window:g} s, ramp {ramp:g} calls/s")
        _say(header())
        for level in levels:
            callers.place(level - len(callers.channels), ramp)
            deadline = time.monotonic() + 60
            while not callers.settled() and time.monotonic() < deadline:
                gevent.sleep(0.2)
            gevent.sleep(settle)
            r = measure(worker, callers, window)
            r["level"] = level
            r["why"] = verdict(r, level, max_lag_ms)
            results.append(r)
            _say(row(r))
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the worker died with {worker.proc.returncode} (see {worker.log.name})")
            if r["why"]:
                _say(f"stopped at {level} calls: {r['why']}")
                break
    except RuntimeError as exc:
        _say(f"load aborted: {exc}")
        rc = 1
    finally:
        callers.hangup_all()
        worker.stop()
        emu.stop()
        r = redis.Redis()
        for key in r.scan_iter(Keys(prefix).everything):
            r.delete(key)
    if results:
        held = [x["level"] for x in results if not x["why"]]
        _say(f"held: {max(held) if held else 0} calls ({label}); load average at the end "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        doc = {"command": cmd, "label": label, "models": models, "vad": vad, "callers": callers_mode,
               "window_s": window, "ramp": ramp, "max_lag_ms": max_lag_ms, "stt_model": stt_model,
               "cores": os.cpu_count(), "results": results}
        with open(os.path.join(out, f"load-{label}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        plot(results, os.path.join(out, f"load-{label}.png"), f"{label}  ({cmd})", max_lag_ms)
        base = os.path.join(out, f"load-{label}")
        _say(f"raw numbers: {base}.json\nplot:        {base}.png")
    return rc


def parse_levels(text: str) -> List[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(b <= a for a, b in zip(levels, levels[1:], strict=False)) or levels[0] < 1:
        raise ValueError(f"--levels must be increasing call counts, like 25,50,100, not {text!r}")
    return levels


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="voiceagent bench load", description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="25,50,100,200,300,400", help="concurrent calls per level")
    p.add_argument("--models", choices=["stub", "real"], default="stub", help="Whisper/Piper stubbed or real")
    p.add_argument("--vad", choices=sorted(VADS), default="batched",
                   help="batched (VAD_BATCH=on), inline (VAD_BATCH=off) or webrtc (VAD_ENGINE=webrtc)")
    p.add_argument("--callers", choices=["silent", "talking"], default="silent")
    p.add_argument("--window", type=float, default=15.0, help="seconds measured per level")
    p.add_argument("--ramp", type=float, default=20.0, help="new calls per second")
    p.add_argument("--max-lag-ms", type=float, default=20.0)
    p.add_argument("--stt-model", default="base", help="Whisper model with --models real")
    p.add_argument("--settle", type=float, default=3.0, help="seconds between a level's last answer and its window")
    p.add_argument("--out", default="out/bench")
    a = p.parse_args(argv)
    return run_load(parse_levels(a.levels), a.models, a.vad, a.callers, a.window, a.ramp, a.max_lag_ms, a.out,
                    a.stt_model, a.settle, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
