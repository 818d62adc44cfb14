"""``voiceagent demo``: a real call without a phone.

Starts the FreeSWITCH emulator and a voice worker in this process (``emulator.stack``), synthesizes the caller's
questions with Piper, places an emulated call, and prints the conversation turn by turn with
the stage timings; what the caller heard is saved as a WAV.
"""
from __future__ import annotations

import os
import sys
import time
from typing import List

import click
import gevent
import gevent.event

DEFAULT_QUESTIONS = ["What time is it?", "Thank you, goodbye."]


def _say(msg: str = "", **style) -> None:
    click.secho(msg, **style)
    sys.stdout.flush()


def _ms(timings: dict, key: str) -> str:
    v = timings.get(key)
    return f"{v:.0f}" if isinstance(v, (int, float)) else "-"


def run_demo(questions: List[str], wavs: List[str], llm: str, out: str, speed: float, local_model: str,
             caller: str, dialed: str) -> int:
    from .calls.voice_dialog import VoiceServices
    from .config import RULE_BASED, load_settings
    from .emulator.stack import EmulatedStack, StackError, stack_settings
    from .observability.logs import setup_logging

    setup_logging("WARNING", "text")
    base = load_settings()
    local = None
    llm_url = base.llm_base_url
    model = base.llm_model
    if llm == "scripted":
        llm_url = RULE_BASED
        _say("LLM: the built-in rule-based responder (zero latency, no model)", fg="yellow")
    elif llm not in ("auto", "local"):
        llm_url = llm
    if llm == "local" or (llm == "auto" and not llm_url):
        from .dialog.local_llm import LocalLlmServer, LocalLlmUnavailable

        _say(f"LLM: starting the embedded llama.cpp server ({local_model}) ...")
        try:
            t0 = time.monotonic()
            local = LocalLlmServer(local_model, log_path=os.path.join(out_dir(out), "llama-server.log")).start()
            llm_url, model = local.base_url, "local"
            _say(f"     ready in {time.monotonic() - t0:.1f}s at {llm_url}")
        except LocalLlmUnavailable as exc:
            _say(f"     not available ({exc}); using the rule-based responder instead", fg="yellow")
            llm_url = RULE_BASED
    elif llm_url:
        _say(f"LLM: {llm_url} (model {model})")

    stack = None
    try:
        t0 = time.monotonic()
        settings = stack_settings("demo", llm_base_url=llm_url, llm_model=model, log_level="WARNING", log_format="text")
        services = VoiceServices(settings)
        services.warm()
        stt = f"STT {settings.stt_url}" if settings.stt_backend == "remote" else f"Whisper {settings.stt_model}"
        tts = f"TTS {settings.tts_url}" if settings.tts_engine == "remote" else f"Piper {settings.tts_voice}"
        _say(f"models loaded in {time.monotonic() - t0:.1f}s ({stt}, {tts}, VAD {settings.vad_engine})")
        stack = EmulatedStack(settings, dialog_factory=services.dialog, speed=speed,
                              admission_check=services.overloaded)
        try:
            stack.start()
        except StackError as exc:
            _say(str(exc), fg="red")
            return 1

        turn_done = gevent.event.Event()
        got = {}

        def listener(kind, call, data):
            if kind == "greeting":
                _say(f"agent (greeting)  : {data}", fg="cyan")
            elif kind == "turn":
                got["turn"] = data
                turn_done.set()

        services.listeners.append(listener)
        _say(f"\ncalling {dialed} from {caller} (emulated FreeSWITCH, speed x{speed:g})", bold=True)
        ch = stack.call(destination=dialed, caller=caller)
        if not ch.wait_answered(15):
            _say("the call was not answered", fg="red")
            return 1
        # let the greeting play before the caller speaks
        stack.wait_quiet(ch)
        utterances = [("text", q) for q in questions] + [("wav", w) for w in wavs]
        for kind, item in utterances:
            if ch.hangup_event.is_set():
                break
            if kind == "text":
                pcm, rate = services.tts.synthesize(item)
                _say(f"\ncaller says       : {item}", fg="green")
                ch.say((pcm, rate))
            else:
                _say(f"\ncaller plays      : {item}", fg="green")
                ch.say(item)
            turn_done.clear()
            if not turn_done.wait(120):
                _say("(no answer within 120 s)", fg="red")
                break
            _print_turn(got["turn"])
            stack.wait_quiet(ch)
        # the last line has been answered and the answer has played: a caller would hang up now
        if not ch.wait_hangup(2.0):
            _say("\n(the conversation is over; the caller hangs up)")
            ch.hangup()
            ch.wait_hangup(10)
        else:
            _say(f"\ncall ended ({ch.hangup_cause}, hung up by the agent)")
        path = os.path.join(out_dir(out), "demo-heard.wav")
        ch.write_heard_wav(path)
        _say(f"what the caller heard: {path}")
        return 0
    finally:
        if stack is not None:
            stack.stop()
        if local is not None:
            local.stop()


