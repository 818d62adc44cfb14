"""A short farewell after real speech is kept: the suspect-phrase rule (dropping a lone "Bye." that
Whisper invents over silence) applies to the whole transcript, not to each segment."""
import numpy as np

from voiceagent.speech.audio import pcm16_to_float, resample
from voiceagent.speech.stt import is_hallucination


def test_goodbye_after_speech_is_not_dropped(piper, whisper_base):
    pcm, rate = piper.synthesize("Thanks for calling. Goodbye!")
    x = resample(pcm16_to_float(pcm), rate, 16000)
    x = np.concatenate([x, np.zeros(16000, dtype=np.float32)])  # a second of silence after it
    text = whisper_base.transcribe(x).text.lower()
    assert "thank" in text and "bye" in text, text


def test_lone_suspect_phrase_with_a_non_speech_signal_is_dropped():
    assert is_hallucination("Bye.", no_speech_prob=0.4, avg_logprob=-0.3, level_dbfs=-30.0)
    assert not is_hallucination("Thanks for calling. Goodbye.", no_speech_prob=0.4, avg_logprob=-0.3,
                                level_dbfs=-30.0)
