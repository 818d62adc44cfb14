"""The batched Silero VAD (speech/vad_batch.py) decides like the per-call one, on real speech, and keeps
every call's state its own when many calls share its runs."""
import gevent
import numpy as np
import pytest

from voiceagent.speech.audio import float_to_pcm16, resample
from voiceagent.speech.vad import Endpointer, SileroVAD, chunk_rows
from voiceagent.speech.vad_batch import BatchedSileroVAD, VadBatcher, _one_by_one, _Run

FRAME = SileroVAD.frame_samples


@pytest.fixture
def batcher():
    b = VadBatcher(window_ms=5)
    yield b
    b.close()


@pytest.fixture(scope="module")
def signals(piper):
    """Real audio of different kinds: Piper sentences with silence around them, one in white noise, one
    quiet, and noise alone (float32 16 kHz)."""
    rng = np.random.default_rng(7)
    texts = ["What time is it?", "I would like to book a table for two people tomorrow evening at seven",
             "Can you call me back later, please?", "No.", "Is the restaurant open on Sunday evening?"]
    out = []
    for i, text in enumerate(texts):
        pcm, _ = piper.synthesize(text, 16000)
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        lead = np.zeros(int((0.3 + 0.17 * i) * 16000), np.float32)
        out.append(np.concatenate([lead, x, np.zeros(8000, np.float32), x[: len(x) // 2], np.zeros(12000, np.float32)]))
    noisy = out[1] + rng.normal(0, 0.03, len(out[1])).astype(np.float32)
    out += [noisy, out[2] * 0.05, rng.normal(0, 0.01, 3 * 16000).astype(np.float32)]
    return out


def frames(x):
    return [x[i:i + FRAME] for i in range(0, len(x) - FRAME + 1, FRAME)]


def single_probs(x):
    vad = SileroVAD()
    return np.array([vad.prob(f) for f in frames(x)])


def test_one_call_gets_the_same_probabilities_and_decisions_as_the_per_call_model(batcher, signals):
    for x in signals:
        want = single_probs(x)
        vad = batcher.vad()
        got = np.array([vad.prob(f) for f in frames(x)])
        assert np.abs(got - want).max() < 1e-5
        assert ((got >= 0.5) == (want >= 0.5)).all()
    assert ((single_probs(signals[0]) >= 0.5).sum() > 20), "the speech is detected at all"


def test_many_concurrent_calls_share_runs_without_cross_talk(batcher, signals):
    """Each greenlet is a call feeding its own audio (signal, gain, start and piece size all differ: one
    chunk at a time, or 2-3 at once as a larger fork frame brings them); every call's probabilities must
    be those of its audio alone, although its chunks went through runs shared with the others."""
    calls = []
    for k in range(24):
        x = signals[k % len(signals)] * (0.6 + 0.05 * k)
        calls.append(np.concatenate([np.zeros(FRAME * (k % 5), np.float32), x]))
    want = [single_probs(x) for x in calls]
    got = [[] for _ in calls]

    def call(k):
        vad = batcher.vad()
        fs = frames(calls[k])
        step = 1 + k % 3
        for i in range(0, len(fs), step):
            if k == 3 and i == 40:  # one call resets its state mid-stream: the others must not notice
                vad.reset()
                want[3] = np.concatenate([want[3][:40], single_probs(calls[3][40 * FRAME:])])
            got[k] += vad.probs(fs[i:i + step])
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(call, k) for k in range(len(calls))], timeout=120, raise_error=True)
    for k in range(len(calls)):
        assert len(got[k]) == len(want[k])
        assert np.abs(np.array(got[k]) - want[k]).max() < 1e-5, f"call {k}"
    stats = batcher.stats()
    assert stats["max_rows"] >= 24 and stats["rows"] == sum(len(w) for w in want)  # really batched
    assert stats["failures"] == 0  # by the batched graph, not the one-call-at-a-time fallback


def test_the_endpointer_gives_the_same_events_on_the_batched_vad(batcher, signals):
    for rate in (16000, 8000):
        for chunk_ms in (20, 100):
            for x in signals[:3] + signals[5:6]:
                pcm = float_to_pcm16(resample(x, 16000, rate))
                step = rate * chunk_ms // 1000 * 2
                runs = []
                for vad in (None, batcher.vad()):
                    ep = Endpointer(rate, end_of_turn_ms=600, pause_ms=120, vad=vad)
                    events = []
                    for i in range(0, len(pcm), step):
                        events += ep.feed(pcm[i:i + step])
                    events += ep.flush()
                    runs.append([(type(e).__name__, round(e.t, 4), len(getattr(e, "audio", ()))) for e in events])
                assert runs[0] == runs[1] and any(k == "EndOfTurn" for k, _, _ in runs[0])


def test_a_failed_run_falls_back_to_the_same_numbers_one_call_at_a_time(batcher, signals):
    x = frames(signals[0])[30:34]
    vads = [batcher.vad() for _ in x]
    batched = [v.probs([f, f]) for v, f in zip(vads, x, strict=True)]  # two chunks each, fresh state
    run = _Run()
    run.x = [chunk_rows(np.zeros(64, np.float32), [f, f], 64) for f in x]
    run.h = [np.zeros(128, np.float32) for _ in x]
    run.c = [np.zeros(128, np.float32) for _ in x]
    out = _one_by_one(run)
    for o, b in zip(out, batched, strict=True):
        assert np.abs(o[0] - b).max() < 1e-5 and o[1].shape == o[2].shape == (128,)
    assert isinstance(vads[0], BatchedSileroVAD) and not run.errors


def test_a_chunk_the_model_cannot_take_fails_that_call_only(batcher, signals):
    """A bad chunk (no caller can send one: the endpointer cuts them) fails its own call with an error,
    and the calls in the same run still get their probabilities."""
    good = batcher.vad()
    f = frames(signals[0])[30]
    results = {}

    def bad():
        try:
            batcher.submit(np.zeros((1, 100), np.float32), np.zeros(128, np.float32), np.zeros(128, np.float32))
        except RuntimeError as exc:
            results["bad"] = str(exc)

    g = [gevent.spawn(bad), gevent.spawn(lambda: results.setdefault("good", good.prob(f)))]
    gevent.joinall(g, timeout=30, raise_error=True)
    assert "Silero VAD failed" in results["bad"]
    assert results["good"] == pytest.approx(SileroVAD().prob(f), abs=1e-5)
    assert batcher.failures == 1


@pytest.mark.parametrize("batch", [True, False])
def test_vad_batch_chooses_the_calls_vad(piper, whisper_base, batch):
    from voiceagent.calls.voice_services import VoiceServices
    from voiceagent.config import load_settings

    svc = VoiceServices(load_settings(vad_batch=batch, smart_turn=False), transcriber=whisper_base, tts=piper)
    eps = [svc.endpointer(8000) for _ in range(2)]
    if batch:
        assert all(isinstance(ep.vad, BatchedSileroVAD) for ep in eps) and eps[0].vad is not eps[1].vad
        assert eps[0].vad._batcher is eps[1].vad._batcher is svc.vad_batcher  # one runner for every call
    else:
        assert all(type(ep.vad) is SileroVAD for ep in eps) and svc.vad_batcher is None
    svc.settings = load_settings(vad_batch=True, vad_engine="webrtc", smart_turn=False)
    assert type(svc.endpointer(16000).vad).__name__ == "WebRtcVAD"  # only Silero is batched
