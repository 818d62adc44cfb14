"""The latency benchmark's report: per-stage p50/p90 against the targets, the table and the
waterfall plot (bench/latency.py runs the calls)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

# stage rows: (label, key)
STAGES = [
    ("endpoint wait (silence)", "endpoint_wait_ms"),
    ("STT compute (Whisper)", "stt_ms"),
    ("STT wait after end of turn", "stt_wait_ms"),
    ("LLM first token", "llm_ttft_ms"),
    ("LLM first sentence", "llm_first_sentence_ms"),
    ("TTS first audio", "tts_first_ms"),
    ("pipeline overhead", "overhead_ms"),
    ("voice-to-voice (-> uuid_broadcast)", "voice_to_voice_ms"),
    ("  same, from true last sample", "true_v2v_ms"),
    ("  acknowledgement, when said", "ack_ms"),
    ("  first answer sentence", "answer_to_voice_ms"),
    ("FS PLAYBACK_START after broadcast", "playback_start_ms"),
]
BARGE_STAGES = [
    ("barge-in: VAD onset -> uuid_break", "onset_to_break_ms"),
    ("  decision -> uuid_break", "decided_to_break_ms"),
    ("  true onset -> uuid_break", "true_onset_to_break_ms"),
]


def pct(values: List[float], q: float) -> Optional[float]:
    v = [x for x in values if isinstance(x, (int, float))]
    return float(np.percentile(v, q)) if v else None


def summarize(run: Dict[str, Any]) -> Dict[str, Any]:
    eot = run["settings"]["end_of_turn_ms"]
    rows, barges = run["turns"], run["barge_ins"]
    stats = {}
    for label, key in STAGES:
        vals = [r.get(key) for r in rows]
        stats[key] = {"p50": pct(vals, 50), "p90": pct(vals, 90), "n": sum(isinstance(v, (int, float)) for v in vals)}
    for label, key in BARGE_STAGES:
        vals = [b.get(key) for b in barges]
        stats[key] = {"p50": pct(vals, 50), "p90": pct(vals, 90), "n": sum(isinstance(v, (int, float)) for v in vals)}
    hits = [r["speculative_hit"] for r in rows if r.get("speculative_hit") is not None]
    hidden = [r["stt_ms"] - r["stt_wait_ms"] for r in rows if isinstance(r.get("stt_ms"), (int, float))
              and isinstance(r.get("stt_wait_ms"), (int, float))]
    stats["stt_hidden_ms"] = {"p50": pct(hidden, 50), "p90": pct(hidden, 90), "n": len(hidden)}
    stats["speculative_hit_ratio"] = (sum(hits) / len(hits)) if hits else None
    v2v50 = stats["voice_to_voice_ms"]["p50"]
    ovh50 = stats["overhead_ms"]["p50"]
    b50 = stats["onset_to_break_ms"]["p50"]
    targets = [
        {"name": f"voice-to-voice p50 <= END_OF_TURN_MS + 400 = {eot + 400} ms", "value": v2v50, "limit": eot + 400},
        {"name": "pipeline overhead p50 <= 30 ms", "value": ovh50, "limit": 30},
        {"name": "barge-in (onset -> uuid_break) p50 <= 250 ms", "value": b50, "limit": 250},
    ]
    for t in targets:
        t["met"] = None if t["value"] is None else bool(t["value"] <= t["limit"])
    return {"stats": stats, "targets": targets}


def _f(v: Optional[float]) -> str:
    return f"{v:7.0f}" if isinstance(v, (int, float)) else "      -"


def table(run: Dict[str, Any], summary: Dict[str, Any]) -> str:
    st = summary["stats"]
    s = run["settings"]
    lines = [f"LLM: {run['label']}  |  {len(run['turns'])} turns, {len(run['barge_ins'])} barge-ins  |  "
             f"Whisper {s['stt_model']} ({s['stt_threads']} threads), Piper {s['tts_voice']}, VAD {s['vad_engine']}, "
             f"END_OF_TURN_MS {s['end_of_turn_ms']}, PAUSE_MS {s['pause_ms']}, BARGE_IN_MIN_MS {s['barge_in_min_ms']}, "
             f"emulator x1.0, playback {s['playback_mode']}",
             "",
             f"{'stage (ms)':40s} {'p50':>7s} {'p90':>7s} {'n':>4s}",
             "-" * 61]
    for label, key in STAGES + BARGE_STAGES:
        lines.append(f"{label:40s} {_f(st[key]['p50'])} {_f(st[key]['p90'])} {st[key]['n']:4d}")
    lines.append(f"{'STT hidden in the silence (stt - wait)':40s} {_f(st['stt_hidden_ms']['p50'])} "
                 f"{_f(st['stt_hidden_ms']['p90'])} {st['stt_hidden_ms']['n']:4d}")
    hr = st["speculative_hit_ratio"]
    lines.append(f"speculative STT used: {'-' if hr is None else f'{hr:.0%}'} of turns")
    lines.append("")
    for t in summary["targets"]:
        mark = "n/a " if t["met"] is None else ("MET " if t["met"] else "MISS")
        lines.append(f"[{mark}] {t['name']}: p50 {_f(t['value']).strip()} ms")
    return "\n".join(lines)


def waterfall(run: Dict[str, Any], summary: Dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = summary["stats"]
    eot = run["settings"]["end_of_turn_ms"]

    def g(key, q="p50"):
        v = st[key][q]
        return v if isinstance(v, (int, float)) else 0.0

    ep, sw, stt = g("endpoint_wait_ms"), g("stt_wait_ms"), g("stt_ms")
    lfs, ttft, tts, ovh = g("llm_first_sentence_ms"), g("llm_ttft_ms"), g("tts_first_ms"), g("overhead_ms")
    t_llm = ep + sw
    t_tts = t_llm + lfs
    t_ovh = t_tts + tts
    t_bc = t_ovh + max(ovh, 0.0)
    # (label, start, p50 length, p90 length, colour)
    bars = [
        ("endpoint wait (silence)", 0.0, ep, g("endpoint_wait_ms", "p90"), "#9e9e9e"),
        ("STT compute (hidden part hatched)", t_llm - stt, stt, g("stt_ms", "p90"), "#64b5f6"),
        ("STT wait after end of turn", ep, sw, g("stt_wait_ms", "p90"), "#1565c0"),
        ("LLM first token", t_llm, ttft, g("llm_ttft_ms", "p90"), "#ffcc80"),
        ("LLM first sentence", t_llm, lfs, g("llm_first_sentence_ms", "p90"), "#ef6c00"),
        ("TTS first audio", t_tts, tts, g("tts_first_ms", "p90"), "#43a047"),
        ("pipeline overhead", t_ovh, ovh, g("overhead_ms", "p90"), "#8e24aa"),
        ("voice-to-voice (p50 of total)", 0.0, g("voice_to_voice_ms"), g("voice_to_voice_ms", "p90"), "#37474f"),
        ("FS PLAYBACK_START after broadcast", t_bc, g("playback_start_ms"), g("playback_start_ms", "p90"), "#00897b"),
    ]
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(11, 7.2), gridspec_kw={"height_ratios": [len(bars), 4]})
    for i, (label, start, p50, p90, colour) in enumerate(bars):
        y = len(bars) - 1 - i
        ax.barh(y, p50, left=start, color=colour, edgecolor="black", linewidth=0.5, height=0.6)
        if label.startswith("STT compute") and start < ep:
            ax.barh(y, min(ep, start + p50) - start, left=start, color="white", alpha=0.5, hatch="//",
                    edgecolor=colour, height=0.6)
        if p90 > p50:
            ax.errorbar(start + p50, y, xerr=[[0], [p90 - p50]], fmt="none", ecolor="black", capsize=4, lw=1)
        ax.text(start + max(p90, p50) + 8, y, f"{p50:.0f} ms (p90 {p90:.0f})", va="center", fontsize=8)
    ax.axvline(ep, color="grey", ls=":", lw=1)
    ax.axvline(eot + 400, color="red", ls="--", lw=1)
    ax.text(eot + 400, -0.45, f" target {eot + 400} ms", color="red", fontsize=8, va="center")
    ax.axvline(t_bc, color="#8e24aa", ls=":", lw=1)
    ax.text(t_bc, len(bars) - 0.45, " sum of stage p50s = uuid_broadcast", color="#8e24aa", fontsize=8, va="center")
    ax.set_ylim(-0.8, len(bars) - 0.2)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([b[0] for b in reversed(bars)], fontsize=9)
    ax.set_xlim(left=min(0.0, t_llm - stt) - 20)
    ax.set_xlabel("ms after the caller's last speech sample (per-stage p50 laid end to end; whiskers to p90)")
    ax.set_title(f"voice turn waterfall — LLM {run['label']}, {len(run['turns'])} turns, real time, "
                 f"END_OF_TURN_MS {eot}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    # barge-in: from the caller's speech onset
    hold = run["settings"]["barge_in_min_ms"]
    o50, o90 = g("onset_to_break_ms"), g("onset_to_break_ms", "p90")
    d50, d90 = g("decided_to_break_ms"), g("decided_to_break_ms", "p90")
    t50, t90 = g("true_onset_to_break_ms"), g("true_onset_to_break_ms", "p90")
    brows = [("speech needed (BARGE_IN_MIN_MS)", 0.0, max(o50 - d50, 0.0), max(o90 - d90, 0.0), "#bdbdbd"),
             ("decision -> uuid_break", max(o50 - d50, 0.0), d50, d90, "#c62828"),
             ("VAD onset -> uuid_break (dialog)", 0.0, o50, o90, "#37474f"),
             ("true onset -> uuid_break (bench)", 0.0, t50, t90, "#78909c")]
    for i, (label, start, p50, p90, colour) in enumerate(brows):
        y = len(brows) - 1 - i
        bx.barh(y, p50, left=start, color=colour, edgecolor="black", linewidth=0.5, height=0.6)
        if p90 > p50:
            bx.errorbar(start + p50, y, xerr=[[0], [p90 - p50]], fmt="none", ecolor="black", capsize=4, lw=1)
        bx.text(start + max(p50, p90) + 8, y, f"{p50:.0f} ms (p90 {p90:.0f})", va="center", fontsize=8)
    bx.axvline(250, color="red", ls="--", lw=1)
    bx.text(250, -0.45, " target 250 ms", color="red", fontsize=8, va="center")
    bx.axvline(hold, color="grey", ls=":", lw=1)
    bx.set_ylim(-0.8, len(brows) - 0.4)
    bx.set_yticks(range(len(brows)))
    bx.set_yticklabels([b[0] for b in reversed(brows)], fontsize=9)
    bx.set_xlabel(f"barge-in: ms after the caller starts talking over the agent ({len(run['barge_ins'])} barge-ins)")
    bx.set_xlim(left=0, right=max(o90, o50, t90, 300) * 1.3)
    bx.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
