"""A speculative transcription that went stale while it waited for the inference pool is skipped:
it must never hold up a real turn (of this call or another)."""
import gevent
import numpy as np
from gevent import monkey

from voiceagent.calls.speculation import Speculation
from voiceagent.speech.inference import InferencePool
from voiceagent.speech.stt import Transcriber

native_sleep = monkey.get_original("time", "sleep")


class CountingTranscriber(Transcriber):
    calls = 0

    def transcribe_blocking(self, audio, initial_prompt=None):
        type(self).calls += 1
        return super().transcribe_blocking(audio, initial_prompt)


class _Svc:
    def __init__(self, pool, stt):
        self.pool, self.transcriber = pool, stt


class _Dialog:
    def __init__(self, svc):
        self.svc = svc

    def spawn(self, fn, *args):
        return gevent.spawn(fn, *args)


def test_stale_speculation_is_skipped_and_fresh_one_runs():
    pool = InferencePool(1)
    stt = CountingTranscriber("tiny.en", pool=pool)
    dialog = _Dialog(_Svc(pool, stt))
    audio = np.zeros(16000, dtype=np.float32)
    # keep the single pool thread busy so both speculations queue behind it
    busy = gevent.spawn(pool.run, native_sleep, 0.3)
    gevent.sleep(0)
    stale = Speculation(dialog, audio)
    fresh = Speculation(dialog, audio)
    stale.stale = True  # the caller carried on before the pool got to it
    assert stale.greenlet.get(timeout=10) is None
    tr, ms = fresh.greenlet.get(timeout=10)
    assert tr.text == "" and ms >= 0  # silence transcribes to nothing
    busy.get(timeout=10)
    assert CountingTranscriber.calls == 1, "the stale run reached the model"
    pool.close()
