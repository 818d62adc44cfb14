"""The load benchmark's table rows and plot (bench/load.py)."""
from __future__ import annotations

from typing import Any, Dict, List

COLUMNS = (("calls", 5), ("sent/s", 7), ("recv/s", 7), ("lag p50", 7), ("p99", 6), ("max", 6), ("CPU wkr", 7),
           ("loop", 5), ("bench", 5), ("RSS MiB", 7), ("turns", 5), ("VAD rows/run", 12), ("load", 5))


def header() -> str:
    line = "  ".join(f"{name:>{w}}" for name, w in COLUMNS) + "  verdict"
    return line + "\n" + "-" * (len(line) + 10)


def row(r: Dict[str, Any]) -> str:
    vad = r.get("vad") or {}
    cells = (f"{r['level']:5d}", f"{r['sent_fps']:7.0f}", f"{r['recv_fps']:7.0f}", f"{r['lag_p50_ms']:7.1f}",
             f"{r['lag_p99_ms']:6.1f}", f"{r['lag_max_ms']:6.0f}", f"{r['cpu_worker']:6.0f}%", f"{r['cpu_loop']:4.0f}%",
             f"{r['cpu_bench']:4.0f}%", f"{r['rss_mib']:7.0f}", f"{r['turns']:5d}",
             f"{vad.get('rows_per_run', 0):12.1f}" if vad else f"{'-':>12}", f"{r['load_avg']:5.1f}")
    return "  ".join(cells) + "  " + (r["why"] or "ok")


def markdown(results: List[Dict[str, Any]]) -> str:
    """The same rows as a Markdown table (README)."""
    out = ["| calls | answered | frames sent/s | received/s | lag p50 / p99 ms | workers' CPU | busiest loop | "
           "emulator CPU | RSS MiB | turns | load avg | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['level']} | {r['calls']} | {r['sent_fps']:,.0f} | {r['recv_fps']:,.0f} | "
                   f"{r['lag_p50_ms']:.1f} / {r['lag_p99_ms']:.0f} | {r['cpu_worker']:.0f} % | {r['cpu_loop']:.0f} % | "
                   f"{r['cpu_bench']:.0f} % | {r['rss_mib']:.0f} | {r['turns']} | {r['load_avg']:.1f} | "
                   f"{r['why'] or 'ok'} |")
    return "\n".join(out)


def plot(results: List[Dict[str, Any]], path: str, title: str, max_lag_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["level"] for r in results]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0][0]
    ax.plot(x, [max(0.1, r["lag_p50_ms"]) for r in results], marker="o", label="p50")
    ax.plot(x, [max(0.1, r["lag_p99_ms"]) for r in results], marker="o", label="p99")
    ax.axhline(max_lag_ms, color="tab:red", linestyle="--", label=f"limit {max_lag_ms:g} ms")
    ax.set_ylabel("event-loop lag (ms)")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[0][1]
    ax.plot(x, [r["cpu_worker"] for r in results], marker="o", label="worker(s), all threads")
    ax.plot(x, [r["cpu_loop"] for r in results], marker="o", label="loop thread (the busiest worker's)")
    ax.plot(x, [r["cpu_bench"] for r in results], marker=".", color="tab:gray", label="emulator + callers")
    ax.axhline(100, color="tab:red", linestyle="--")
    ax.set_ylabel("CPU (% of one core)")
    ax.legend()
    ax = axes[1][0]
    ax.plot(x, [r["sent_fps"] for r in results], marker="o", label="sent by the emulator")
    ax.plot(x, [r["recv_fps"] for r in results], marker="x", label="received by the worker")
    ax.plot(x, [r["expected_fps"] for r in results], linestyle=":", color="tab:gray", label="50 per call")
    ax.set_ylabel("audio frames / s")
    ax.legend()
    ax = axes[1][1]
    ax.plot(x, [r["rss_mib"] for r in results], marker="o")
    ax.set_ylabel("worker RSS (MiB, all workers)")
    for a in axes.flat:
        a.set_xlabel("concurrent calls")
        a.grid(alpha=0.3)
    fig.suptitle(f"voiceagent bench load: {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
