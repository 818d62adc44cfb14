"""Concurrency benchmark: how many calls voice worker processes hold (not a test).

    voiceagent bench load [--models stub|real] [--vad batched|inline|webrtc] [--callers silent|talking]
                          [--workers N] [--levels 25,50,100,200,300,400] [--window 15] [--keep-going]
                          [--out out/bench]
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
``--workers N``: N worker processes behind one fork port (FORK_REUSE_PORT=true: the kernel spreads the
forks), CPU and RSS summed, the busiest loop thread shown.  Table on stdout, ``<out>/load-<label>.json``
and ``.png``; the exact command line is printed first.
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
from load_callers import Callers, caller_speech  # noqa: E402
from load_report import header, markdown, plot, row  # noqa: E402

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

    def __init__(self, env: Dict[str, str], models: str, log_path: str, profile: str = "") -> None:
        self.log = open(log_path, "wb")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_worker.py")
        self.proc = subprocess.Popen([sys.executable, script, "--models", models, "--profile", profile], env=env,
                                     stdout=subprocess.PIPE, stderr=self.log)
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


def _at(lines: List[Dict[str, Any]], key: str, t: float) -> float:
    """The worker's counter ``key`` at time ``t`` (its lines are stamped on the same monotonic clock as
    ours: Linux has one), interpolated between the lines around it."""
    for a, b in zip(lines, lines[1:], strict=False):
        if a["t"] <= t <= b["t"]:
            return a[key] + (b[key] - a[key]) * (t - a["t"]) / max(1e-9, b["t"] - a["t"])
    return float(lines[0][key] if t < lines[0]["t"] else lines[-1][key])


def measure(workers: List[WorkerProcess], callers: Callers, window: float) -> Dict[str, Any]:
    """One window at the current level: what the workers and this process did in it (CPU and RSS
    summed over the workers, the loop thread of the busiest, lag over all their samples)."""
    import gevent
    from bench_stats import nearest_rank

    pids = [w.proc.pid for w in workers]

    def cpu():
        return [cpu_seconds(p) for p in pids], [cpu_seconds(p, p) for p in pids], cpu_seconds(os.getpid())

    sent0, t0 = callers.frames_sent(), time.monotonic()
    all0, loop0, me0 = cpu()
    said0 = callers.said
    gevent.sleep(window)
    sent1, t1 = callers.frames_sent(), time.monotonic()
    all1, loop1, me1 = cpu()
    elapsed = t1 - t0
    deadline = time.monotonic() + 5
    while not all(w.since(t1) for w in workers) and time.monotonic() < deadline:  # each one's line after it
        gevent.sleep(0.1)
    lag: List[float] = []
    recv = turns = refused = 0.0
    vads, pools, per_worker = [], [], []
    for w in workers:
        lines = w.since(t0 - 2.0)
        if len(lines) < 2:
            raise RuntimeError(f"worker {w.proc.pid} stopped reporting (its loop is stuck, or it died)")
        lag += [v for m in lines if t0 < m["t"] <= t1 + 1.0 for v in m["lag_ms"]]  # lag since the line before
        recv += (_at(lines, "samples", t1) - _at(lines, "samples", t0)) / (16000 * FRAME_S)
        turns += _at(lines, "turns", t1) - _at(lines, "turns", t0)
        refused += lines[-1]["refused"]
        per_worker.append(lines[-1]["calls"])
        vads.append(lines[-1].get("vad"))
        pools.append(lines[-1].get("pool"))
    lag.sort()
    live = callers.live()
    vad = None
    if all(vads):
        runs, rows = sum(v["runs"] for v in vads), sum(v["rows"] for v in vads)
        vad = {"runs": runs, "rows": rows, "rows_per_run": round(rows / runs, 1) if runs else 0.0,
               "max_rows": max(v["max_rows"] for v in vads), "failures": sum(v["failures"] for v in vads)}
    return {"calls": live, "failed": callers.failed(), "refused": refused, "workers": len(workers),
            "calls_per_worker": per_worker,
            "sent_fps": (sent1 - sent0) / elapsed, "recv_fps": recv / elapsed, "expected_fps": live / FRAME_S,
            "lag_p50_ms": nearest_rank(lag, 0.5), "lag_p99_ms": nearest_rank(lag, 0.99),
            "lag_max_ms": lag[-1] if lag else float("nan"), "lag_samples": len(lag),
            "cpu_worker": 100 * (sum(all1) - sum(all0)) / elapsed,
            "cpu_loop": 100 * max(b - a for a, b in zip(loop0, loop1, strict=True)) / elapsed,
            "cpu_bench": 100 * (me1 - me0) / elapsed, "rss_mib": sum(rss_mib(p) for p in pids),
            "turns": round(turns), "said": callers.said - said0, "vad": vad, "pool": pools,
            "load_avg": round(os.getloadavg()[0], 2), "window_s": round(elapsed, 1)}


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
             stt_model: str = "base", settle: float = 3.0, profile: bool = False, workers: int = 1,
             keep_going: bool = False,
             argv: Optional[List[str]] = None) -> int:
    import gevent
    import redis

    from voiceagent.emulator.stack import start_emulator
    from voiceagent.observability.logs import setup_logging
    from voiceagent.records.keys import Keys

    label = f"{models}-{vad}-{callers_mode}" + (f"-{workers}w" if workers > 1 else "")
    cmd = "voiceagent bench load " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    _say(f"command: {cmd}")
    _say(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    speech = caller_speech() if callers_mode == "talking" else None
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
    if workers > 1:
        env["FORK_REUSE_PORT"] = "true"  # one fork port, the kernel spreads the forks over the workers
    procs = []
    for k in range(workers):
        wenv = dict(env, WORKER_ID=f"load-{pid}-{k + 1}")
        procs.append(WorkerProcess(wenv, models, os.path.join(out, f"load-{label}-worker{k + 1}.log"),
                                   os.path.abspath(os.path.join(out, f"load-{label}-{k + 1}.prof")) if profile else ""))
        procs[-1].start_reader()
    callers = Callers(emu, speech)
    results: List[Dict[str, Any]] = []
    rc = 0
    try:
        t0 = time.monotonic()
        for w in procs:
            while w.ready is None:
                if w.proc.poll() is not None or time.monotonic() - t0 > 240:
                    raise RuntimeError(f"a worker did not start (see {w.log.name})")
                gevent.sleep(0.2)
            if "error" in w.ready:
                raise RuntimeError(f"a worker failed: {w.ready['error']}")
        _say(f"{workers} worker process(es) (pid {', '.join(str(w.proc.pid) for w in procs)}) ready in "
             f"{time.monotonic() - t0:.1f} s; models {models}, VAD {vad}, callers {callers_mode}, window {window:g} s, "
             f"ramp {ramp:g} calls/s")
        _say(header())
        for level in levels:
            callers.place(level - len(callers.channels), ramp)
            deadline = time.monotonic() + 60
            while not callers.settled() and time.monotonic() < deadline:
                gevent.sleep(0.2)
            gevent.sleep(settle)
            r = measure(procs, callers, window)
            r["level"] = level
            r["why"] = verdict(r, level, max_lag_ms)
            results.append(r)
            _say(row(r))
            dead = [w for w in procs if w.proc.poll() is not None]
            if dead:
                raise RuntimeError(f"a worker died with {dead[0].proc.returncode} (see {dead[0].log.name})")
            if r["why"] and (not keep_going or r["failed"] > level // 2):
                _say(f"stopped at {level} calls: {r['why']}")
                break
    except RuntimeError as exc:
        _say(f"load aborted: {exc}")
        rc = 1
    finally:
        callers.hangup_all()
        for w in procs:
            w.stop()
        emu.stop()
        r = redis.Redis()
        for key in r.scan_iter(Keys(prefix).everything):
            r.delete(key)
    if results:
        held = [x["level"] for x in results if not x["why"]]
        held = [lv for lv in held if all(not x["why"] for x in results if x["level"] <= lv)]  # up to the first miss
        _say(f"held: {max(held) if held else 0} calls ({label}); load average at the end "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        doc = {"command": cmd, "label": label, "models": models, "vad": vad, "callers": callers_mode,
               "workers": workers, "window_s": window, "ramp": ramp, "max_lag_ms": max_lag_ms, "stt_model": stt_model,
               "cores": os.cpu_count(), "results": results}
        with open(os.path.join(out, f"load-{label}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        plot(results, os.path.join(out, f"load-{label}.png"), f"{label}  ({cmd})", max_lag_ms)
        base = os.path.join(out, f"load-{label}")
        with open(f"{base}.md", "w") as f:
            f.write(f"`{cmd}`\n\n{markdown(results)}\n")
        _say(f"raw numbers: {base}.json\nplot:        {base}.png\nREADME table: {base}.md")
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
    p.add_argument("--profile", action="store_true", help="cProfile the worker's loop thread (<out>/load-<label>.prof)")
    p.add_argument("--keep-going", action="store_true",
                   help="measure every level (verdicts still shown); stop only when most calls failed")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the fork port (FORK_REUSE_PORT)")
    p.add_argument("--out", default="out/bench")
    a = p.parse_args(argv)
    if a.workers < 1:
        p.error("--workers must be at least 1")
    return run_load(parse_levels(a.levels), a.models, a.vad, a.callers, a.window, a.ramp, a.max_lag_ms, a.out,
                    a.stt_model, a.settle, a.profile, a.workers, a.keep_going, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