def out_dir(out: str) -> str:
    os.makedirs(out, exist_ok=True)
    return out


def _short(value, width: int = 100) -> str:
    """A tool result on one line, cut at a word boundary."""
    import textwrap

    return textwrap.shorten(str(value), width, placeholder=" …")


def _print_turn(turn) -> None:
    _say(f"whisper heard     : {turn.heard}")
    for t in turn.tools:
        ok = "ok" if t.get("ok") else "FAILED"
        _say(f"tool call         : {t['name']}({t.get('args') or ''}) -> {ok}: {_short(t.get('result'))}", fg="magenta")
    if turn.ack:
        _say(f"agent (answer late): {turn.ack}", fg="cyan")
    for s in turn.said:
        _say(f"agent says        : {s}", fg="cyan")
    if turn.interrupted:
        _say("(interrupted by the caller)", fg="yellow")
    tm = turn.timings
    _say("timings (ms)      : " + "  ".join(
        f"{label} {_ms(tm, key)}" for label, key in (
            ("endpoint", "endpoint_wait_ms"), ("stt", "stt_ms"), ("llm-1st-token", "llm_ttft_ms"),
            ("llm-1st-sentence", "llm_first_sentence_ms"), ("tts-1st", "tts_first_ms"),
            ("voice-to-voice", "voice_to_voice_ms"), ("answer", "answer_to_voice_ms"),
            ("fs-playback-start", "playback_start_ms"))),
        dim=True)


def register(main: click.Group) -> None:
    @main.command("demo")
    @click.option("--say", "questions", multiple=True, help="What the caller says (repeatable). Default: 'What time is it?' then goodbye.")
    @click.option("--wav", "wavs", multiple=True, type=click.Path(exists=True, dir_okay=False), help="A WAV the caller plays instead (repeatable).")
    @click.option("--llm", default="auto", show_default=True, help="auto (LLM_BASE_URL, else the embedded llama.cpp), local, scripted, or a base URL.")
    @click.option("--local-model", default="qwen2.5-coder-1.5b", show_default=True, help="Embedded model: qwen2.5-coder-1.5b or qwen2.5-coder-0.5b (faster, worse at tools).")
    @click.option("--out", default="out", show_default=True, help="Directory for the recording and logs.")
    @click.option("--speed", default=1.0, show_default=True, help="Emulator speed (audio streamed and played x times real time).")
    @click.option("--caller", default="+15551230001", show_default=True)
    @click.option("--dialed", default="+15551230000", show_default=True)
    def demo_cmd(questions, wavs, llm, local_model, out, speed, caller, dialed) -> None:
        """Place an emulated call to the agent and print the conversation."""
        qs = list(questions) or ([] if wavs else DEFAULT_QUESTIONS)
        sys.exit(run_demo(qs, list(wavs), llm, out, speed, local_model, caller, dialed))
