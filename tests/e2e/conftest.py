"""End-to-end fixtures: real models (loaded once), a scripted OpenAI-compatible LLM per test,
the FreeSWITCH emulator and a voice worker running the voice dialog."""
import gevent
import numpy as np
import pytest

from voiceagent.calls.voice_dialog import VoiceServices
from voiceagent.config import load_settings
from voiceagent.dialog.conversation import DialogKit
from voiceagent.dialog.llm import LlmClient
from voiceagent.dialog.profiles import load_profiles
from voiceagent.dialog.tools import ToolRegistry
from voiceagent.speech.audio import pcm16_to_float, resample
from voiceagent.speech.inference import InferencePool
from voiceagent.speech.stt import Transcriber
from voiceagent.speech.tts import PiperTTS
from voiceagent.testing.llm_server import ScriptedLlmServer

from ..calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def models():
    pool = InferencePool(1)
    return {"pool": pool, "stt": Transcriber("base", "en", pool=pool), "tts": PiperTTS(pool=pool)}


@pytest.fixture
def llm():
    server = ScriptedLlmServer().start()
    yield server
    server.stop()


@pytest.fixture
def voice(models, llm):
    """VoiceServices bound to this test's scripted LLM; ``turns`` collects every finished turn."""
    s = load_settings(llm_base_url=llm.base_url, llm_timeout=3.0)
    kit = DialogKit(LlmClient(llm.base_url, "test", timeout=3.0), ToolRegistry.from_settings(s), load_profiles(s),
                    max_tool_rounds=3, max_failures=3)
    svc = VoiceServices(s, kit=kit, transcriber=models["stt"], tts=models["tts"], pool=models["pool"])
    svc.turns = []
    svc.events = []
    svc.listeners.append(lambda kind, call, data: (svc.events.append((kind, call.id, data)),
                                                   svc.turns.append(data) if kind == "turn" else None))
    return svc


def speak(models, text):
    """Caller speech, synthesized with Piper: (pcm, rate)."""
    return models["tts"].synthesize(text)


def transcribe_heard(models, ch, start=0.0):
    """What Whisper hears in the caller's recording, from ``start`` seconds on."""
    pcm, rate = ch.heard_audio()
    x = pcm16_to_float(pcm)[int(start * rate):]
    if rate != 16000:
        x = resample(x, rate, 16000)
    return models["stt"].transcribe(x).text.lower()


def wait_for(pred, timeout=20.0):
    with gevent.Timeout(timeout, False):
        while not pred():
            gevent.sleep(0.02)
        return True
    return bool(pred())
