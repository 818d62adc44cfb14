"""The load benchmark's code path (bench/load.py), at tiny levels: a worker process, emulated calls, the
per-level numbers, the table, the JSON and the plot.  Nothing here is timed: the limits are lifted."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_load_ramps_calls_and_reports_each_level(tmp_path):
    cmd = [sys.executable, "-m", "voiceagent.cli", "bench", "load", "--levels", "1,3", "--window", "2",
           "--settle", "2", "--ramp", "10", "--callers", "silent", "--max-lag-ms", "1e9", "--out", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "command: voiceagent bench load --levels 1,3" in p.stdout
    assert "held: 3 calls (stub-batched-silent)" in p.stdout, p.stdout
    doc = json.loads((tmp_path / "load-stub-batched-silent.json").read_text())
    assert doc["command"].startswith("voiceagent bench load") and doc["vad"] == "batched"
    levels = doc["results"]
    assert [r["level"] for r in levels] == [1, 3] and [r["calls"] for r in levels] == [1, 3]
    for r in levels:
        assert r["why"] == "" and r["failed"] == 0
        assert r["sent_fps"] > 0 and r["recv_fps"] > 0 and r["lag_samples"] > 0
        assert r["cpu_worker"] > 0 and r["rss_mib"] > 50
        assert r["vad"]["runs"] > 0 and r["vad"]["failures"] == 0  # every call's VAD went through the batcher
    assert levels[1]["vad"]["rows"] > levels[0]["vad"]["rows"]
    assert (tmp_path / "load-stub-batched-silent.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "load-stub-batched-silent.md").read_text()
    assert md.startswith("`voiceagent bench load --levels 1,3") and md.count("| ok |") == 2
