"""Calls whose speech runs on our speech server (a real process): the conversation works, a speech server that
fails is retried, then replaced by the local engine, or the caller hears an apology and the call hangs up; and a
worker with remote speech never imports a speech model's code."""
import logging
import os
import subprocess
import sys

import pytest

from tests.speech_server_proc import ROOT, TOKEN, running
from tests.speech_standin import SpeechStandIn, error_answer
from voiceagent.calls.voice_dialog import VoiceServices
from voiceagent.config import load_settings
from voiceagent.dialog.conversation import DialogKit
from voiceagent.dialog.llm import LlmClient
from voiceagent.dialog.profiles import load_profiles
from voiceagent.dialog.tools import ToolRegistry
from voiceagent.emulator.stack import AGENT_NUMBER
from voiceagent.testing import llm_server as L

from .conftest import heard_like, place_call, segment_texts, speak, transcribe_heard, wait_for

FAILURE_GOODBYE = "I'm sorry, I can't help right now. Please call again later. Goodbye."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running(tmp_path_factory.mktemp("speech"))


@pytest.fixture
def standin():
    s = SpeechStandIn(error_answer(503)).start()
    yield s
    s.stop()


@pytest.fixture
def remote_voice(models, llm, server):
    """VoiceServices with remote STT and TTS (our server unless a URL is given), bound to the scripted LLM."""

    def make(stt_url=None, tts_url=None, **overrides):
        overrides.setdefault("stt_fallback", "none")
        overrides.setdefault("tts_fallback", "none")
        s = load_settings(llm_base_url=llm.base_url, llm_timeout=3.0, llm_warm_prefix="off", ack_after_ms=0,
                          idle_reprompt_s=0, stt_backend="remote", stt_url=stt_url or server.base_url,
                          stt_api_key=TOKEN, tts_engine="remote", tts_url=tts_url or server.base_url,
                          tts_api_key=TOKEN, **overrides)
        kit = DialogKit(LlmClient(llm.base_url, "test", timeout=s.llm_timeout), ToolRegistry.from_settings(s),
                        load_profiles(s), max_tool_rounds=3, max_failures=3)
        svc = VoiceServices(s, kit=kit, pool=models["pool"])
        svc.turns = []
        svc.listeners.append(lambda kind, call, data: svc.turns.append(data) if kind == "turn" else None)
        return svc

    return make


def test_remote_speech_plays_in_an_emulated_call(make_stack, remote_voice, llm, models):
    llm.push(L.text("It is half past ten in the morning."))
    voice = remote_voice(stt_fallback="local", tts_fallback="local")
    ch, _ = place_call(make_stack, voice)
    ch.say(speak(models, "What time is it?"))
    assert wait_for(lambda: voice.turns and len(ch.segments) >= 2, 40), "no answer"
    turn = voice.turns[-1]
    assert "time" in turn.heard.lower()
    assert turn.said == ["It is half past ten in the morning."]
    heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
    assert heard_like(heard, "half past") and heard_like(heard, "morning"), heard
    assert voice.transcriber.local.engine is None and voice.tts.local.engine is None  # no fallback was needed
    ch.hangup()


def test_stt_down_without_fallback_apologises_and_hangs_up(make_stack, remote_voice, models, standin, caplog):
    voice = remote_voice(stt_url=standin.base_url, stt_retries=1)
    ch, sess = place_call(make_stack, voice)
    with caplog.at_level(logging.ERROR, logger="voiceagent.calls.speech_failure"):
        ch.say(speak(models, "What time is it?"))
        assert ch.wait_hangup(40), "the call was not hung up"
    assert len(standin.requests) >= 2  # the first try and its retry
    said = [text for text, _ in segment_texts(sess, ch)]
    assert said[-1] == FAILURE_GOODBYE, said
    heard = transcribe_heard(models, ch, start=ch.segments[-1]["start"])
    assert heard_like(heard, "call again later"), heard
    lines = [r.getMessage() for r in caplog.records]
    assert any(sess.id in m and "apologising and hanging up" in m for m in lines), lines


def test_tts_down_without_any_tts_hangs_up_with_a_log_line(make_stack, remote_voice, standin, caplog):
    voice = remote_voice(tts_url=standin.base_url, tts_retries=0)
    stack = make_stack(voice)
    with caplog.at_level(logging.ERROR, logger="voiceagent.calls.speech_failure"):
        ch = stack.call(destination=AGENT_NUMBER, caller="+15551230001")
        assert ch.wait_answered(10)
        assert ch.wait_hangup(30), "the call was not hung up"
    assert not ch.segments  # nothing could be said
    lines = [r.getMessage() for r in caplog.records]
    assert any("no TTS to apologise with: hanging up" in m for m in lines), lines


def test_tts_down_with_the_local_fallback_the_call_goes_on(make_stack, remote_voice, llm, models, standin):
    llm.push(L.text("It is noon."))
    voice = remote_voice(tts_url=standin.base_url, tts_retries=1, tts_fallback="local")
    ch, _ = place_call(make_stack, voice)  # the greeting: Piper, loaded when the server failed
    assert voice.tts.local.engine is not None
    ch.say(speak(models, "What time is it?"))
    assert wait_for(lambda: voice.turns and len(ch.segments) >= 2, 40), "no answer"
    assert voice.turns[-1].said == ["It is noon."]
    assert heard_like(transcribe_heard(models, ch, start=ch.segments[1]["start"]), "it is noon")
    ch.hangup()


SPEECH_MODULES = ("faster_whisper", "ctranslate2", "piper", "TTS")
PROBE = ("import atexit, sys\n"
         f"names = {SPEECH_MODULES!r}\n"
         "atexit.register(lambda: print('SPEECH MODULES:', sorted({m.split('.')[0] for m in sys.modules} & set(names)),"
         " flush=True))\n"
         "from voiceagent.cli import main\n"
         "main(sys.argv[1:])\n")


def test_a_worker_with_remote_speech_loads_no_speech_model(server, tmp_path):
    """``voiceagent demo`` (an emulated call through a real worker) with STT and TTS on the speech server: the
    call is answered and not one speech-model package is imported in that process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STT_", "TTS_", "SMART_TURN"))}
    env.update(PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True", STT_BACKEND="remote",
               STT_URL=server.base_url, STT_API_KEY=TOKEN, TTS_ENGINE="remote", TTS_URL=server.base_url,
               TTS_API_KEY=TOKEN, STT_FALLBACK="none", TTS_FALLBACK="none",
               SMART_TURN="off")  # smart-turn's features come from faster-whisper's extractor (not a model)
    cmd = [sys.executable, "-c", PROBE, "demo", "--llm", "scripted", "--speed", "2", "--say", "What time is it?",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    said = [line for line in out.splitlines() if line.startswith("agent says")]
    assert said and "It is" in said[-1], out[-3000:]
    assert "SPEECH MODULES: []" in out, out[-3000:]


def test_a_worker_starts_while_its_speech_server_is_down(remote_voice, standin, caplog):
    voice = remote_voice(stt_url=standin.base_url, tts_url=standin.base_url, stt_retries=0, tts_retries=0)
    with caplog.at_level(logging.WARNING, logger="voiceagent.calls.voice_services"):
        assert voice.warm() == {}
    assert any("warm start incomplete" in r.getMessage() for r in caplog.records)
    assert standin.requests  # it was asked
