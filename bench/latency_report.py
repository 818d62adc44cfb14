"""The latency benchmark's report: per mode (old defaults, new defaults) the turn-taking figures
side by side against the targets, as a markdown table and a PNG (bench/latency.py runs the calls)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from bench_stats import nearest_rank

#: voice-to-voice p50 targets by Whisper model (2 cores, zero-latency LLM); others: base's
V2V_TARGET_MS = {"tiny.en": 750, "base": 1000}
PAUSED_TARGET_MS = 250    # barge-in onset -> playback paused, p50
RESUME_TARGET_MS = 600    # backchannel end -> playback resumed, p50
MAX_WAIT_TARGET_MS = 1500  # no end-of-turn wait over this on complete sentences
CUT_TARGET = 0.02         # turns cut early on the hesitation set

# (label, list in the run, key) of the millisecond rows
MS_ROWS: List[Tuple[str, str, str]] = [
    ("end-of-turn wait, complete sentences", "sentences", "endpoint_wait_ms"),
    ("voice-to-voice (answer) -> uuid_broadcast", "sentences", "true_v2v_ms"),
    ("voice-to-voice (answer) -> PLAYBACK_START", "sentences", "true_v2v_start_ms"),
    ("STT wait after end of turn", "sentences", "stt_wait_ms"),
    ("barge-in onset -> paused", "barge_ins", "onset_to_paused_ms"),
    ("  'Wait, stop, ...' onset -> paused", "wait_stop", "onset_to_paused_ms"),
    ("barge-in onset -> stopped", "barge_ins", "onset_to_stopped_ms"),
    ("  'Wait, stop, ...' onset -> stopped", "wait_stop", "onset_to_stopped_ms"),
    ("backchannel end -> resumed", "backchannels", "end_to_resume_ms"),
    ("  agent silent (paused -> resumed)", "backchannels", "paused_for_ms"),
]


def _vals(rows: List[Dict[str, Any]], key: str) -> List[float]:
    return [r[key] for r in rows if isinstance(r.get(key), (int, float))]


def _items(run: Dict[str, Any], name: str) -> List[Dict[str, Any]]:
    if name == "wait_stop":
        return [b for b in run["barge_ins"] if b["said"].lower().startswith("wait, stop")]
    return run[name]


def summarize(run: Dict[str, Any], stt_model: str) -> Dict[str, Any]:
    """p50/p90/max/n of every millisecond row, the counts, and each target's verdict."""
    stats: Dict[str, Any] = {}
    for label, name, key in MS_ROWS:
        v = _vals(_items(run, name), key)
        stats[label] = {"p50": nearest_rank(v, 0.5), "p90": nearest_rank(v, 0.9), "max": max(v) if v else None,
                        "n": len(v)}
    sent, hes, backs = run["sentences"], run["hesitations"], run["backchannels"]
    counts = {
        "answers started early (used)": (sum(bool(r.get("preemptive")) for r in sent), len(sent)),
        "'One moment.' said first (answer late)": (sum(bool(r.get("ack")) for r in sent), len(sent)),
        "complete sentences split in two": (sum(r["turns"] > 1 for r in sent), len(sent)),
        "turns cut early, hesitation set": (sum(bool(r["cut"]) for r in hes), len(hes)),
        "backchannel: agent went on": (sum(not b["stopped"] for b in backs), len(backs)),
        "  of which resumed after a pause": (sum(bool(b["resumed"]) for b in backs), len(backs)),
    }
    v2v = V2V_TARGET_MS.get(stt_model, V2V_TARGET_MS["base"])
    s = lambda label, q="p50": stats[label][q]  # noqa: E731
    cut, n_hes = counts["turns cut early, hesitation set"]
    went, n_back = counts["backchannel: agent went on"]
    targets = {
        "end-of-turn wait, complete sentences": (f"max <= {MAX_WAIT_TARGET_MS}",
                                                 s("end-of-turn wait, complete sentences", "max"), MAX_WAIT_TARGET_MS),
        "voice-to-voice (answer) -> uuid_broadcast": (f"p50 <= {v2v}",
                                                      s("voice-to-voice (answer) -> uuid_broadcast"), v2v),
        "voice-to-voice (answer) -> PLAYBACK_START": (f"p50 <= {v2v}",
                                                      s("voice-to-voice (answer) -> PLAYBACK_START"), v2v),
        "barge-in onset -> paused": (f"p50 <= {PAUSED_TARGET_MS}", s("barge-in onset -> paused"), PAUSED_TARGET_MS),
        "backchannel end -> resumed": (f"p50 <= {RESUME_TARGET_MS}", s("backchannel end -> resumed"), RESUME_TARGET_MS),
        "turns cut early, hesitation set": (f"<= {CUT_TARGET:.0%}", cut / n_hes if n_hes else None, CUT_TARGET),
        "backchannel: agent went on": ("all", went / n_back if n_back else None, 1.0),
    }
    verdicts = {}
    for label, (name, value, limit) in targets.items():
        ok = None if value is None or value != value else (value >= limit if name == "all" else value <= limit)
        verdicts[label] = {"target": name, "value": value, "met": ok}
    return {"stats": stats, "counts": counts, "targets": verdicts}


