"""Real models, loaded once per test session."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from voiceagent.speech.audio import pcm16_to_float  # noqa: E402
from voiceagent.speech.inference import InferencePool  # noqa: E402
from voiceagent.speech.stt import Transcriber  # noqa: E402
from voiceagent.speech.tts import PiperTTS  # noqa: E402


@pytest.fixture(scope="session")
def piper():
    return PiperTTS(noise_scale=0, noise_w=0)


@pytest.fixture(scope="session")
def whisper_base():
    return Transcriber("base", threads=2)


@pytest.fixture(scope="session")
def pool():
    p = InferencePool(1)
    yield p
    p.close()


@pytest.fixture(scope="session")
def what_time(piper):
    """'What time is it?' as float32 16 kHz (Piper output is stochastic: use the real length)."""
    pcm, rate = piper.synthesize("What time is it?", 16000)
    assert rate == 16000
    return pcm16_to_float(pcm)


@pytest.fixture(scope="session")
def long_utterance(piper):
    pcm, _ = piper.synthesize("I would like to book a table for two people tomorrow evening at seven", 16000)
    return pcm16_to_float(pcm)


@pytest.fixture(scope="session")
def speech_bounds():
    def bounds(x: np.ndarray, rate: int = 16000, level: float = 0.02):
        """(first, last) second where a clean synthesized signal is audible."""
        idx = np.flatnonzero(np.abs(x) > level)
        return idx[0] / rate, idx[-1] / rate

    return bounds
