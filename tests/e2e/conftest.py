"""End-to-end fixtures: real models (loaded once), a scripted OpenAI-compatible LLM per test,
the FreeSWITCH emulator and a voice worker running the voice dialog (``voiceagent.emulator.stack``,
the demo's and the benchmark's set-up)."""
import uuid

import gevent
import numpy as np
import pytest

from voiceagent.calls.voice_dialog import VoiceServices
from voiceagent.config import load_settings
from voiceagent.dialog.conversation import DialogKit
from voiceagent.dialog.llm import LlmClient, litellm_module
from voiceagent.dialog.profiles import load_profiles
from voiceagent.dialog.tools import ToolRegistry
from voiceagent.emulator.stack import AGENT_NUMBER, EmulatedStack
from voiceagent.speech.audio import pcm16_to_float, resample
from voiceagent.speech.inference import InferencePool
from voiceagent.speech.stt import Transcriber
from voiceagent.speech.tts import PiperTTS
from voiceagent.testing.llm_server import ScriptedLlmServer

from ..calls.conftest import ESL_PASSWORD, make_emulator, make_worker, redis_prefix  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def models():
    litellm_module()  # the first import takes seconds: pay it before any call's timings
    pool = InferencePool(1)
    return {"pool": pool, "stt": Transcriber("base", "en", pool=pool), "tts": PiperTTS(pool=pool, noise_scale=0, noise_w=0)}


@pytest.fixture
def llm():
    server = ScriptedLlmServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_voice(models, llm):
    """VoiceServices bound to this test's scripted LLM (settings overridable); ``turns`` collects every
    finished turn, ``events`` every emitted (kind, call id, data)."""

    def make(**overrides):
        overrides.setdefault("llm_timeout", 3.0)
        overrides.setdefault("llm_warm_prefix", "off")  # the scripted LLM counts every request
        overrides.setdefault("ack_after_ms", 0)  # "One moment." would depend on how busy the machine is
        overrides.setdefault("idle_reprompt_s", 0)  # "Are you still there?" while a test waits (test_turn_flow.py)
        s = load_settings(llm_base_url=llm.base_url, **overrides)
        kit = DialogKit(LlmClient(llm.base_url, "test", timeout=s.llm_timeout), ToolRegistry.from_settings(s),
                        load_profiles(s), max_tool_rounds=3, max_failures=3)
        svc = VoiceServices(s, kit=kit, transcriber=models["stt"], tts=models["tts"], pool=models["pool"])
        svc.turns = []
        svc.events = []
        svc.listeners.append(lambda kind, call, data: (svc.events.append((kind, call.id, data)),
                                                       svc.turns.append(data) if kind == "turn" else None))
        return svc

    return make


@pytest.fixture
def voice(make_voice):
    return make_voice()


def speak(models, text):
    """Caller speech, synthesized with Piper: (pcm, rate)."""
    return models["tts"].synthesize(text)


def transcribe_heard(models, ch, start=0.0):
    """What Whisper hears in the caller's recording, from ``start`` seconds on."""
    pcm, rate = ch.heard_audio()
    x = pcm16_to_float(pcm)[int(start * rate):]
    if rate != 16000:
        x = resample(x, rate, 16000)
    # the recording stops where the last playback ended: without a little silence after it Whisper
    # sometimes drops a short last word ("... Goodbye!")
    x = np.concatenate([x, np.zeros(8000, dtype=x.dtype)])
    return models["stt"].transcribe(x).text.lower()


def wait_for(pred, timeout=20.0):
    with gevent.Timeout(timeout, False):
        while not pred():
            gevent.sleep(0.02)
        return True
    return bool(pred())


@pytest.fixture
def make_stack(tmp_path, redis_prefix):  # noqa: F811  (the fixture imported above)
    """``make_stack(voice, speed=3.0)``: a started emulator + worker running ``voice``'s dialog; stopped after
    the test."""
    stacks = []

    def make(voice, *, speed=3.0, **overrides):
        wid = f"w{len(stacks) + 1}-{uuid.uuid4().hex[:6]}"
        overrides.setdefault("playback_dir", tmp_path / f"playback-{wid}")
        # the emulator (a whole FreeSWITCH) shares the worker's event loop here: its lag is not the worker's
        overrides.setdefault("admission_max_loop_lag_ms", 0)
        settings = load_settings(esl_nodes="fs1=127.0.0.1:0", esl_password=ESL_PASSWORD, fork_host="127.0.0.1",
                                 fork_port=0, redis_prefix=redis_prefix, worker_id=wid, **overrides)
        temp = tmp_path / f"fs-{wid}-temp"
        temp.mkdir()
        stack = EmulatedStack(settings, dialog_factory=voice.dialog, speed=speed, temp_dir=str(temp))
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


def place_call(make_stack, voice, *, speed=3.0, stack=None, caller="+15551230001"):
    """A call from the emulated caller to a worker running ``voice``; returns (channel, session) once the
    greeting has finished playing (so the caller's speech never barges into it)."""
    stack = stack or make_stack(voice, speed=speed)
    ch = stack.call(destination=AGENT_NUMBER, caller=caller)
    assert ch.wait_answered(10), "the call was never answered"
    sess = stack.session(ch, 10)
    assert sess is not None, "no session for the call"
    assert wait_for(lambda: len(ch.segments) >= 1, 15), "no greeting"
    return ch, sess


def segment_texts(sess, ch):
    """[(text the agent meant to say, emulator segment)] in the order the caller heard them."""
    by_file = {p.file: p.text for p in sess.playbacks if p.file}
    return [(by_file.get(seg["path"], "?"), seg) for seg in ch.segments]


def noise(seconds, rms=0.03, rate=16000, seed=1):
    """White noise (int16 PCM, rate)."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0.0, rms, int(seconds * rate)), -1.0, 1.0)
    return (x * 32767).astype("<i2").tobytes(), rate


def silence(seconds, rate=16000):
    return b"\x00\x00" * int(seconds * rate), rate


def loudest_slice(pcm_rate, ms):
    """The ``ms`` of speech with the most energy: a syllable, cut out of a Piper phrase."""
    pcm, rate = pcm_rate
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    n = int(rate * ms / 1000)
    energy = np.convolve(x * x, np.ones(n, dtype=np.float32), mode="valid")
    i = int(np.argmax(energy))
    return x[i:i + n].astype("<i2").tobytes(), rate


def heard_like(heard, phrase, min_ratio=0.8):
    """Whether Whisper's ``heard`` holds ``phrase`` give or take a spelling ("half passed" for "half past"):
    the best character similarity of ``phrase`` against any run of as many words in ``heard``."""
    import difflib
    import re

    words = re.findall(r"[a-z0-9']+", heard.lower())
    want = " ".join(re.findall(r"[a-z0-9']+", phrase.lower()))
    n = max(1, len(want.split()))
    best = 0.0
    for i in range(max(1, len(words) - n + 1)):
        best = max(best, difflib.SequenceMatcher(None, " ".join(words[i:i + n]), want).ratio())
    return best >= min_ratio
