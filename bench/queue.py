"""``voiceagent bench queue``: outbound calls through the RQ queue and the cluster-wide call limit.

Submits N calls back to back with ``Dispatcher.submit`` (the path every outbound call takes) while
R ``voiceagent jobs worker`` processes hand them to W voice workers under CALL_CONCURRENCY_LIMIT,
against the FreeSWITCH emulator answering at once (greeting dialog, a short greeting: short calls,
yet long enough that 50 slots cannot keep up with the submitter, so the limit binds).
Everything is read back from the records (and a sampler of the slots zset): the dial rate, enqueue
-> dial, the most calls live at once between hand-over and end (must never exceed the limit), and
the CPU each process used during the run.  Prints a table, writes queue.json and queue.png.

The voice workers run as ``voiceagent voice`` processes by default (``--voice-in-process`` puts
them in the bench process, as ``bench requests`` does): in one process with the emulator they share
one core, which ran at ~86 % and slowed claiming and dialing (1 s greeting: hand-over -> claimed
p50 38 ms instead of 4 ms, 3,050 instead of 4,850 calls/min), so the queue would have been measured behind a
bottleneck of the bench's own making.  RQ workers run ``--without-scheduler --queue high --queue
bulk``: nothing here is enqueued for later (no retries), and RQ's scheduler is a forked child whose
CPU would otherwise go uncounted.  CPU is utime + stime from /proc during the run (submit to the
last call's end), so process start-up is not counted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import gevent

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/ is not a package: its siblings
from bench_stats import nearest_rank  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_CLK_TCK = os.sysconf("SC_CLK_TCK")


_pct = nearest_rank


def _at(rec: Any, state: str) -> Optional[float]:
    return next((h.at for h in rec.history if h.state == state), None)


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (psutil is not a dependency: /proc/<pid>/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / _CLK_TCK


def peak_live(spans: List[Tuple[float, float]]) -> Tuple[int, List[Tuple[float, int]]]:
    """Most spans open at once (an end at the same instant as a start counts first), and the step curve."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    live = worst = 0
    curve = []
    for t, d in edges:
        live += d
        worst = max(worst, live)
        curve.append((t, live))
    return worst, curve


def reuse_gaps(spans: List[Tuple[float, float, float]], limit: int) -> List[float]:
    """ms from the j-th call end to the (limit + j)-th hand-over, for (created, handed over, ended) spans: that
    hand-over needed the j-th freed slot.  Counted only when its call was already queued when the slot was freed
    (else the wait was for the submitter, not the queue); a negative gap would mean the limit was exceeded."""
    starts = sorted(spans, key=lambda x: x[1])
    ends = sorted(b for _, _, b in spans)
    return [(starts[limit + j][1] - ends[j]) * 1000.0 for j in range(max(0, len(starts) - limit))
            if starts[limit + j][0] <= ends[j]]


def time_at(curve: List[Tuple[float, int]], level: int) -> float:
    """Seconds the step curve spent at ``level`` or above."""
    return sum(b[0] - a[0] for a, b in zip(curve, curve[1:], strict=False) if a[1] >= level)


def write_greeting(path: str, ms: int) -> None:
    """A short 16 kHz tone: the call's whole length at emulator speed 1 (the greeting dialog hangs up after it)."""
    import math
    import struct
    import wave

    rate = 16000
    n = int(rate * ms / 1000)
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class RqWorkers:
    """``python -m voiceagent.cli jobs worker`` processes on the bench prefix, settings by environment."""

    def __init__(self, n: int, prefix: str, redis_url: str, log_dir: str, **env: str) -> None:
        self.n, self.prefix, self.redis_url, self.log_dir, self.env = n, prefix, redis_url, log_dir, env
        self.procs: List[subprocess.Popen] = []

    def names(self) -> List[str]:
        return [f"{self.prefix}-rq{i + 1}" for i in range(self.n)]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CALL_", "DIAL_", "QUEUE_"))}
        env.update(REDIS_PREFIX=self.prefix, REDIS_URL=self.redis_url, PYTHONPATH=str(ROOT), **self.env)
        for name in self.names():
            log = open(os.path.join(self.log_dir, f"{name}.log"), "w")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "voiceagent.cli", "jobs", "worker", "--without-scheduler", "--name", name,
                 "--queue", "high", "--queue", "bulk"],
                cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()

    def wait_ready(self, queues: Any, timeout: float = 60.0) -> bool:
        """Until every worker has registered on the high queue (RQ's worker set), or one died."""
        from rq import Worker

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                return False
            if Worker.count(queue=queues.get("high")) >= self.n:
                return True
            gevent.sleep(0.1)
        return False

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


