"""``voiceagent bench latency|speech|turns|honesty|tools|requests|queue|soak|load``: the benchmarks (code in
bench/<name>.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click


def _load_bench(name: str):
    """bench/<name>.py of this checkout (the benchmarks are not part of the installed package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    if not path.exists():
        raise click.ClickException(f"{path} not found: run the benchmark from a source checkout")
    spec = importlib.util.spec_from_file_location(f"voiceagent_bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def register(main: click.Group) -> None:
    @main.group("bench")
    def bench() -> None:
        """Benchmarks (real models, real time)."""

    @bench.command("latency")
    @click.option("--modes", default="old,new", show_default=True,
                  help="Modes side by side: old (END_OF_TURN_MS 600 alone, BARGE_IN_MODE=stop, no preemptive LLM, "
                       "200 ms pre-roll), new (the shipped defaults).")
    @click.option("--stt", default="base", show_default=True, help="Whisper model(s), comma-separated: tiny.en, base.")
    @click.option("--turns", default=20, show_default=True, type=click.IntRange(0), help="Complete sentences per mode.")
    @click.option("--pauses", default=10, show_default=True, type=click.IntRange(0, 10),
                  help="Sentences with a hesitation in the middle per mode.")
    @click.option("--barge-ins", default=8, show_default=True, type=click.IntRange(0),
                  help="Rounds of a backchannel, then an interruption, over the agent per mode.")
    @click.option("--llm", default="scripted", show_default=True,
                  help="scripted (zero latency), local (the embedded llama.cpp), auto (both), or a base URL.")
    @click.option("--out", default="out/bench", show_default=True, help="Directory for the JSON and the PNG.")
    @click.option("--local-model", default="qwen2.5-coder-1.5b", show_default=True,
                  help="Embedded model (the demo's default): qwen2.5-coder-1.5b or qwen2.5-coder-0.5b.")
    @click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.1, 10),
                  help="Emulator speed; anything but 1 only smoke-tests the bench (the times are not real).")
    @click.option("--speech", type=click.Choice(["local", "remote"]), default="local", show_default=True,
                  help="remote: the worker's STT and TTS on a speech server on loopback (the hop's cost).")
    def latency_cmd(modes, stt, turns, pauses, barge_ins, llm, out, local_model, speed, speech) -> None:
        """Turn-taking through the emulator, old vs new defaults: end-of-turn waits, voice-to-voice, barge-in
        pause/stop, backchannel resumes, cut turns; p50/p90 vs targets."""
        sys.exit(_load_bench("latency").run_latency(turns, llm, out, barge_ins, local_model, modes, stt, pauses,
                                                    speed, speech=speech))

    @bench.command("speech")
    @click.option("--concurrency", default="1,4,8", show_default=True, help="Concurrent calls, comma-separated.")
    @click.option("--per-call", default=3, show_default=True, help="Utterances each call transcribes.")
    @click.option("--modes", default="local,batch,nobatch", show_default=True,
                  help="local (in process), batch / nobatch (through the speech server, batching on / off).")
    @click.option("--rounds", default=2, show_default=True, help="Rounds; the modes take turns in each.")
    @click.option("--out", default="out/bench", show_default=True, help="Directory for speech-server.json and .png.")
    def speech_cmd(concurrency, per_call, modes, rounds, out) -> None:
        """STT utterances/s/core for 1, 4, 8 concurrent calls: in process vs the speech server (batching on/off)."""
        conc = [int(c) for c in concurrency.split(",") if c.strip()]
        sys.exit(_load_bench("speech_server").run_speech_bench(conc, per_call, out, modes.split(","), rounds))

    @bench.command("turns")
    @click.option("--end-of-turn-ms", default=600, show_default=True, help="The fixed policy's END_OF_TURN_MS.")
    @click.option("--complete-ms", default=250, show_default=True, help="SMART_TURN_COMPLETE_MS.")
    @click.option("--max-wait-ms", default=1200, show_default=True, help="SMART_TURN_MAX_WAIT_MS.")
    def turns_cmd(end_of_turn_ms, complete_ms, max_wait_ms) -> None:
        """End-of-turn waits and mid-sentence cuts: silence alone vs smart-turn (SMART_TURN)."""
        sys.exit(_load_bench("turns").run_turns(end_of_turn_ms, complete_ms, max_wait_ms))

    @bench.command("honesty")
    @click.option("--llm", default="local", show_default=True, help="local (the embedded llama.cpp) or a base URL.")
    @click.option("--prompt", type=click.Choice(["before", "after"]), default="after", show_default=True,
                  help="'before': the default prompt as it was before it listed the line's capabilities.")
    @click.option("--local-model", default="qwen2.5-coder-1.5b", show_default=True)
    @click.option("--repeats", default=1, show_default=True)
    @click.option("--out", default="out/bench", show_default=True)
    def honesty_cmd(llm, prompt, local_model, repeats, out) -> None:
        """Out-of-scope requests (weather, timers, e-mail, bookings): count replies that claim or invent."""
        sys.exit(_load_bench("honesty").run_honesty(llm, prompt, local_model, out, repeats))

    @bench.command("tools")
    @click.option("--llm", default="local", show_default=True,
                  help="local (the embedded llama.cpp, started as the demo starts it), scripted (the rule-based "
                       "stand-in), or the base URL of any OpenAI-compatible server.")
    @click.option("--local-model", default="qwen2.5-coder-1.5b", show_default=True)
    @click.option("--out", default="out/bench", show_default=True, help="Directory for tool-routing.json and .png.")
    def tools_cmd(llm, local_model, out) -> None:
        """Tool routing: 20 requests for the built-in tools, 10 out of scope; right tool and arguments, claims."""
        sys.exit(_load_bench("tool_routing").run_tools(llm, local_model, out))

    @bench.command("requests")
    @click.option("--requests", "n", default=60, show_default=True, help="Requests placed at once.")
    @click.option("--workers", default=2, show_default=True, help="Voice workers (in this process).")
    @click.option("--max-calls", default=5, show_default=True, help="MAX_CALLS of each worker.")
    @click.option("--ring", default=0.5, show_default=True, help="Seconds each callee rings.")
    @click.option("--speed", default=8.0, show_default=True, help="Emulator speed (the greeting plays this much faster).")
    @click.option("--out", default="out/bench", show_default=True)
    def requests_cmd(n, workers, max_calls, ring, speed, out) -> None:
        """Outbound requests through Redis: queue wait, claim -> answer, event lag, peak calls per worker."""
        sys.exit(_load_bench("requests").run_requests(n, workers, max_calls, ring, speed, out))

    @bench.command("queue")
    @click.option("--calls", default=500, show_default=True, help="Calls submitted back to back (Dispatcher.submit).")
    @click.option("--voice-workers", default=2, show_default=True, help="Voice workers.")
    @click.option("--voice-procs/--voice-in-process", default=True, show_default=True,
                  help="Voice workers as `voiceagent voice` processes (in the bench process they share its one "
                       "core with the emulator, which then slows claiming and dialing).")
    @click.option("--rq-workers", default=3, show_default=True, help="`voiceagent jobs worker` processes.")
    @click.option("--limit", default=50, show_default=True, help="CALL_CONCURRENCY_LIMIT (each voice worker's "
                  "MAX_CALLS is set to it, so the cluster limit is the one that binds).")
    @click.option("--greeting-ms", default=3000, show_default=True,
                  help="Greeting length (the call's; at 8x, 3 s = ~0.6 s calls: short, yet 50 slots cannot keep "
                       "up with the submitter, so the limit binds).")
    @click.option("--speed", default=8.0, show_default=True,
                  help="Emulator speed (the greeting plays this much faster).")
    @click.option("--priority", type=click.Choice(["high", "bulk"]), default="high", show_default=True)
    @click.option("--out", default="out/bench", show_default=True, help="Directory for queue.json and queue.png.")
    def queue_cmd(calls, voice_workers, voice_procs, rq_workers, limit, greeting_ms, speed, priority, out) -> None:
        """Calls through the RQ queue under CALL_CONCURRENCY_LIMIT: dial rate, enqueue -> dial, peak live, CPU."""
        sys.exit(_load_bench("queue").run_queue(calls, voice_workers, rq_workers, limit, greeting_ms, speed,
                                                priority, out, voice_procs))

    @bench.command("soak")
    @click.option("--minutes", default=10.0, show_default=True, help="How long to place calls.")
    @click.option("--concurrency", default=20, show_default=True, help="Calls at a time.")
    @click.option("--stt-model", default="tiny.en", show_default=True, help="Whisper model of the worker.")
    @click.option("--out", default="out/bench", show_default=True, help="Directory for soak.json and soak.png.")
    def soak_cmd(minutes, concurrency, stt_model, out) -> None:
        """Calls back to back through the emulator; the worker's RSS, fds and greenlets every minute."""
        sys.exit(_load_bench("soak").run_soak(minutes, concurrency, stt_model, out))

    @bench.command("load", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                             "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def load_cmd(args) -> None:
        """Concurrent calls ramped against one voice worker process: frames, loop lag, CPU, RSS, turns
        per level (bench/load.py; its options: voiceagent bench load --help)."""
        sys.exit(_load_bench("load").main(list(args)))
