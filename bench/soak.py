"""Soak benchmark: emulated calls back to back for N minutes; does the voice worker leak? (not a test)

    .venv/bin/python bench/soak.py [--minutes N] [--concurrency 20] [--stt-model tiny.en] [--out DIR]
    voiceagent bench soak --minutes N            (same code)

One voice worker runs as its own process (``voiceagent voice``, the conversation dialog: VAD,
Whisper, the LLM, Piper), so its RSS and open files are its own.  This process runs the
FreeSWITCH emulator (speed 1.0), the scripted zero-latency LLM (``voiceagent.testing.llm_server``)
and ``--concurrency`` callers, each placing calls back to back: wait for the greeting, say two
sentences (Piper speech) and wait for each answer, hang up.  A call *fails* when it is not
answered, an answer does not come within 60 s, or the agent hangs up first.

Every minute: the worker's RSS, open fds, tracked greenlets and live calls (its Redis heartbeat),
plus calls placed/failed, as a table and ``<out>/soak.png``; raw numbers in ``<out>/soak.json``.
Pools (Redis, the LLM client's HTTP connections, inference threads) grow to their working size in
the first minutes; a leak is what keeps growing after that, with the same number of live calls.
Calls refused by admission control (``USER_BUSY``: the inference queue is backed up) count as failed.
Whisper ``tiny.en`` by default: the soak looks for leaks, not latency, and base would saturate two
cores at 20 calls (``--stt-model base`` for the real thing on a bigger machine).
"""
from __future__ import annotations

if __name__ == "__main__":  # before anything imports socket/threading (the CLI patches itself)
    from gevent import monkey

    monkey.patch_all()

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SENTENCES = ["Hello, I would like to know your opening hours.", "Can you tell me where the nearest pharmacy is?",
             "Is the restaurant open on Sunday evening?", "How much does a monthly subscription cost?",
             "Do you have parking near the building?", "Thanks, that sounds good to me."]