class VoiceProcs:
    """``python -m voiceagent.cli voice`` processes (greeting dialog) on the emulator, each its own fork port."""

    def __init__(self, n: int, s: Any, emu_port: int, log_dir: str) -> None:
        self.n, self.s, self.emu_port, self.log_dir = n, s, emu_port, log_dir
        self.procs: List[subprocess.Popen] = []

    def ids(self) -> List[str]:
        return [f"{self.s.worker_id}-w{i + 1}" for i in range(self.n)]

    def start(self) -> None:
        import socket

        s = self.s
        for wid in self.ids():
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKER_", "ESL_", "FORK_"))}
            env.update(ESL_NODES=f"fs1=127.0.0.1:{self.emu_port}", ESL_PASSWORD=s.esl_password.get_secret_value(),
                       FORK_HOST="127.0.0.1", FORK_PORT=str(port), REDIS_URL=s.redis_url, REDIS_PREFIX=s.redis_prefix,
                       WORKER_ID=wid, DIALOG="greeting", GREETING_FILE=s.greeting_file, MAX_CALLS=str(s.max_calls),
                       ORIGINATE_GATEWAY=s.originate_gateway, ADMISSION_MAX_LOOP_LAG_MS="0",
                       PLAYBACK_DIR=os.path.join(s.playback_dir, wid), LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
            log = open(os.path.join(self.log_dir, f"{wid}.log"), "w")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], cwd=str(ROOT),
                                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()

    def wait_ready(self, r: Any, keys: Any, timeout: float = 60.0) -> bool:
        """Until every worker's heartbeat says its ESL link is connected (a beat every 5 s), or one died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                return False
            beats = [r.hget(keys.worker(w), "nodes") for w in self.ids()]
            if all(b and json.loads(b).get("fs1", {}).get("state") == "connected" for b in beats):
                return True
            gevent.sleep(0.1)
        return False

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    stop = RqWorkers.stop


def clean_up(r: Any, keys: Any, job_ids: set, worker_names: List[str]) -> int:
    """Delete every key of the prefix and RQ's keys of its queues, jobs and workers; returns keys left over."""
    prefix = keys.prefix
    job_ids = set(job_ids)  # and every call of the prefix (a submit interrupted after its enqueue)
    record_key = keys.record("")
    for key in r.scan_iter(record_key + "*", count=1000):
        job_ids.add("dial-" + (key.decode() if isinstance(key, bytes) else key)[len(record_key):])
    for key in list(r.scan_iter(keys.everything, count=1000)):
        r.delete(key)
    ours = re.compile(r"dial-[0-9a-f-]{36}")
    for key in list(r.scan_iter("rq:*", count=1000)):
        k = key.decode() if isinstance(key, bytes) else key
        m = ours.search(k)
        if prefix in k or (m and m.group(0) in job_ids):
            r.delete(key)
    if worker_names:
        r.srem("rq:workers", *[f"rq:worker:{n}" for n in worker_names])
    left = sum(1 for _ in r.scan_iter(keys.everything, count=1000))
    left += sum(1 for k in r.scan_iter("rq:*", count=1000) if prefix in (k.decode() if isinstance(k, bytes) else k))
    return left


