"""``voiceagent bench latency``: the end-to-end latency benchmark (code in bench/latency.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click


def _load_latency():
    """bench/latency.py of this checkout (the benchmark is not part of the installed package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / "latency.py"
    if not path.exists():
        raise click.ClickException(f"{path} not found: run the benchmark from a source checkout")
    spec = importlib.util.spec_from_file_location("voiceagent_bench_latency", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def register(main: click.Group) -> None:
    @main.group("bench")
    def bench() -> None:
        """Benchmarks (real models, real time)."""

    @bench.command("latency")
    @click.option("--turns", default=20, show_default=True, help="Caller turns per LLM.")
    @click.option("--llm", default="auto", show_default=True,
                  help="auto (scripted, then the embedded llama.cpp if importable), scripted, local, or a base URL.")
    @click.option("--out", default="out/bench", show_default=True, help="Directory for the JSON and the waterfall PNG.")
    @click.option("--barge-ins", default=4, show_default=True, help="Extra barge-in turns.")
    @click.option("--local-model", default="qwen2.5-coder-1.5b", show_default=True,
                  help="Embedded model (the demo's default): qwen2.5-coder-1.5b or qwen2.5-coder-0.5b.")
    def latency_cmd(turns, llm, out, barge_ins, local_model) -> None:
        """Voice-to-voice, per-stage and barge-in latency through the emulator; p50/p90 vs targets."""
        sys.exit(_load_latency().run_latency(turns, llm, out, barge_ins, local_model))