ANSWER = "Sure, I can help you with that."
ESL_PASSWORD = "soak-password"


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stats(pid: int) -> Tuple[float, int, int]:
    """RSS in MiB, open file descriptors and how many of them are sockets, of ``pid`` (Linux /proc)."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
    fds = sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return rss, fds, sockets


def _speech(texts: List[str]) -> Dict[str, Tuple[bytes, int]]:
    from voiceagent.config import load_settings
    from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float, resample
    from voiceagent.speech.inference import InferencePool
    from voiceagent.speech.tts import make_tts

    settings = load_settings()
    tts = make_tts(settings, InferencePool(1, model_threads=1))
    out = {}
    for t in texts:
        pcm, rate = tts.synthesize(t)
        out[t] = float_to_pcm16(resample(pcm16_to_float(pcm), rate, 16000)), 16000
    return out


class Caller:
    """One caller slot: calls back to back until ``deadline``."""

    def __init__(self, emu, speech: Dict[str, Tuple[bytes, int]], deadline: float, stats: Dict[str, int], seed: int):
        self.emu = emu
        self.speech = speech
        self.deadline = deadline
        self.stats = stats
        self.rnd = random.Random(seed)

    def run(self) -> None:
        import gevent

        while time.monotonic() < self.deadline:
            self.stats["placed"] += 1
            ok, why = self.one_call()
            if not ok:
                self.stats["failed"] += 1
                self.stats.setdefault("why", {}).setdefault(why, 0)
                self.stats["why"][why] += 1
                gevent.sleep(1.0)

    def _wait_reply(self, ch, segments_before: int, timeout: float) -> bool:
        import gevent

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ch.hangup_cause:
                return False
            if len(ch.segments) > segments_before and ch.playing is None:
                gevent.sleep(0.3)  # a following sentence of the same reply would start now
                if ch.playing is None:
                    return True
            gevent.sleep(0.05)
        return False

    def one_call(self) -> Tuple[bool, str]:
        import gevent

        from voiceagent.emulator.stack import AGENT_NUMBER

        ch = self.emu.place_call(destination=AGENT_NUMBER, caller=f"+1555{self.rnd.randrange(10**7):07d}")
        try:
            if not ch.wait_answered(20):
                return False, f"not answered ({ch.hangup_cause or 'timeout'})"
            if not self._wait_reply(ch, 0, 30):
                return False, "no greeting"
            for text in self.rnd.sample(SENTENCES, 2):
                gevent.sleep(self.rnd.uniform(0.5, 2.0))
                n = len(ch.segments)
                ch.say(self.speech[text])
                if not self._wait_reply(ch, n, 60):
                    return False, "agent hung up" if ch.hangup_cause else "no answer within 60 s"
            return True, ""
        finally:
            ch.hangup()
            ch.wait_hangup(10)


def run_soak(minutes: float, concurrency: int = 20, stt_model: str = "tiny.en", out: str = "out/bench") -> int:
    import gevent
    import redis

    from voiceagent.emulator.stack import start_emulator
    from voiceagent.observability.logs import setup_logging
    from voiceagent.testing.llm_server import ScriptedLlmServer, text

    setup_logging("WARNING", "text")
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    speech = _speech(SENTENCES)
    _say(f"caller speech synthesized in {time.monotonic() - t0:.1f}s")
    llm = ScriptedLlmServer(handler=lambda body: text(ANSWER)).start()
    port = _free_port()
    emu = start_emulator(ESL_PASSWORD, speed=1.0, fork_url=f"ws://127.0.0.1:{port}")  # the worker is a process
    pid = os.getpid()
    prefix, wid = f"voiceagent-soak-{pid}", f"soak-{pid}"
    workdir = tempfile.mkdtemp(prefix="voiceagent-soak-")
    env = dict(os.environ, ESL_NODES=f"fs1=127.0.0.1:{emu.port}", ESL_PASSWORD=ESL_PASSWORD, FORK_HOST="127.0.0.1",
               FORK_PORT=str(port), REDIS_PREFIX=prefix, WORKER_ID=wid, DIALOG="conversation",
               LLM_BASE_URL=llm.base_url, LLM_MODEL="scripted", STT_MODEL=stt_model,
               MAX_CALLS=str(concurrency + 5), PLAYBACK_DIR=os.path.join(workdir, "pb"), LOG_LEVEL="WARNING",
               LOG_FORMAT="text", WORKER_HEARTBEAT_SECONDS="2", WORKER_HEARTBEAT_TTL="10")
    log_path = os.path.join(out, "soak-worker.log")
    log = open(log_path, "wb")
    worker = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], env=env, stdout=log, stderr=log)
    r = redis.Redis()
    samples: List[Dict[str, Any]] = []
    stats: Dict[str, Any] = {"placed": 0, "failed": 0}
    rc = 0
    try:
        t1 = time.monotonic()
        while not r.exists(f"{prefix}:worker:{wid}"):
            if worker.poll() is not None or time.monotonic() - t1 > 180:
                raise RuntimeError(f"the worker did not start (see {log_path})")
            gevent.sleep(0.2)
        _say(f"worker pid {worker.pid} ready in {time.monotonic() - t1:.1f}s (models loaded); "
             f"{concurrency} callers for {minutes:g} min, Whisper {stt_model}, scripted LLM")

        def sample(minute: float) -> Dict[str, Any]:
            rss, fds, sockets = _proc_stats(worker.pid)
            beat = {k.decode(): v.decode() for k, v in r.hgetall(f"{prefix}:worker:{wid}").items()}
            row = {"minute": round(minute, 2), "rss_mib": round(rss, 1), "fds": fds, "sockets": sockets,
                   "greenlets": int(beat.get("greenlets", -1)), "live_calls": int(beat.get("calls", -1)),
                   "placed": stats["placed"], "failed": stats["failed"]}
            samples.append(row)
            _say(_row(row))
            return row

        _say(_header())
        start = time.monotonic()
        sample(0)
        deadline = start + minutes * 60
        callers = [gevent.spawn(Caller(emu, speech, deadline, stats, seed=i).run) for i in range(concurrency)]
        next_at = start + 60
        while time.monotonic() < deadline:
            gevent.sleep(min(1.0, max(0.0, next_at - time.monotonic())))
            if time.monotonic() >= next_at:
                sample((time.monotonic() - start) / 60)
                next_at += 60
            if worker.poll() is not None:
                raise RuntimeError(f"the worker died with {worker.returncode} (see {log_path})")
        gevent.joinall(callers, timeout=120)
        gevent.sleep(5)  # let the last calls' cleanup and a heartbeat happen
        sample((time.monotonic() - start) / 60)
    except RuntimeError as exc:
        _say(f"soak aborted: {exc}")
        rc = 1
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
        emu.stop()
        llm.stop()
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)
    if samples:
        first, last = samples[0], samples[-1]
        _say(f"\ncalls placed {stats['placed']}, failed {stats['failed']}"
             + (f" ({', '.join(f'{k}: {v}' for k, v in stats.get('why', {}).items())})" if stats["failed"] else ""))
        _say(f"drift first -> last: RSS {last['rss_mib'] - first['rss_mib']:+.1f} MiB, fds {last['fds'] - first['fds']:+d}, "
             f"greenlets {last['greenlets'] - first['greenlets']:+d} (live calls at the end: {last['live_calls']})")
        result = {"minutes": minutes, "concurrency": concurrency, "stt_model": stt_model, "samples": samples,
                  "stats": stats, "load_avg": os.getloadavg()}
        with open(os.path.join(out, "soak.json"), "w") as f:
            json.dump(result, f, indent=1)
        _plot(samples, os.path.join(out, "soak.png"), f"{concurrency} concurrent calls, Whisper {stt_model}")
        _say(f"raw numbers: {os.path.join(out, 'soak.json')}\nplot:        {os.path.join(out, 'soak.png')}")
    return rc


def _header() -> str:
    return (f"{'minute':>6}  {'RSS MiB':>8}  {'fds':>5}  {'sockets':>7}  {'greenlets':>9}  {'live':>5}  {'placed':>6}  "
            f"{'failed':>6}\n" + "-" * 67)


def _row(r: Dict[str, Any]) -> str:
    return (f"{r['minute']:6.1f}  {r['rss_mib']:8.1f}  {r['fds']:5d}  {r['sockets']:7d}  {r['greenlets']:9d}  {r['live_calls']:5d}  "
            f"{r['placed']:6d}  {r['failed']:6d}")


def _plot(samples: List[Dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["minute"] for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 8.5), sharex=True)
    for ax, key, label in zip(axes, ("rss_mib", "fds", "greenlets", "placed"),
                              ("worker RSS (MiB)", "worker open fds", "tracked greenlets", "calls placed / failed")):
        ax.plot(x, [s[key] for s in samples], marker="o")
        if key == "placed":
            ax.plot(x, [s["failed"] for s in samples], marker="x", color="tab:red")
        if key == "fds":
            ax.plot(x, [s["sockets"] for s in samples], marker=".", color="tab:gray", label="sockets")
            ax.legend(loc="upper left")
        if key == "greenlets":
            ax.plot(x, [s["live_calls"] for s in samples], marker=".", color="tab:gray", label="live calls")
            ax.legend(loc="upper left")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minute")
    axes[0].set_title(f"voiceagent soak: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long to place calls (default 10)")
    p.add_argument("--concurrency", type=int, default=20, help="calls at a time (default 20)")
    p.add_argument("--stt-model", default="tiny.en", help="Whisper model of the worker (default tiny.en)")
    p.add_argument("--out", default="out/bench", help="directory for soak.json and soak.png (default out/bench)")
    a = p.parse_args(argv)
    return run_soak(a.minutes, a.concurrency, a.stt_model, a.out)


if __name__ == "__main__":
    sys.exit(main())