def run_queue(calls: int, voice_workers: int, rq_workers: int, limit: int, greeting_ms: int, speed: float,
              priority: str, out: str, voice_procs: bool = True) -> int:
    import redis

    from voiceagent.calls.worker import VoiceWorker
    from voiceagent.emulator.stack import stack_settings, start_emulator
    from voiceagent.jobs.dispatch import Dispatcher, dial_job_id
    from voiceagent.jobs.queues import Queues, rq_connection
    from voiceagent.records.client import CallClient

    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="voiceagent-bench-queue-")
    greeting = os.path.join(tmp, "greeting.wav")
    write_greeting(greeting, greeting_ms)
    base = stack_settings("bench-queue", max_calls=limit, originate_gateway="carrier1", admission_max_loop_lag_ms=0,
                          playback_dir=os.path.join(tmp, "playback"), greeting_file=greeting,
                          call_concurrency_limit=limit, queue_max_depth=max(1000, calls))
    prefix = base.redis_prefix
    r = redis.Redis.from_url(base.redis_url)
    client = CallClient(r, prefix)
    queues = Queues(rq_connection(base), prefix)
    rq = RqWorkers(rq_workers, prefix, base.redis_url, tmp, CALL_CONCURRENCY_LIMIT=str(limit))
    job_ids: set = set()
    emu = None
    ws: List[Any] = []
    vp: Optional[VoiceProcs] = None
    samples: List[Tuple[float, int]] = []
    ids: List[str] = []
    recs: List[Any] = []
    cpu0: Dict[str, float] = {}
    cpu1: Dict[str, float] = {}
    ready = False
    # SIGTERM like Ctrl-C: into the finally below (the workers are in their own sessions: nobody else stops them)
    term = gevent.signal_handler(signal.SIGTERM, gevent.kill, gevent.getcurrent(), KeyboardInterrupt)
    try:
        emu = start_emulator(base.esl_password.get_secret_value(), speed=speed)
        if voice_procs:
            vp = VoiceProcs(voice_workers, base, emu.port, tmp)
            vp.start()
        else:
            for i in range(voice_workers):
                w = VoiceWorker(base.model_copy(update={"esl_nodes": {"fs1": f"127.0.0.1:{emu.port}"},
                                                        "worker_id": f"{base.worker_id}-w{i + 1}"}))
                w.start()
                ws.append(w)
        rq.start()
        ready = (all(n.esl.wait_connected(10) for w in ws for n in w.nodes.values()) and rq.wait_ready(queues)
                 and (vp is None or vp.wait_ready(r, client.keys)))
        if not ready:
            print("the voice workers or the RQ workers did not come up (logs in " + tmp + ")", file=sys.stderr)
            return 1
        numbers = [f"+1555800{i:04d}" for i in range(calls)]
        for num in numbers:
            emu.script_destination(num, outcome="answer", ring_seconds=0.0)
        dispatcher = Dispatcher.from_settings(base, client)
        stop = gevent.event.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.time(), int(r.zcard(client.keys.call_slots))))
                stop.wait(0.01)

        sampler = gevent.spawn(sample)
        pids = {"bench (emulator" + (")" if vp else " + voice workers)"): os.getpid()}
        pids.update({f"voice worker {i + 1}": p.pid for i, p in enumerate(vp.procs if vp else [])})
        pids.update({f"rq worker {i + 1}": p.pid for i, p in enumerate(rq.procs)})
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = time.time()
        for num in numbers:
            call_id = dispatcher.submit({"to": num, "deadline_seconds": 600}, priority=priority)  # type: ignore[arg-type]
            ids.append(call_id)
            job_ids.add(dial_job_id(call_id))
        t_submitted = time.time()
        recs = [client.wait(i, timeout=600) for i in ids]
        wall = time.time() - t0
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        rq_alive = rq.alive() and (vp is None or vp.alive())
        stop.set()
        sampler.join(2)
    finally:
        term.cancel()
        rq.stop()
        if vp is not None:
            vp.stop()
        for w in ws:
            w.stop()
        if emu is not None:
            emu.stop()
        left = clean_up(r, client.keys, job_ids, rq.names())
        if ready:
            shutil.rmtree(tmp, ignore_errors=True)
    return _report(recs, samples, cpu0, cpu1, t0, t_submitted, wall, left, rq_alive,
                   dict(calls=calls, voice_workers=voice_workers, voice_procs=voice_procs, rq_workers=rq_workers,
                        limit=limit,
                        greeting_ms=greeting_ms, speed=speed, priority=priority), out)


