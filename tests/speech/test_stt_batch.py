"""Batched Whisper (speech/stt_batch.py, the speech server's batcher) reads each utterance as Whisper alone does."""
import numpy as np
import pytest

from voiceagent.speech.audio import pcm16_to_float
from voiceagent.speech.stt_batch import WINDOW_SAMPLES, transcribe_batch

TEXTS = ["What time is it?", "Please turn on the kitchen lights.", "Cancel my timer."]


@pytest.fixture(scope="module")
def questions(piper):
    return [pcm16_to_float(piper.synthesize(t, 16000)[0]) for t in TEXTS]


def test_a_batch_gives_each_utterance_its_own_transcript_as_alone(whisper_base, questions):
    alone = [whisper_base.raw_segments(a) for a in questions]
    batched = transcribe_batch(whisper_base, questions)
    assert len(batched) == len(questions)
    for one, many in zip(alone, batched, strict=True):
        assert [s.text for s in many] == [s.text for s in one] and many[0].text.strip()
        assert many[0].avg_logprob == pytest.approx(one[0].avg_logprob, abs=0.02)
        assert many[0].no_speech_prob == pytest.approx(one[0].no_speech_prob, abs=0.02)
        assert many[0].tokens == one[0].tokens
    assert "kitchen lights" in batched[1][0].text.lower()


def test_silence_in_a_batch_says_nothing_and_long_audio_goes_alone(whisper_base, questions):
    quiet = np.zeros(16000, dtype=np.float32)
    out = transcribe_batch(whisper_base, [questions[0], quiet])
    assert "time" in out[0][0].text.lower() and (not out[1] or not out[1][0].text.strip() or
                                                 out[1][0].no_speech_prob > 0.5)
    long = np.concatenate([questions[1], np.zeros(WINDOW_SAMPLES, dtype=np.float32)])
    out = transcribe_batch(whisper_base, [questions[0], long])  # over one window: each on its own
    assert "kitchen" in " ".join(s.text for s in out[1]).lower()