def _ms(v: Optional[float]) -> str:
    return "-" if v is None or v != v else f"{v:.0f}"


def _verdict(t: Dict[str, Any], label: str, summary: Dict[str, Any]) -> str:
    if t["met"] is None:
        return "n/a"
    mark = "met" if t["met"] else "MISS"
    if label in summary["stats"]:
        q = "max" if t["target"].startswith("max") else "p50"
        return f"{mark} ({_ms(summary['stats'][label][q])})"
    return mark


def table(runs: List[Dict[str, Any]], summaries: List[Dict[str, Any]], stt_model: str) -> str:
    """One markdown table: a p50/p90 pair per mode, the target, and each mode's verdict."""
    modes = [r["mode"] for r in runs]
    head = [f"Whisper {stt_model}"] + [f"{m} {q}" for m in modes for q in ("p50", "p90")] + ["target"] + modes
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def target_cells(label: str) -> List[str]:
        t0 = summaries[0]["targets"].get(label)
        if t0 is None:
            return [""] + [""] * len(modes)
        return [t0["target"]] + [_verdict(s["targets"][label], label, s) for s in summaries]

    for label, _, _ in MS_ROWS:
        cells = [label]
        for s in summaries:
            st = s["stats"][label]
            cells += [_ms(st["p50"]), _ms(st["p90"])]
        lines.append("| " + " | ".join(cells + target_cells(label)) + " |")
        if label.startswith("STT wait"):  # the counts of the sentences and the hesitations go here
            for name in ("answers started early (used)", "'One moment.' said first (answer late)",
                         "complete sentences split in two",
                         "turns cut early, hesitation set"):
                lines.append(_count_row(name, summaries, target_cells(name)))
    for name in ("backchannel: agent went on", "  of which resumed after a pause"):
        lines.append(_count_row(name, summaries, target_cells(name)))
    return "\n".join(lines)


def _count_row(name: str, summaries: List[Dict[str, Any]], targets: List[str]) -> str:
    cells = [name]
    for s in summaries:
        k, n = s["counts"][name]
        cells += [f"{k}/{n}", ""]
    return "| " + " | ".join(cells + targets) + " |"


def plot(runs: List[Dict[str, Any]], summaries: List[Dict[str, Any]], stt_model: str, path: str) -> None:
    """p50 bars with whiskers to p90, one colour per mode, the targets as red ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _, _ in MS_ROWS]
    colours = ["#9e9e9e", "#1565c0", "#ef6c00", "#43a047"]
    fig, ax = plt.subplots(figsize=(11, 7.5))
    h = 0.8 / max(1, len(runs))
    for m, (run, s) in enumerate(zip(runs, summaries, strict=False)):
        labelled = False
        for i, label in enumerate(labels):
            st = s["stats"][label]
            p50, p90 = st["p50"], st["p90"]
            if p50 is None or p50 != p50:
                continue
            y = len(labels) - 1 - i + (len(runs) / 2 - m - 0.5) * h
            ax.barh(y, p50, height=h * 0.9, color=colours[m % len(colours)], edgecolor="black", linewidth=0.4,
                    label=None if labelled else run["mode"])
            labelled = True
            if p90 > p50:
                ax.errorbar(p50, y, xerr=[[0], [p90 - p50]], fmt="none", ecolor="black", capsize=3, lw=0.8)
            ax.text(max(p50, p90) + 15, y, f"{p50:.0f} (p90 {p90:.0f})", va="center", fontsize=7)
    for i, label in enumerate(labels):
        t = summaries[-1]["targets"].get(label)
        if t is not None and not t["target"].startswith(("all", "<=")):
            limit = float(t["target"].split("<=")[1])
            y = len(labels) - 1 - i
            ax.plot([limit, limit], [y - 0.45, y + 0.45], color="red", lw=1.5)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=8)
    ax.set_xlabel("ms (p50 bars, whiskers to p90; red: the target)")
    note = "; ".join(f"{r['mode']}: cut %d/%d, backchannel went on %d/%d" % (
        *s["counts"]["turns cut early, hesitation set"], *s["counts"]["backchannel: agent went on"])
        for r, s in zip(runs, summaries, strict=False))
    ax.set_title(f"turn-taking latency, Whisper {stt_model}, zero-latency LLM, emulator real time\n{note}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