def _report(recs: List[Any], samples: List[Tuple[float, int]], cpu0: Dict[str, float], cpu1: Dict[str, float],
            t0: float, t_submitted: float, wall: float, left: int, rq_alive: bool, cfg: Dict[str, Any],
            out: str) -> int:
    n, limit = cfg["calls"], cfg["limit"]
    ok = [x for x in recs if x.outcome is not None and x.outcome.value == "answered"]
    dialed = sorted(t for t in (_at(x, "dialing") for x in recs) if t is not None)
    answered = sorted(t for t in (_at(x, "answered") for x in ok) if t is not None)
    ms = 1000.0

    def span(a: str, b: str) -> List[float]:
        out_ = []
        for x in recs:
            ta = x.created if a == "created" else _at(x, a)
            tb = _at(x, b)
            if ta is not None and tb is not None:
                out_.append((tb - ta) * ms)
        return out_

    rows = {
        "enqueue -> dialing": span("created", "dialing"),
        "  queued -> handed over": span("created", "requested"),
        "  handed over -> claimed": span("requested", "claimed"),
        "  claimed -> dialing": span("claimed", "dialing"),
        "dialing -> answered": span("dialing", "answered"),
        "answered -> ended": [(x.ended_at - _at(x, "answered")) * ms for x in ok if x.ended_at],
    }
    spans = [(x.created, _at(x, "requested"), x.ended_at) for x in recs if _at(x, "requested") and x.ended_at]
    rows["slot freed -> next hand-over"] = reuse_gaps(spans, limit)  # type: ignore[arg-type]
    peak_hist, curve = peak_live([(a, b) for _, a, b in spans])  # type: ignore[misc]
    full = time_at(curve, limit)
    peak_zset = max((c for _, c in samples), default=0)
    dial_rate = len(dialed) / (dialed[-1] - t0) * 60 if dialed else 0.0
    ans_rate = len(answered) / (answered[-1] - t0) * 60 if answered else 0.0
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}

    print(f"\n{n} calls submitted ({cfg['priority']}) in {t_submitted - t0:.2f} s; {cfg['rq_workers']} RQ workers, "
          f"{cfg['voice_workers']} voice workers ({'processes' if cfg['voice_procs'] else 'in-process'}), "
          f"CALL_CONCURRENCY_LIMIT={limit}, greeting {cfg['greeting_ms']} ms "
          f"at emulator speed {cfg['speed']:g}x")
    print(f"{'stage (ms)':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'n':>6}")
    for name, xs in rows.items():
        print(f"{name:<28}{_pct(xs, .5):>8.0f}{_pct(xs, .95):>8.0f}{_pct(xs, .99):>8.0f}"
              f"{max(xs or [float('nan')]):>8.0f}{len(xs):>6}")
    print(f"dialed {len(dialed)}/{n} ({dial_rate:.0f} calls/min), answered {len(ok)}/{n} ({ans_rate:.0f} calls/min), "
          f"wall {wall:.1f} s")
    print(f"most calls live (hand-over -> end): {peak_hist} from the records, {peak_zset} in the slots zset "
          f"({len(samples)} samples); limit {limit}, reached for {full:.1f} s of {wall:.1f}")
    print(f"{'process':<34}{'CPU s':>8}{'% of wall':>11}")
    for k, v in cpu.items():
        print(f"{k:<34}{v:>8.1f}{v / wall * 100:>10.0f}%")
    print(f"keys left after clean-up: {left}")
    sound = (len(ok) == n and peak_hist <= limit and peak_zset <= limit and left == 0 and rq_alive)
    result = {"config": cfg, "wall_s": wall, "submit_s": t_submitted - t0, "dialed": len(dialed),
              "answered": len(ok), "dial_per_min": dial_rate, "answered_per_min": ans_rate,
              "peak_live_records": peak_hist, "peak_live_slots_zset": peak_zset, "at_limit_s": full,
              "slot_samples": len(samples),
              "cpu_s": cpu, "cpu_pct_of_wall": {k: v / wall * 100 for k, v in cpu.items()},
              "keys_left": left, "rq_workers_alive": rq_alive, "sound": sound, "stages_ms": rows}
    with open(os.path.join(out, "queue.json"), "w") as f:
        json.dump(result, f, indent=1)
    _plot(curve, samples, dialed, answered, t0, limit, os.path.join(out, "queue.png"))
    print(f"wrote {out}/queue.json and {out}/queue.png" + ("" if sound else "  [run NOT sound]"))
    return 0 if sound else 1


def _plot(curve: List[Tuple[float, int]], samples: List[Tuple[float, int]], dialed: List[float],
          answered: List[float], t0: float, limit: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    a1.step([t - t0 for t, _ in curve], [c for _, c in curve], where="post", label="live (records: hand-over -> end)")
    a1.plot([t - t0 for t, _ in samples], [c for _, c in samples], lw=0.6, alpha=0.7, label="slots zset (sampled)")
    a1.axhline(limit, color="red", ls="--", lw=1, label=f"CALL_CONCURRENCY_LIMIT={limit}")
    a1.set_ylabel("calls")
    a1.legend(loc="lower center", fontsize=8)
    a1.set_title("outbound calls through the RQ queue")
    a2.plot([t - t0 for t in dialed], range(1, len(dialed) + 1), label="dialed (handed to FreeSWITCH)")
    a2.plot([t - t0 for t in answered], range(1, len(answered) + 1), label="answered")
    a2.set_xlabel("s since the first submit")
    a2.set_ylabel("calls (cumulative)")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
