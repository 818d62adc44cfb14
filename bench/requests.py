"""``voiceagent bench requests``: outbound call requests through Redis, end to end.

Places N requests with the call client against W in-process voice workers (greeting dialog) on
the FreeSWITCH emulator, all at once, and reads what happened from the records and the event
stream alone: how long a request waited for a worker, how long the claim → originate → answer
path took, the whole placed → ended time, how far behind a consumer group read the events, and
how many calls each worker had at most.  Prints a table (p50/p95/max) and writes a plot.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List

import gevent

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/ is not a package: its siblings
from bench_stats import nearest_rank  # noqa: E402

_pct = nearest_rank


def _at(rec: Any, state: str) -> float:
    return next(h.at for h in rec.history if h.state == state)


def run_requests(n: int, workers: int, max_calls: int, ring: float, speed: float, out: str) -> int:
    import redis

    from voiceagent.calls.worker import VoiceWorker
    from voiceagent.emulator.stack import stack_settings, start_emulator
    from voiceagent.records.client import CallClient

    os.makedirs(out, exist_ok=True)
    base = stack_settings("bench-requests", max_calls=max_calls, originate_gateway="carrier1",
                          admission_max_loop_lag_ms=0, playback_dir=f"/tmp/voiceagent-bench-requests-{os.getpid()}")
    emu = start_emulator(base.esl_password.get_secret_value(), speed=speed)
    ws = []
    r = redis.Redis()
    client = CallClient(r, base.redis_prefix)
    lags: List[float] = []
    try:
        for i in range(workers):
            s = base.model_copy(update={"esl_nodes": {"fs1": f"127.0.0.1:{emu.port}"},
                                        "worker_id": f"{base.worker_id}-w{i + 1}"})
            w = VoiceWorker(s)
            w.start()
            ws.append(w)
        for w in ws:
            for node in w.nodes.values():
                node.esl.wait_connected(10)
        numbers = [f"+1555900{i:04d}" for i in range(n)]
        for num in numbers:
            emu.script_destination(num, outcome="answer", ring_seconds=ring)
        client.stream.ensure_group("bench", start="$")
        stop = gevent.event.Event()

        def consume() -> None:  # a consumer group, as the API's status webhooks will read the stream
            while not stop.is_set():
                for entry_id, ev in client.stream.read("bench", "c1", block_ms=200):
                    lags.append((time.time() - ev.at) * 1000)
                    client.ack("bench", entry_id)

        reader = gevent.spawn(consume)
        t0 = time.time()
        ids = [client.place({"to": num, "deadline_seconds": 600}) for num in numbers]
        recs = [client.wait(i, timeout=600) for i in ids]
        wall = time.time() - t0
        stop.set()
        reader.join(3)
    finally:
        for w in ws:
            w.stop()
        emu.stop()
        for key in r.scan_iter(client.keys.everything):
            r.delete(key)

    ok = [x for x in recs if x.outcome is not None and x.outcome.value == "answered"]
    rows = {
        "queued (placed -> claimed)": [(_at(x, "claimed") - x.created) * 1000 for x in ok],
        "claim -> dialing": [(_at(x, "dialing") - _at(x, "claimed")) * 1000 for x in ok],
        "dialing -> answered": [(_at(x, "answered") - _at(x, "dialing")) * 1000 for x in ok],
        "answered -> ended": [(x.ended_at - _at(x, "answered")) * 1000 for x in ok],
        "placed -> ended": [(x.ended_at - x.created) * 1000 for x in ok],
        "event -> consumer": lags,
    }
    peak: Dict[str, int] = {}
    for w in {x.worker for x in recs}:
        edges = sorted([(_at(x, "claimed"), 1) for x in recs if x.worker == w]
                       + [(x.ended_at or 0.0, -1) for x in recs if x.worker == w], key=lambda e: (e[0], e[1]))
        live = worst = 0
        for _, d in edges:
            live += d
            worst = max(worst, live)
        peak[w.rsplit("-", 1)[-1]] = worst
    print(f"\n{n} requests, {workers} workers x MAX_CALLS={max_calls}, ring {ring:g} s, emulator speed {speed:g}x")
    print(f"{'stage (ms)':<28}{'p50':>9}{'p95':>9}{'max':>9}{'n':>6}")
    for name, xs in rows.items():
        print(f"{name:<28}{_pct(xs, .5):>9.0f}{_pct(xs, .95):>9.0f}{max(xs or [float('nan')]):>9.0f}{len(xs):>6}")
    print(f"answered {len(ok)}/{n}; {len(ok) / wall * 60:.0f} calls/min; peak calls per worker "
          + ", ".join(f"{k}={v}" for k, v in sorted(peak.items())) + f" (limit {max_calls})")
    result = {"n": n, "workers": workers, "max_calls": max_calls, "ring": ring, "speed": speed, "wall_s": wall,
              "answered": len(ok), "peak": peak, "stages_ms": rows}
    with open(os.path.join(out, "requests.json"), "w") as f:
        json.dump(result, f, indent=1)
    _plot(rows, os.path.join(out, "requests.png"))
    print(f"wrote {out}/requests.json and {out}/requests.png")
    return 0 if len(ok) == n and all(v <= max_calls for v in peak.values()) else 1


def _plot(rows: Dict[str, List[float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in rows.items() if v]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.boxplot([rows[k] for k in names], orientation="horizontal", tick_labels=names, showfliers=True)
    ax.set_xscale("log")
    ax.set_xlabel("ms (log)")
    ax.set_title("outbound requests: where the time goes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
