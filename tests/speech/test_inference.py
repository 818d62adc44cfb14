import time

import gevent
import gevent.event
import numpy as np
import pytest

from voiceagent.speech.inference import InferencePool, default_pool_size


class Ticker:
    """A 20 ms gevent timer; records the worst gap between ticks."""

    def __init__(self):
        self.max_gap = 0.0
        self.ticks = 0
        self._ticked = gevent.event.Event()
        self._g = gevent.spawn(self._run)
        gevent.sleep(0.05)  # let it start ticking before the measured work

    def _run(self):
        last = time.perf_counter()
        while True:
            gevent.sleep(0.02)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            self._ticked.set()
            last = now

    def stop(self):
        # Blocking work may have kept the ticker from running at all: let it observe that gap.
        self._ticked.clear()
        self._ticked.wait(5)
        self._g.kill()
        return self.max_gap - 0.02  # stall beyond the timer's own period


def test_timer_keeps_ticking_while_whisper_runs_in_the_pool(whisper_base, pool, long_utterance):
    audio = np.concatenate([long_utterance, long_utterance])
    # Control: called directly in a greenlet, Whisper freezes the hub (the detector works).
    ticker = Ticker()
    whisper_base.transcribe(audio)
    direct_stall = ticker.stop()
    assert direct_stall > 0.3

    ticker = Ticker()
    tr = pool.run(whisper_base.transcribe, audio, kind="stt")
    stall = ticker.stop()
    assert "table" in tr.text.lower()
    print(f"direct stall {direct_stall * 1000:.0f} ms, pooled stall {stall * 1000:.0f} ms")
    assert stall < 0.15, f"hub stalled {stall * 1000:.0f} ms"
    assert ticker.ticks >= int(tr.elapsed / 0.02 * 0.5)


def test_pool_results_errors_and_admission_estimate():
    p = InferencePool(1)
    try:
        assert p.run(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            p.run(lambda: 1 / 0)
        assert p.expected_wait() == 0.0 and not p.saturated(0.01)
        # four 0.2 s jobs queued behind one thread: the estimate sees the queue
        jobs = [gevent.spawn(p.run, time.sleep, 0.2, kind="sleep") for _ in range(4)]
        gevent.sleep(0)
        assert p.pending == 4
        assert p.expected_wait() > 0.3 and p.saturated(0.3)
        gevent.joinall(jobs, raise_error=True)
        assert p.pending == 0 and p.completed >= 5
        assert p.recent_wait_p95() >= 0.5  # the last job waited for three others
        assert p.stats()["service_s"]["sleep"] == pytest.approx(0.2, abs=0.05)
    finally:
        p.close()


def test_default_size_does_not_oversubscribe():
    assert default_pool_size(2, cores=2) == 1
    assert default_pool_size(2, cores=8) == 4
    assert default_pool_size(4, cores=2) == 1


def test_engines_dispatch_through_their_pool(piper, pool):
    before = pool.completed
    piper.pool = pool  # the session-wide voice, routed through the pool for this test only
    try:
        ticker = Ticker()
        pcm, rate = piper.synthesize("I would like to book a table for two people tomorrow evening at seven.", 8000)
        stall = ticker.stop()
    finally:
        piper.pool = None
    assert rate == 8000 and len(pcm) > 8000 * 2
    assert pool.completed == before + 1 and "tts" in pool.stats()["service_s"]
    assert stall < 0.15


def test_urgent_calls_go_before_the_ordinary_ones_waiting():
    """A barge-in's transcript must not wait behind a reply's later sentences queued for synthesis."""
    from voiceagent.speech.inference import urgent

    from gevent import monkey

    native_sleep = monkey.get_original("time", "sleep")
    p = InferencePool(1)
    order = []
    try:
        def job(name):
            if name == "first":
                native_sleep(1.0)  # holds the one thread while the others queue up
            order.append(name)
            return name

        def ordinary(name):
            return p.run(job, name, kind="tts")

        def pressing(name):
            with urgent():
                return p.run(job, name, kind="stt")

        running = gevent.spawn(ordinary, "first")
        gevent.sleep(0.05)
        queued = [gevent.spawn(ordinary, f"tts{i}") for i in range(3)]
        gevent.sleep(0.02)
        killed = gevent.spawn(ordinary, "never")
        gevent.sleep(0.02)
        hurry = gevent.spawn(pressing, "stt")
        gevent.sleep(0.02)
        killed.kill()  # a job killed while it waits leaves the line (and takes no thread)
        gevent.joinall([running, hurry, *queued], timeout=10, raise_error=True)
        assert order == ["first", "stt", "tts0", "tts1", "tts2"], order
        assert p.run(job, "after") == "after" and p.pending == 0  # every thread was given back
    finally:
        p.close()
